"""Who may use the console: one operator password, a signed session cookie or HTTP Basic, CSRF on actions.

- Sign-in form → a session kept in Redis (see `sessions`) and a cookie holding its random token (HttpOnly,
  SameSite=Strict, Secure when the request came over TLS, expiring after CONSOLE_SESSION_MINUTES); every
  receiver accepts every other's cookie, sign-out ends the session, a password change ends them all.
- HTTP Basic with user `admin` for scripts. Browsers replay cached Basic credentials on cross-site
  requests, so a Basic-authenticated action must also carry the `X-Console-Action` header, which a
  cross-site form cannot send.
- Every form action carries the session's CSRF token.
- Wrong passwords are counted per client address in Redis (see `limiter`).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import dataclass

from flask import Request, session

from ingest.http.console.limiter import FailedLogins
from ingest.http.console.sessions import SIGNED_IN, ServerSession

log = logging.getLogger("pedro_ingest.console")
USER = "admin"
ACTION_HEADER = "X-Console-Action"


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
        if isinstance(session, ServerSession):
            session.renew = True  # a new token: a cookie planted before sign-in is worth nothing after it
        session[SIGNED_IN] = time.time()
        session["csrf"] = secrets.token_urlsafe(32)
        log.info("console sign-in", extra={"client": address})
        return True

    def operator(self, req: Request) -> Operator | None:
        """The signed-in operator of this request (session or Basic), else None."""
        address = req.remote_addr or "unknown"
        signed_in = session.get(SIGNED_IN)
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
