"""The hand-built Celery messages: the same shape as `send_task`'s, and a stock worker runs them."""

from __future__ import annotations

import base64
import json
import logging
import secrets

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, text

from ingest.broker.publisher import CeleryPublisher
from ingest.broker.task_messages import task_message
from ingest.broker.task_names import PROCESS_EVENTS as PROCESS_EVENTS_TASK
from models import inbox
from models.inbox import NewEvent
from models.status import EventStatus
from tests.support.clerk import clerk_user_event
from tests.support.processes import free_port, wait_for
from tests.support.servers import REDIS_URL, own_queue

PER_MESSAGE = {"id", "root_id", "origin", "correlation_id", "reply_to", "delivery_tag", "argsrepr"}


def celery_message(task_name: str, args: list, queue: str) -> dict:
    """What Celery itself pushes on the queue for `send_task` (read back from real Redis)."""
    app = Celery("reference", broker=REDIS_URL, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"])
    client = redis.Redis.from_url(REDIS_URL)
    try:
        app.send_task(task_name, args=args, queue=queue)
        return json.loads(client.lpop(queue))
    finally:
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
        client.close()


def without_per_message_values(section: dict) -> dict:
    return {key: value for key, value in section.items() if key not in PER_MESSAGE}


def test_message_matches_what_celery_send_task_writes_field_by_field() -> None:
    queue = own_queue("shape")
    args = [["row_a", "row_b"]]
    reference = celery_message(PROCESS_EVENTS_TASK, args, queue)
    ours = json.loads(task_message(PROCESS_EVENTS_TASK, args, queue))

    assert ours.keys() == reference.keys()
    assert ours["headers"].keys() == reference["headers"].keys()
    assert ours["properties"].keys() == reference["properties"].keys()
    assert without_per_message_values(ours["headers"]) == without_per_message_values(reference["headers"])
    assert without_per_message_values(ours["properties"]) == without_per_message_values(reference["properties"])
    assert {k: v for k, v in ours.items() if k not in ("body", "headers", "properties")} == {
        k: v for k, v in reference.items() if k not in ("body", "headers", "properties")
    }
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(base64.b64decode(reference["body"]))
    assert ours["headers"]["root_id"] == ours["headers"]["id"] == ours["properties"]["correlation_id"]


def test_each_message_has_its_own_task_id_and_delivery_tag() -> None:
    first, second = (json.loads(task_message("t", [1], "q")) for _ in range(2))
    assert first["headers"]["id"] != second["headers"]["id"]
    assert first["properties"]["delivery_tag"] != second["properties"]["delivery_tag"]


def test_unreachable_broker_is_reported_as_not_enqueued_without_the_url(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:hunter2-broker-password@127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING):
        assert CeleryPublisher(url, "pedro-nowhere", timeout=0.5).publish_many(["a", "b"]) is False
    assert "enqueue failed" in caplog.text
    assert "hunter2" not in caplog.text and "hunter2" not in repr([r.__dict__ for r in caplog.records])


def test_a_stock_celery_worker_runs_a_batch_message(engine: Engine, worker, service_env: dict[str, str]) -> None:
    events = [clerk_user_event("user.created") for _ in range(3)]
    with engine.begin() as connection:
        stored = inbox.store_many(
            connection,
            [
                NewEvent(
                    "clerk", f"msg_{secrets.token_hex(8)}", event["type"], json.dumps(event), None, EventStatus.ENQUEUED
                )
                for event in events
            ],
        )
    row_ids = list(stored.values())
    assert len(row_ids) == 3

    assert CeleryPublisher(REDIS_URL, service_env["CELERY_QUEUE"]).publish_many(row_ids)

    def statuses() -> list[str]:
        with engine.connect() as connection:
            found = connection.execute(text('SELECT status FROM "WebhookEvent" WHERE id = ANY(:ids)'), {"ids": row_ids})
            return sorted(found.scalars())

    wait_for(lambda: statuses() == ["processed"] * 3, timeout=30, what="the batch processed by the worker")
    clerk_ids = [event["data"]["id"] for event in events]
    with engine.connect() as connection:
        users = connection.execute(text('SELECT count(*) FROM "User" WHERE "clerkId" = ANY(:ids)'), {"ids": clerk_ids})
        assert users.scalar() == 3
