"""No event holds a worker for long (task time limits, lock and statement timeouts), and every failed,
dead or retrying row says why in a code and a sentence a person can read."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ingest.broker.publisher import CeleryPublisher
from ingest.config.settings import get_settings
from models.status import Failure
from tests.support.clerk import clerk_subscription_event, clerk_user_event
from tests.support.inbox import store_event
from tests.support.processes import Process, cli_argv, wait_for
from tests.support.servers import REDIS_URL, own_queue, rows, scalar
from workers.processing import apply as processing

ROOT = Path(__file__).resolve().parent.parent


def execute(engine: Engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql))


def row_of(engine: Engine, row_id: str) -> tuple:
    return rows(engine, 'SELECT status, attempts, "lastError", "lastErrorDetail" FROM "WebhookEvent" WHERE id = :i',
                i=row_id)[0]  # fmt: skip


def users_named(engine: Engine, clerk_id: str) -> int:
    return scalar(engine, 'SELECT count(*) FROM "User" WHERE "clerkId" = :c', c=clerk_id)


@pytest.fixture
def slow_insert(engine: Engine) -> Iterator:
    """`slow(clerk_id, seconds)`: inserting that user sleeps first (inside the worker's transaction)."""
    names: list[str] = []

    def slow(clerk_id: str, seconds: float) -> None:
        name = f"pedro_test_sleep_{secrets.token_hex(4)}"
        execute(engine, f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS
                            $$ BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$;
                            CREATE TRIGGER {name} BEFORE INSERT ON "User" FOR EACH ROW
                            WHEN (NEW."clerkId" = '{clerk_id}') EXECUTE FUNCTION {name}();""")  # fmt: skip
        names.append(name)

    yield slow
    for name in names:
        execute(engine, f'DROP TRIGGER IF EXISTS {name} ON "User"; DROP FUNCTION IF EXISTS {name}()')


def private_worker(service_env: dict[str, str], tmp_path: Path, **settings: str) -> tuple[Process, CeleryPublisher]:
    queue = own_queue("limits")
    env = service_env | {"CELERY_QUEUE": queue, "WORKER_METRICS_PORT": "0", "PYTHONPATH": str(ROOT), **settings}
    argv = cli_argv("worker", "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-n", f"limits-{secrets.token_hex(3)}@%h")  # fmt: skip
    process = Process(argv, env, tmp_path / "worker.log")
    process.wait_for_output("ready.", timeout=60)
    return process, CeleryPublisher(REDIS_URL, queue)


@pytest.mark.slow
def test_an_event_over_the_soft_time_limit_is_rolled_back_retried_and_dead_after_its_budget(
    engine: Engine, service_env: dict[str, str], tmp_path: Path, slow_insert
) -> None:
    event = clerk_user_event()
    clerk_id = event["data"]["id"]
    slow_insert(clerk_id, 2.0)  # the insert returns after the 1 s soft limit has fired
    worker, publisher = private_worker(service_env, tmp_path, TASK_SOFT_TIME_LIMIT="1", TASK_TIME_LIMIT="30",
                                       DB_STATEMENT_TIMEOUT_MS="0")  # fmt: skip
    try:
        row_id = store_event(engine, event)
        assert publisher.publish(row_id)
        wait_for(lambda: row_of(engine, row_id)[0] == "dead", 90, what="dead after its attempts")
    finally:
        worker.stop()
    status, attempts, code, sentence = row_of(engine, row_id)
    assert attempts == int(service_env["TASK_MAX_RETRIES"]) + 1
    assert code == "time_limit" and "TASK_SOFT_TIME_LIMIT" in sentence
    assert users_named(engine, clerk_id) == 0  # every attempt's insert was rolled back
    assert '"code": "time_limit"' in worker.output()


@pytest.mark.slow
def test_a_worker_stuck_on_a_row_lock_gives_up_after_the_lock_timeout_and_applies_once_the_lock_is_gone(
    engine: Engine, service_env: dict[str, str], tmp_path: Path
) -> None:
    clerk_id = f"user_{secrets.token_hex(6)}"
    worker, publisher = private_worker(service_env, tmp_path, DB_LOCK_TIMEOUT_MS="300", TASK_MAX_RETRIES="20")
    try:
        created = store_event(engine, clerk_user_event(clerk_id=clerk_id, first_name="Before", updated_at=1000))
        assert publisher.publish(created)
        wait_for(lambda: row_of(engine, created)[0] == "processed", 30, what="the user created")
        with engine.connect() as holder:  # another transaction (the web app, say) holds the user's row
            holder.execute(text('SELECT 1 FROM "User" WHERE "clerkId" = :c FOR UPDATE'), {"c": clerk_id})
            updated = store_event(
                engine, clerk_user_event("user.updated", clerk_id=clerk_id, first_name="After", updated_at=2000)
            )
            assert publisher.publish(updated)
            wait_for(lambda: row_of(engine, updated)[2] == "lock_timeout", 30, what="the worker to give up")
            status, attempts, _, sentence = row_of(engine, updated)
            assert status == "received" and attempts >= 1 and "DB_LOCK_TIMEOUT_MS" in sentence  # still pending
            holder.rollback()
        wait_for(lambda: row_of(engine, updated)[0] == "processed", 60, what="applied after the lock is gone")
    finally:
        worker.stop()
    assert scalar(engine, 'SELECT name FROM "User" WHERE "clerkId" = :c', c=clerk_id).startswith("After")


def test_a_statement_over_the_statement_timeout_is_cancelled_and_rolled_back(engine: Engine, slow_insert) -> None:
    event = clerk_user_event()
    slow_insert(event["data"]["id"], 5.0)
    row_id = store_event(engine, event)
    settings = get_settings().model_copy(update={"db_statement_timeout_ms": 200})
    outcome = processing.process_event(row_id, attempt=1, engine=engine, settings=settings)
    assert outcome.status == "retry"
    assert row_of(engine, row_id)[:3] == ("received", 1, "statement_timeout")
    assert users_named(engine, event["data"]["id"]) == 0


# ---- reasons a person can read -----------------------------------------------------------------------


def test_a_retrying_event_shows_a_code_and_a_sentence_and_the_log_keeps_where_it_came_from(
    engine: Engine, service_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    clerk_id = f"user_{secrets.token_hex(6)}"  # a payer whose user.created has not arrived yet
    row_id = store_event(engine, clerk_subscription_event("subscription.created", clerk_id), provider="clerk")
    with caplog.at_level(logging.WARNING, logger="workers.processing.apply"):
        assert processing.process_event(row_id, attempt=2, engine=engine).status == "retry"
    assert row_of(engine, row_id)[2:] == ("payer_not_synced", "the payer's Clerk user is not synced yet")
    logged = [r for r in caplog.records if getattr(r, "code", None) == "payer_not_synced"]
    assert logged and logged[0].error_type == "TransientError"
    assert logged[0].error_at.startswith("workers.handlers.clerk_billing:_payer:")

    def cli(*args: str) -> str:
        done = subprocess.run(cli_argv(*args), env=service_env, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = cli("events", "list", "--status", "received")
    line = next(line for line in listed.splitlines() if line.startswith(row_id))
    assert "payer_not_synced: the payer's Clerk user is not synced yet" in line
    shown = json.loads(cli("events", "show", row_id))
    assert shown["reason"] == {
        "code": "payer_not_synced",
        "meaning": Failure.PAYER_NOT_SYNCED.sentence,
        "sentence": "the payer's Clerk user is not synced yet",
    }
    assert clerk_id not in line and "_payer" not in json.dumps({k: v for k, v in shown.items() if k != "payload"})


def test_an_unexpected_database_error_reads_as_a_handler_error_without_its_origin(engine: Engine) -> None:
    from sqlalchemy.exc import InternalError

    from workers.processing.failure_reasons import reason_for

    reason = reason_for(InternalError("INSERT …", {}, Exception("refused")))
    assert reason.code == "handler_error" and "worker log" in reason.sentence and " at " not in reason.sentence
