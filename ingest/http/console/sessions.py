"""Console sessions kept on the server (Redis, shared by every receiver), so that sign-out is final.

The cookie carries only a random token. Redis holds the session under HMAC(key, token), so what Redis
holds cannot be replayed as a cookie, and nothing in the cookie derives from the password (no offline
guessing from a captured cookie). The key is CONSOLE_SECRET_KEY, or a random one kept in Redis beside a
slow tag of the password: a receiver that starts with another password (or another CONSOLE_SECRET_KEY)
rotates the key and drops every session, so a password change signs everyone out. Sign-out deletes the
session; a cookie copied before it is refused after it. A visitor who has not signed in stores nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

log = logging.getLogger("pedro_ingest.console")
PREFIX = "pedro:console:{namespace}:session:"  # namespace: CELERY_QUEUE, so deployments sharing a Redis stay apart
KEY_NAME = "pedro:console:{namespace}:key"
SIGNED_IN = "signed_in_at"
_TAG_SALT = b"pedro-ingest console password tag v2"


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """A session's data; `token` is None until it is stored (sign-in), `renew` asks for a new token."""

    def __init__(self, data: dict[str, Any] | None = None, token: str | None = None) -> None:
        def touched(_: object) -> None:
            self.modified = True

        super().__init__(data or {}, touched)
        self.token = token
        self.renew = False
        self.modified = False


class SessionKeys:
    """The key that names sessions in Redis, read once per process (rotated when the password changes)."""

    def __init__(
        self, redis_factory: Callable[[], redis.Redis], password: str, configured: str | None, namespace: str
    ) -> None:
        self.redis_factory = redis_factory
        self.prefix = PREFIX.format(namespace=namespace)
        self.key_name = KEY_NAME.format(namespace=namespace)
        self.password = password.encode()
        self.configured = configured.encode() if configured else None
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            self._key = self._load()
        return self._key

    def _tag(self, salt: bytes) -> str:
        material = self.password + b"\0" + (self.configured or b"")
        return hashlib.pbkdf2_hmac("sha256", material, _TAG_SALT + salt, 100_000).hex()

    def _load(self) -> bytes:
        """The stored key when it was made for this password; else a new one (compare-and-set, so receivers
        starting together with a new password agree on one key), and every session ends."""
        client = self.redis_factory()
        with client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key_name)
                    stored = pipe.hgetall(self.key_name)
                    key, tag = stored.get(b"key"), stored.get(b"tag", b"")
                    if isinstance(key, bytes) and isinstance(tag, bytes) and tag.decode() == self._tag(key):
                        pipe.unwatch()
                        return self.configured or key
                    key = secrets.token_hex(32).encode()
                    pipe.multi()
                    pipe.hset(self.key_name, mapping={"key": key, "tag": self._tag(key)})
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue  # another receiver stored a key meanwhile: check that one
        for name in client.scan_iter(match=self.prefix + "*", count=1000):
            client.delete(name)  # a new password (or CONSOLE_SECRET_KEY): every session ends
        return self.configured or key

    def name(self, token: str) -> str:
        return self.prefix + hmac.new(self.key(), token.encode(), hashlib.sha256).hexdigest()


class RedisSessionInterface(SessionInterface):
    """Flask sessions stored in Redis; the cookie is Secure when the request came over TLS."""

    def __init__(self, redis_factory: Callable[[], redis.Redis], keys: SessionKeys) -> None:
        self.redis_factory = redis_factory
        self.keys = keys

    def check(self) -> None:
        """Raises `redis.RedisError` when a session could not be kept (sign-in then says so)."""
        self.keys.key()
        self.redis_factory().ping()

    def get_cookie_secure(self, app: Flask) -> bool:
        from flask import request

        return request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        token = request.cookies.get(self.get_cookie_name(app))
        if not token or len(token) > 100:
            return ServerSession()
        try:
            raw = self.redis_factory().get(self.keys.name(token))
        except redis.RedisError:
            return ServerSession()  # not signed in while Redis does not answer (HTTP Basic still works)
        if raw is None:
            return ServerSession()
        try:
            data = json.loads(raw)
        except ValueError:
            return ServerSession()
        return ServerSession(data if isinstance(data, dict) else {}, token)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):
            return
        try:
            self._save(app, session, response)
        except redis.RedisError as error:
            log.warning("console session not saved: Redis did not answer", extra={"error_type": type(error).__name__})

    def _save(self, app: Flask, session: ServerSession, response: Response) -> None:
        name = self.get_cookie_name(app)
        path, domain = self.get_cookie_path(app), self.get_cookie_domain(app)
        client = self.redis_factory()
        if session.token and (SIGNED_IN not in session or session.renew):
            client.delete(self.keys.name(session.token))  # signed out, or signed in again: the old one ends
            if SIGNED_IN not in session:
                response.delete_cookie(name, path=path, domain=domain)
                return
            session.token = None
        if SIGNED_IN not in session or not (session.modified or session.token is None):
            return
        lifetime = app.permanent_session_lifetime
        started = dt.datetime.fromtimestamp(float(session[SIGNED_IN]), dt.UTC)
        left = int((started + lifetime - dt.datetime.now(dt.UTC)).total_seconds())
        if left <= 0:
            return
        new = session.token is None
        token = session.token or secrets.token_urlsafe(32)
        client.set(self.keys.name(token), json.dumps(dict(session)), ex=left)
        if new:
            response.set_cookie(
                name, token, expires=started + lifetime, path=path, domain=domain,
                httponly=True, secure=self.get_cookie_secure(app), samesite="Strict",
            )  # fmt: skip
