"""A provider API call never runs inside an event's transaction: the installment total is read between two
attempts, while no lock of the event is held, and only while it is not on record yet."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from ingest.config.settings import get_settings
from tests.support.asaas import asaas_payment_event
from tests.support.fake_asaas import FakeAsaas
from tests.support.inbox import store_event
from tests.support.json_fake import Answer
from tests.support.ledger import balance, grant_rows, make_plan, make_user
from workers.processing.apply import process_event

CREDITS = 1000


class WatchingAsaas(FakeAsaas):
    """Asks PostgreSQL, while it answers, whether the event's row is free (no transaction holds it)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.row_id = ""
        self.row_was_free: list[bool] = []

    def respond(self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: Any) -> Answer:
        if path.startswith("/v3/installments/"):
            self.row_was_free.append(self._row_free())
        return super().respond(method, path, query, body, headers)

    def _row_free(self) -> bool:
        try:
            with self.engine.begin() as connection:
                lock = text("""SELECT 1 FROM "WebhookEvent" WHERE id = :id FOR UPDATE NOWAIT""")
                connection.execute(lock, {"id": self.row_id})
            return True
        except OperationalError:
            return False


def test_the_installment_total_is_read_outside_the_transaction_and_once(engine: Engine) -> None:
    user_id, clerk_id = make_user(engine, 0)
    reference = f"{clerk_id}|plan:{make_plan(engine, CREDITS, asaasId=f'plan_{secrets.token_hex(4)}')}"
    installment = f"inst-{secrets.token_hex(6)}"
    with WatchingAsaas(engine) as fake:
        fake.installments[installment] = 200.0  # four installments of 50
        settings = get_settings().model_copy(
            update={"asaas_api_url": fake.url, "asaas_api_key": SecretStr(fake.api_key)}
        )
        for number in (1, 2):
            payment = f"pay_{secrets.token_hex(6)}"
            kind = "PAYMENT_REFUNDED" if number == 2 else "PAYMENT_CONFIRMED"
            event = asaas_payment_event(
                kind,
                payment,
                external_reference=reference,
                value=50,
                installment=installment,
                installment_number=number,
            )
            fake.row_id = store_event(engine, event, provider="asaas", event_id=event["id"])
            assert process_event(fake.row_id, engine=engine, settings=settings).status == "processed"
        calls = fake.answered("/v3/installments/")
    assert fake.row_was_free == [True], "one API call, made while no transaction held the event"
    assert len(calls) == 1
    assert grant_rows(engine, f"asaas:installment:{installment}:total") == [
        (f"asaas:installment:{installment}:total", 20000)
    ]
    assert balance(engine, user_id) == CREDITS - CREDITS // 4  # the refunded installment is a quarter
