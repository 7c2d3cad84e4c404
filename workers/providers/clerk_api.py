"""A small client for the Clerk Backend API's user list (`GET /v1/users`), polite under rate limits.

429 waits for `Retry-After`; 5xx and connection errors back off exponentially with jitter; 401/403 stop
at once (a wrong or revoked key does not get better by retrying). The secret key never appears in an
error message or a log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from workers.providers.retry import backoff, parse_wait

log = logging.getLogger(__name__)

USERS_PATH = "/v1/users"
MAX_LIMIT = 500  # Clerk accepts 1..500 per page


class ClerkApiError(Exception):
    """The API could not be read (retries exhausted, or an answer we cannot use)."""


class ClerkUnauthorized(ClerkApiError):
    """401/403: the key is wrong, revoked or lacks access."""


class ClerkUsersApi:
    """Pages through every user, oldest first (`order_by=+created_at`, so users created meanwhile come last)."""

    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        page_size: int = MAX_LIMIT,
        max_attempts: int = 6,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_retry_after: float = 300.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = base_url.rstrip("/") + USERS_PATH
        self.page_size = max(1, min(page_size, MAX_LIMIT))
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.timeout = timeout
        self.sleep = sleep
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {secret_key}", "Accept": "application/json"})

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """Each page of raw user objects, until a short or empty page."""
        offset = 0
        while True:
            users = self._get_page(offset)
            if users:
                yield users
            if len(users) < self.page_size:
                return
            offset += len(users)

    def _get_page(self, offset: int) -> list[dict[str, Any]]:
        params = {"limit": self.page_size, "offset": offset, "order_by": "+created_at"}
        for attempt in range(1, self.max_attempts + 1):
            users, retry_after, reason = self._try(params)
            if users is not None:
                return users
            if attempt == self.max_attempts:
                raise ClerkApiError(f"GET {USERS_PATH} failed after {attempt} attempts (last: {reason})")
            wait = (
                retry_after
                if retry_after is not None
                else backoff(attempt, cap=self.backoff_cap, base=self.backoff_base)
            )
            log.warning("clerk api: %s; retrying in %.1fs", reason, wait, extra={"offset": offset, "attempt": attempt})
            self.sleep(wait)
        raise AssertionError("unreachable")

    def _try(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, float | None, str]:
        """(users, None, "ok"), or (None, Retry-After or None, reason) to retry. Raises when retrying cannot help."""
        try:
            response = self.http.get(self.url, params=params, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as error:
            return None, None, type(error).__name__
        status = response.status_code
        if status in (401, 403):
            raise ClerkUnauthorized(f"Clerk answered {status}: check CLERK_SECRET_KEY")
        if status == 429:
            retry_after = parse_wait(response.headers.get("Retry-After"), cap=self.max_retry_after)
            return None, retry_after, "429 rate limited"
        if status >= 500:
            return None, None, f"{status} server error"
        if status != 200:
            raise ClerkApiError(f"Clerk answered {status} to GET {USERS_PATH}")
        try:
            body = response.json()
        except ValueError:
            raise ClerkApiError(f"Clerk answered 200 with a body that is not JSON to GET {USERS_PATH}") from None
        users = body.get("data") if isinstance(body, dict) else body  # the list, or a paginated envelope
        if not isinstance(users, list):
            raise ClerkApiError(f"unexpected body shape from GET {USERS_PATH}")
        return users, None, "ok"
