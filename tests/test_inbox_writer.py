"""The receiver's group commit (`ingest.receiver.inbox_writer.InboxWriter`) against real PostgreSQL.

The publisher here is an in-memory recorder so that the tests can hold the writer and make requests
queue up behind it; the real publisher is tested against real Redis in test_task_messages.py.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from sqlalchemy import Engine, event, text

from ingest.receiver.errors import WebhookRejected
from ingest.receiver.inbox_writer import Accepted, InboxWriter
from models.inbox import NewEvent
from tests.support.inbox import RecordingPublisher
from tests.support.processes import wait_for


def clerk_event(event_id: str | None = None, payload: str = '{"type": "user.created"}') -> NewEvent:
    return NewEvent("clerk", event_id or f"msg_{secrets.token_hex(8)}", "user.created", payload, None)


def statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(text('SELECT "eventId", status FROM "WebhookEvent"')).all())


def submit_all(writer: InboxWriter, events: list[NewEvent]) -> list[Accepted | WebhookRejected]:
    def one(event: NewEvent) -> Accepted | WebhookRejected:
        try:
            return writer.submit(event)
        except WebhookRejected as rejected:
            return rejected

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(one, events))


def queue_behind_a_held_batch(writer: InboxWriter, publisher: RecordingPublisher, events: list[NewEvent]):
    """Submit one event and hold its publish, then submit `events`: they wait in one queue."""
    pool = ThreadPoolExecutor(len(events) + 1)
    first = pool.submit(writer.submit, clerk_event())
    publisher.wait_until_holding()
    rest = [pool.submit(writer.submit, event) for event in events]
    time.sleep(0.3)  # let every thread reach the writer's queue
    publisher.release()
    return pool, first, rest


def outcomes(futures) -> list[Accepted | WebhookRejected]:
    results: list[Accepted | WebhookRejected] = []
    for future in futures:
        try:
            results.append(future.result(10))
        except WebhookRejected as rejected:
            results.append(rejected)
    return results


def test_requests_waiting_together_share_one_insert_and_one_message(engine: Engine) -> None:
    publisher = RecordingPublisher(hold_first=True)
    writer = InboxWriter(engine, publisher)
    events = [clerk_event() for _ in range(12)]
    pool, first, rest = queue_behind_a_held_batch(writer, publisher, events)
    results = [future.result(10) for future in rest]
    pool.shutdown()

    assert first.result(10).enqueued
    assert all(isinstance(r, Accepted) and r.enqueued and not r.duplicate for r in results)
    assert len(publisher.messages) == 2  # the held one, then all twelve together
    assert sorted(publisher.messages[1]) == sorted(r.row_id for r in results)
    assert set(statuses(engine).values()) == {"enqueued"}
    assert len(statuses(engine)) == 13


def test_a_delivery_repeated_inside_one_batch_is_stored_once(engine: Engine) -> None:
    publisher = RecordingPublisher(hold_first=True)
    writer = InboxWriter(engine, publisher)
    same = clerk_event("msg_same")
    pool, _, rest = queue_behind_a_held_batch(writer, publisher, [same, replace(same), replace(same)])
    results = [future.result(10) for future in rest]
    pool.shutdown()

    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert [ids for ids in publisher.messages[1:]] == [[r.row_id for r in results if not r.duplicate]]
    assert statuses(engine)["msg_same"] == "enqueued"


def test_an_event_postgresql_refuses_fails_alone_and_the_rest_of_its_batch_is_stored(engine: Engine) -> None:
    publisher = RecordingPublisher(hold_first=True)
    writer = InboxWriter(engine, publisher)
    good = [clerk_event(f"msg_good_{n}") for n in range(3)]
    bad = clerk_event("msg_bad", payload='{"type": "user.created", "name": "\\u0000"}')  # jsonb refuses \u0000
    pool, _, rest = queue_behind_a_held_batch(writer, publisher, [good[0], bad, good[1], good[2]])
    results = outcomes(rest)
    pool.shutdown()

    assert isinstance(results[1], WebhookRejected) and results[1].code == "invalid_json"
    assert all(isinstance(results[i], Accepted) and results[i].enqueued for i in (0, 2, 3))
    stored = statuses(engine)
    assert "msg_bad" not in stored
    assert all(stored[f"msg_good_{n}"] == "enqueued" for n in range(3))


def test_a_batch_the_broker_refuses_is_stored_received_for_the_sweeper(engine: Engine) -> None:
    writer = InboxWriter(engine, RecordingPublisher(accept=False))
    results = submit_all(writer, [clerk_event(f"msg_{n}") for n in range(5)])
    assert all(isinstance(r, Accepted) and not r.enqueued and not r.duplicate for r in results)
    assert set(statuses(engine).values()) == {"received"}


def test_the_writer_gives_its_connection_back_when_idle(engine: Engine) -> None:
    pool = engine.pool
    before = pool.checkedout()
    writer = InboxWriter(engine, RecordingPublisher())
    submit_all(writer, [clerk_event() for _ in range(20)])
    wait_for(lambda: pool.checkedout() == before, timeout=5, what="the writer's connection back in the pool")


def test_batches_a_moment_apart_share_one_checkout(engine: Engine) -> None:
    # Checking a connection out and back in costs round trips (isolation level set, then reset): at a steady
    # moderate rate, where every batch finds the queue empty, that was paid on every batch.
    checkouts: list[object] = []
    listener = lambda *args: checkouts.append(args)  # noqa: E731
    event.listen(engine, "checkout", listener)
    try:
        writer = InboxWriter(engine, RecordingPublisher(), idle_release_seconds=5.0)
        for _ in range(3):
            submit_all(writer, [clerk_event()])
            time.sleep(0.05)
        assert len(checkouts) == 1
    finally:
        event.remove(engine, "checkout", listener)


@pytest.mark.parametrize("count", [1, 40])
def test_every_submit_gets_its_own_row_id(engine: Engine, count: int) -> None:
    writer = InboxWriter(engine, RecordingPublisher())
    results = submit_all(writer, [clerk_event() for _ in range(count)])
    ids = [r.row_id for r in results if isinstance(r, Accepted)]
    assert len(ids) == len(set(ids)) == count
    published = [row_id for message in writer.publisher.messages for row_id in message]
    assert sorted(published) == sorted(ids)


def test_a_refusal_that_is_not_a_data_error_also_fails_alone(engine: Engine) -> None:
    """An id too long for the unique index (SQLSTATE 54000, program limit) gave the whole batch 503."""
    publisher = RecordingPublisher(hold_first=True)
    writer = InboxWriter(engine, publisher)
    good = [clerk_event(f"msg_fine_{n}") for n in range(2)]
    too_long = clerk_event("msg_" + secrets.token_hex(2500))  # bypasses the receiver's length check
    pool, _, rest = queue_behind_a_held_batch(writer, publisher, [good[0], too_long, good[1]])
    results = outcomes(rest)
    pool.shutdown()

    assert isinstance(results[1], WebhookRejected) and results[1].status == 400
    assert all(isinstance(results[i], Accepted) for i in (0, 2))
    assert set(statuses(engine)) >= {"msg_fine_0", "msg_fine_1"}
