"""A local HTTP server speaking the Asaas API v3 shapes the backfill and the queue watch use, with faults.

`GET /v3/payments` (offset/limit ≤ 100, `hasMore`, `totalCount`; filters `status`, `paymentDate[ge]`,
`dateCreated[ge]`), `GET /v3/installments/{id}`, `GET /v3/webhooks`, `PUT /v3/webhooks/{id}`; `access_token`
authentication (401 otherwise). Real sockets and a real client: the code is tested against the protocol.
It also records every request and the most requests it ever had in flight at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from tests.support.json_fake import Answer, JsonFakeServer

API_KEY = "$aact_test_fake_key"
DATE_FILTERS = {"paymentDate[ge]": "paymentDate", "dateCreated[ge]": "dateCreated"}


class FakeAsaas(JsonFakeServer):
    """`faults`: (path prefix, answered requests on it before the fault, status, headers), each answered once."""

    def __init__(self, api_key: str = API_KEY, delay: float = 0.0) -> None:
        self.api_key = api_key
        self.delay = delay
        self.payments: list[dict[str, Any]] = []
        self.installments: dict[str, dict[str, Any] | float] = {}  # a resource, or just the purchase total
        self.webhooks: list[dict[str, Any]] = []
        self.faults: deque[tuple[str, int, int, dict[str, str]]] = deque()
        self.requests: list[tuple[str, str, dict[str, list[str]], int]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        super().__init__()
        self.url = self.address + "/v3"

    def respond(self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: Any) -> Answer:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        status = 500
        try:
            time.sleep(self.delay)
            status, answer_headers, answer = self._answer(method, path, query, body, headers)
            return status, answer_headers, answer
        finally:
            with self._lock:
                self.in_flight -= 1
                self.requests.append((method, path, query, status))

    def inject(self, status: int, headers: dict[str, str] | None = None, *, after: int = 0, path: str = "/v3/payments"):
        self.faults.append((path, after, status, headers or {}))

    def answered(self, path: str, method: str = "GET", status: int | None = 200) -> list[dict[str, list[str]]]:
        return [q for m, p, q, s in self.requests if m == method and p.startswith(path) and s == (status or s)]

    def _fault(self, path: str) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            for fault in list(self.faults):
                prefix, after, status, headers = fault
                if path.startswith(prefix) and len([r for r in self.requests if r[1].startswith(prefix)]) >= after:
                    self.faults.remove(fault)
                    return status, headers
        return None

    def _answer(self, method: str, path: str, query: dict, body: Any, headers: Any) -> tuple[int, dict[str, str], Any]:
        if headers.get("access_token") != self.api_key:
            return 401, {}, {"errors": [{"code": "invalid_access_token", "description": "A chave de API é inválida"}]}
        if not headers.get("User-Agent"):
            return 400, {}, {"errors": [{"code": "invalid_user_agent", "description": "User-Agent obrigatório"}]}
        fault = self._fault(path)
        if fault is not None:
            return fault[0], fault[1], {"errors": [{"code": "injected", "description": f"injected {fault[0]}"}]}
        if method == "GET" and path == "/v3/payments":
            return self._list(self.payments, query, filters=True)
        if method == "GET" and path.startswith("/v3/installments/"):
            installment = path.rsplit("/", 1)[1]
            found = self.installments.get(installment)
            if isinstance(found, int | float):
                found = {"object": "installment", "id": installment, "value": found}
            return (200, {}, found) if found else (404, {}, {"errors": [{"code": "not_found"}]})
        if method == "GET" and path == "/v3/webhooks":
            return self._list(self.webhooks, query, filters=False)
        if method == "PUT" and path.startswith("/v3/webhooks/"):
            hook = next((h for h in self.webhooks if h["id"] == path.rsplit("/", 1)[1]), None)
            if hook is None:
                return 404, {}, {"errors": [{"code": "not_found"}]}
            hook.update(body or {})
            if (body or {}).get("interrupted") is False:
                hook["penalizedRequestsCount"] = 0
            return 200, {}, hook
        return 404, {}, {"errors": [{"code": "not_found"}]}

    def _list(self, items: list[dict[str, Any]], query: dict, *, filters: bool) -> tuple[int, dict[str, str], Any]:
        limit = int(query.get("limit", ["10"])[0])
        offset = int(query.get("offset", ["0"])[0])
        if not 1 <= limit <= 100:
            return 400, {}, {"errors": [{"code": "invalid_limit", "description": "limit deve ser entre 1 e 100"}]}
        selected = items
        if filters:
            for name, key in DATE_FILTERS.items():
                if name in query:
                    selected = [p for p in selected if p.get(key) and p[key][:10] >= query[name][0]]
            if "status" in query:
                selected = [p for p in selected if p.get("status") == query["status"][0]]
        page = selected[offset : offset + limit]
        body = {"object": "list", "hasMore": offset + limit < len(selected), "totalCount": len(selected),
                "limit": limit, "offset": offset, "data": page}  # fmt: skip
        return 200, {"RateLimit-Limit": "1000", "RateLimit-Remaining": "999", "RateLimit-Reset": "60"}, body


def asaas_api_payment(
    payment_id: str,
    *,
    status: str = "RECEIVED",
    external_reference: str | None = None,
    value: float = 100.0,
    payment_date: str | None = "2026-11-30",
    date_created: str = "2026-11-28",
    installment: str | None = None,
    refunds: list[dict[str, Any]] | None = None,
    deleted: bool = False,
) -> dict[str, Any]:
    """A payment object as `GET /v3/payments` lists it (the documented fields, some we ignore)."""
    return {
        "object": "payment", "id": payment_id, "dateCreated": date_created, "customer": "cus_000005219613",
        "subscription": None, "installment": installment, "paymentLink": None, "value": value,
        "netValue": round(value * 0.97, 2), "originalValue": None, "interestValue": None, "description": "Plano Pro",
        "billingType": "PIX", "status": status, "dueDate": date_created, "originalDueDate": date_created,
        "paymentDate": payment_date, "clientPaymentDate": payment_date, "installmentNumber": None,
        "externalReference": external_reference, "deleted": deleted, "anticipated": False, "anticipable": False,
        "creditDate": payment_date, "estimatedCreditDate": payment_date, "refunds": refunds, "chargeback": None,
    }  # fmt: skip


def asaas_api_webhook(
    webhook_id: str, url: str, *, interrupted: bool = False, penalized: int = 0, enabled: bool = True
) -> dict[str, Any]:
    """A webhook configuration as `GET /v3/webhooks` lists it."""
    return {
        "object": "webhookConfig", "id": webhook_id, "name": "pedro-ingest", "url": url,
        "email": "ops@example.org", "enabled": enabled, "interrupted": interrupted, "apiVersion": 3,
        "hasAuthToken": True, "sendType": "SEQUENTIALLY", "penalizedRequestsCount": penalized,
        "events": ["PAYMENT_CONFIRMED", "PAYMENT_RECEIVED", "PAYMENT_REFUNDED"],
    }  # fmt: skip
