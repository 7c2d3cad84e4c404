"""An unexpected handler exception is reported by type and place, never by its message (it may carry
personal data from the payload), in the logs and in the inbox row."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine, text

from tests.support.inbox import store_event
from workers.handlers import HANDLERS
from workers.processing import apply as processing

PERSONAL = "ana@example.org"


def leaky_handler(session, event, context) -> None:
    lookup = {}
    lookup.setdefault("email", event.payload["email"])
    raise ValueError(f"secret {lookup['email']}")  # the line the report must point at


RAISE_LINE = leaky_handler.__code__.co_firstlineno + 3


def test_unexpected_handler_error_logs_type_and_place_but_not_the_message(
    engine: Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(HANDLERS, ("test", "leaky"), leaky_handler)
    row_id = store_event(engine, {"email": PERSONAL}, provider="test", event_type="leaky")
    with caplog.at_level(logging.DEBUG):
        outcome = processing.process_event(row_id, attempt=1, engine=engine)
    assert outcome.status == "retry"

    for record in caplog.records:  # message, arguments, extras and any attached traceback
        rendered = " ".join([record.getMessage(), repr(vars(record)), logging.Formatter().format(record)])
        assert PERSONAL not in rendered
    assert PERSONAL not in caplog.text

    place = f"{__name__}:leaky_handler:{RAISE_LINE}"
    raised = [record for record in caplog.records if record.getMessage() == "handler raised"]
    assert len(raised) == 1
    assert raised[0].error_type == "ValueError" and raised[0].error_at == place

    with engine.connect() as connection:
        error, detail = connection.execute(
            text('SELECT "lastError", "lastErrorDetail" FROM "WebhookEvent" WHERE id = :id'), {"id": row_id}
        ).one()
    assert error == "handler_error"  # the reason is for people; where it came from is in the log line above
    assert "ValueError" not in detail and place not in detail and PERSONAL not in detail
