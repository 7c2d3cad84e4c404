"""A local HTTP server answering the Asaas API's `GET /v3/installments/{id}` with purchase totals."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.fake_clerk import send_json

API_KEY = "aact_test_fake"


class FakeAsaas:
    """`installments[id] = total`; unknown ids answer 404, as Asaas does."""

    def __init__(self) -> None:
        self.installments: dict[str, float] = {}
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                fake.requests.append(self.path)
                installment = self.path.removeprefix("/v3/installments/")
                if self.headers.get("access_token") != API_KEY:
                    status, body = 401, {"errors": [{"code": "invalid_access_token"}]}
                elif installment in fake.installments:
                    status, body = 200, {"object": "installment", "id": installment,
                                         "value": fake.installments[installment]}  # fmt: skip
                else:
                    status, body = 404, {"errors": [{"code": "not_found"}]}
                send_json(self, status, body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v3"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
