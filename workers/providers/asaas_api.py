"""A small client for the Asaas API v3 (payments, installments, webhooks), polite under the account's limits.

Every request goes through the shared `AsaasLimiter` (slots, quota, pauses in Redis) and counts against the
run's budget. 429 pauses every process for `RateLimit-Reset` seconds (or a `Retry-After`, seconds or HTTP
date, capped: `workers.providers.retry`); an exhausted `RateLimit-Remaining` does the same before the next
request; 5xx and connection errors back off exponentially with jitter and then give up (`AsaasUnavailable`)
so the caller can save its position. 401/403 stop at once. The key is sent in the `access_token` header
with a `User-Agent` (required for accounts created since June 2024) and
never appears in a message or a log line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import requests

from ingest.formats.money import MoneyError, parse_money
from workers.providers.asaas_limiter import AsaasLimiter, LimiterTimeout, QuotaExhausted
from workers.providers.retry import backoff, header_wait

log = logging.getLogger(__name__)

USER_AGENT = "pedro-ingest (payment backfill)"
PAGE_LIMIT = 100  # Asaas lists accept limit ≤ 100


class AsaasApiError(Exception):
    """The API could not be read: retries spent, or an answer we cannot use."""


class AsaasUnauthorized(AsaasApiError):
    """401/403: the key is wrong, revoked, of the other environment, or lacks the permission."""


class AsaasUnavailable(AsaasApiError):
    """5xx or connection errors outlasted the retries, or the limits ask for a longer wait than we give."""


class AsaasBudgetSpent(AsaasApiError):
    """This run made as many requests as it was allowed to."""


WAIT_HEADERS = ("RateLimit-Reset", "Retry-After")  # Asaas sends the first (seconds); proxies may send the second


class AsaasApi:
    """One account's API; thread-safe (a backfill reads several pages at once through it)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        limiter: AsaasLimiter,
        *,
        budget: int | None = None,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_wait: float = 120.0,
        max_pause: float = 3600.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.budget = budget
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_wait = max_wait
        self.max_pause = max_pause
        self.timeout = timeout
        self.sleep = sleep
        self.requests_made = 0
        self._count_lock = threading.Lock()
        self.http = requests.Session()
        self.http.headers.update({"access_token": api_key, "User-Agent": USER_AGENT, "Accept": "application/json"})

    # ---- resources -----------------------------------------------------------------------------------

    def list_payments(self, filters: dict[str, str], offset: int, limit: int = PAGE_LIMIT) -> dict[str, Any]:
        """One page of `GET /payments`: `{"data": [...], "hasMore": bool, "totalCount": n, ...}`."""
        page = self._call("GET", "/payments", params={**filters, "offset": offset, "limit": limit})
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise AsaasApiError("unexpected body shape from GET /payments")
        return page

    def get_installment(self, installment_id: str) -> dict[str, Any]:
        """`GET /installments/{id}`: the purchase (total `value`, `installmentCount`, `paymentValue`, …)."""
        body = self._call("GET", f"/installments/{installment_id}")
        if not isinstance(body, dict):
            raise AsaasApiError("unexpected body shape from GET /installments/{id}")
        return body

    def webhooks(self) -> Iterator[dict[str, Any]]:
        """Every webhook configuration of the account (`GET /webhooks`, paged)."""
        offset = 0
        while True:
            page = self._call("GET", "/webhooks", params={"offset": offset, "limit": PAGE_LIMIT})
            items = page.get("data") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise AsaasApiError("unexpected body shape from GET /webhooks")
            yield from (item for item in items if isinstance(item, dict))
            if not page.get("hasMore") or not items:
                return
            offset += len(items)

    def resume_webhook(self, webhook_id: str) -> dict[str, Any]:
        """`PUT /webhooks/{id}` with `interrupted: false`: Asaas resends the events it kept (up to 14 days)."""
        return self._call("PUT", f"/webhooks/{webhook_id}", body={"interrupted": False})

    # ---- transport -----------------------------------------------------------------------------------

    def _spend(self) -> None:
        with self._count_lock:
            if self.budget is not None and self.requests_made >= self.budget:
                raise AsaasBudgetSpent(f"the run's budget of {self.budget} Asaas requests is spent")
            self.requests_made += 1

    def _call(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None) -> Any:
        for attempt in range(1, self.max_attempts + 1):
            self._spend()
            wait, reason = self._attempt(method, path, params, body, attempt)
            if reason is None:
                return wait
            if attempt == self.max_attempts:
                raise AsaasUnavailable(f"{method} {path} failed after {attempt} attempts (last: {reason})")
            log.warning("asaas api: %s; retrying", reason, extra={"path": path, "attempt": attempt})
            if wait:
                self.sleep(wait)
        raise AssertionError("unreachable")

    def _attempt(
        self, method: str, path: str, params: dict | None, body: dict | None, attempt: int
    ) -> tuple[Any, str | None]:
        """(json, None) on success, or (seconds to sleep before retrying, reason). Raises when retrying cannot help."""
        try:
            with self.limiter.slot(self.max_wait):
                response = self.http.request(
                    method, self.base_url + path, params=params, json=body, timeout=self.timeout
                )
        except (LimiterTimeout, QuotaExhausted) as error:
            raise AsaasUnavailable(str(error)) from None
        except (requests.ConnectionError, requests.Timeout) as error:
            return self._backoff(attempt), type(error).__name__
        status = response.status_code
        if response.headers.get("RateLimit-Remaining") == "0":
            self._pause(response.headers, self.backoff_base)
        if status in (401, 403):
            raise AsaasUnauthorized(f"Asaas answered {status} to {method} {path}: check ASAAS_API_KEY / ASAAS_API_URL")
        if status == 429:
            self._pause(response.headers, self._backoff(attempt))
            return 0.0, "429 rate limited"  # the shared pause makes every process (this one too) wait
        if status >= 500:
            return self._backoff(attempt), f"{status} server error"
        if status != 200:
            raise AsaasApiError(f"Asaas answered {status} to {method} {path}")
        try:
            return response.json(), None
        except ValueError:
            raise AsaasApiError(f"Asaas answered 200 with a body that is not JSON to {method} {path}") from None

    def _backoff(self, attempt: int) -> float:
        return backoff(attempt, cap=self.backoff_cap, base=self.backoff_base)

    def _pause(self, headers: Any, fallback: float) -> None:
        """Every process waits as long as the answer asks, at most `max_pause` (a broken header must not stop the
        account's calls for days), or `fallback` seconds when it names no usable wait."""
        wait = header_wait(headers, WAIT_HEADERS, cap=self.max_pause)
        self.limiter.pause_for(fallback if wait is None else wait)


def api_from_settings(settings: Any, *, budget: int | None = None, **options: Any) -> AsaasApi | None:
    """The configured account's client with the Redis limiter, or None when `ASAAS_API_KEY` is unset."""
    if settings.asaas_api_key is None:
        return None
    from ingest.broker.redis_client import redis_client

    limiter = AsaasLimiter(
        redis_client(settings.celery_broker_url, timeout=10.0),
        concurrency=settings.asaas_api_concurrency,
        quota=settings.asaas_api_quota,
    )
    return AsaasApi(
        settings.asaas_api_url, settings.asaas_api_key.get_secret_value(), limiter, budget=budget, **options
    )


def installment_total(settings: Any, installment_id: str) -> Decimal | None:
    """An installment purchase's total (`GET /installments/{id}`), None when no key is set or Asaas does not
    know the id. Webhooks carry each installment's value but not the purchase's total, and the share an
    installment's refund or chargeback reverses is its value over that total; the caller falls back to the
    sum of the installments seen. Called between two attempts of the event (never inside its transaction):
    one quick attempt, no backoff: `AsaasUnavailable` or `AsaasUnauthorized` when Asaas did not answer."""
    api = api_from_settings(settings, budget=1, max_attempts=1, max_wait=5.0, timeout=5.0)
    if api is None:
        return None
    try:
        found = api.get_installment(installment_id)
    except (AsaasUnavailable, AsaasUnauthorized):
        raise
    except AsaasApiError:  # 400/404: Asaas does not know this id
        return None
    try:
        total = parse_money(found.get("value"))
    except (ValueError, MoneyError):
        return None
    return total if total > 0 else None
