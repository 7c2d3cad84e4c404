"""Who may use the console: one operator password, a signed session cookie or HTTP Basic, CSRF on actions.

- Sign-in form → a session cookie (HttpOnly, SameSite=Strict, Secure when the request came over TLS,
  expiring after CONSOLE_SESSION_MINUTES), signed with CONSOLE_SECRET_KEY or a key stretched from the
  password (PBKDF2), so every receiver accepts every other's cookie and a password change signs everyone out.
- HTTP Basic with user `admin` for scripts. Browsers replay cached Basic credentials on cross-site
  requests, so a Basic-authenticated action must also carry the `X-Console-Action` header, which a
  cross-site form cannot send.
- Every form action carries the session's CSRF token.
- Wrong passwords are counted per client address in Redis (shared by every receiver process), falling
  back to this process's memory when Redis does not answer.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Flask, Request, request, session
from flask.sessions import SecureCookieSessionInterface

log = logging.getLogger("pedro_ingest.console")
USER = "admin"
ACTION_HEADER = "X-Console-Action"
_KEY_SALT = b"pedro-ingest console session v1"


def session_key(password: str, configured: str | None) -> bytes:
    """The cookie signing key: the configured one, else one stretched from the password (slow to guess)."""
    if configured:
        return configured.encode()
    return hashlib.pbkdf2_hmac("sha256", password.encode(), _KEY_SALT, 200_000)


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Marks the cookie Secure when this request came over TLS (directly or through a TLS proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


class FailedLogins:
    """Wrong passwords per client address in a one-minute window, in Redis when it answers."""

    def __init__(self, redis_factory: Callable[[], redis.Redis], limit: int, window: int = 60) -> None:
        self.redis_factory = redis_factory
        self.limit = limit
        self.window = window
        self._local: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _key(self, address: str) -> str:
        return f"pedro:console:failed-logins:{address}"

    def blocked(self, address: str) -> bool:
        try:
            return int(self.redis_factory().get(self._key(address)) or 0) >= self.limit
        except redis.RedisError:
            with self._lock:
                recent = [t for t in self._local.get(address, []) if t > time.monotonic() - self.window]
                return len(recent) >= self.limit

    def record(self, address: str) -> None:
        try:
            client = self.redis_factory()
            pipe = client.pipeline()
            pipe.incr(self._key(address))
            pipe.expire(self._key(address), self.window, nx=True)
            pipe.execute()
        except redis.RedisError:
            with self._lock:
                self._local.setdefault(address, []).append(time.monotonic())


@dataclass(frozen=True)
class Operator:
    """Who is acting, for the audit log: `session` or `basic`, and the client address."""

    method: str
    address: str


class ConsoleAuth:
    def __init__(self, password: str, failed_logins: FailedLogins, session_minutes: int) -> None:
        self._password = password.encode()
        self.failed_logins = failed_logins
        self.session_seconds = session_minutes * 60

    def password_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._password)

    def sign_in(self, candidate: str, address: str) -> bool:
        """Check a form's password; on success start a fresh session (new CSRF token)."""
        if self.failed_logins.blocked(address):
            return False
        if not self.password_matches(candidate):
            self.failed_logins.record(address)
            log.warning("console sign-in refused", extra={"client": address})
            return False
        session.clear()
        session.permanent = True
        session["signed_in_at"] = time.time()
        session["csrf"] = secrets.token_urlsafe(32)
        log.info("console sign-in", extra={"client": address})
        return True

    def operator(self, req: Request) -> Operator | None:
        """The signed-in operator of this request (session or Basic), else None."""
        address = req.remote_addr or "unknown"
        signed_in = session.get("signed_in_at")
        if isinstance(signed_in, int | float) and time.time() - signed_in < self.session_seconds:
            return Operator("session", address)
        basic = req.authorization
        if basic is not None and basic.type == "basic" and basic.username == USER:
            if self.failed_logins.blocked(address):
                return None
            if self.password_matches(basic.password or ""):
                return Operator("basic", address)
            self.failed_logins.record(address)
        return None

    @staticmethod
    def csrf_token() -> str:
        token = session.get("csrf")
        if not token:
            token = session["csrf"] = secrets.token_urlsafe(32)
        return token

    @staticmethod
    def action_allowed(req: Request, operator: Operator) -> bool:
        """A state-changing request: the session's CSRF token, or Basic plus the action header."""
        if operator.method == "basic":
            return bool(req.headers.get(ACTION_HEADER))
        expected = session.get("csrf")
        given = req.form.get("csrf", "")
        return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())
