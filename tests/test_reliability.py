"""Failure modes with real processes: killed workers, poison messages, Redis and PostgreSQL outages,
concurrent workers, the sweeper and replay."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ingest.broker.publisher import CeleryPublisher
from models.db import make_engine
from models.status import Failure
from tests.support.clerk import clerk_user_event, signed_clerk
from tests.support.inbox import store_event
from tests.support.private_services import PrivatePostgres, PrivateRedis
from tests.support.processes import Process, cli_argv, wait_for
from tests.support.servers import REDIS_URL, own_queue, rows, scalar

ROOT = Path(__file__).resolve().parent.parent


# ---- helpers -------------------------------------------------------------------------------------------


def execute(engine: Engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql))


def store(engine: Engine, event: dict, *, provider: str = "clerk") -> str:
    """An inbox row as the receiver stores it (status `received`)."""
    return store_event(engine, event, provider=provider)


def enqueue(engine: Engine, publisher: CeleryPublisher, row_id: str) -> None:
    assert publisher.publish(row_id)
    execute(engine, f"""UPDATE "WebhookEvent" SET status = 'enqueued' WHERE id = '{row_id}' AND status = 'received'""")


def status_of(engine: Engine, row_id: str) -> str:
    return scalar(engine, 'SELECT status FROM "WebhookEvent" WHERE id = :id', id=row_id)


def wait_status(engine: Engine, row_id: str, status: str, timeout: float = 60) -> None:
    wait_for(lambda: status_of(engine, row_id) == status, timeout, what=f"event {row_id} {status}")


def credits_of(engine: Engine, clerk_id: str) -> tuple:
    """(users, balance, ledger rows, ledger sum, grants) for one Clerk id."""
    return rows(
        engine,
        """SELECT count(DISTINCT u.id), max(b."creditsRemaining"),
                  (SELECT count(*) FROM "UsageHistory" h JOIN "User" v ON v.id = h."userId" WHERE v."clerkId" = :c),
                  (SELECT -sum(h."creditsUsed") FROM "UsageHistory" h JOIN "User" v ON v.id = h."userId"
                    WHERE v."clerkId" = :c),
                  (SELECT count(*) FROM "CreditGrant" g JOIN "User" v ON v.id = g."userId" WHERE v."clerkId" = :c)
             FROM "User" u LEFT JOIN "CreditBalance" b ON b."userId" = u.id WHERE u."clerkId" = :c""",
        c=clerk_id,
    )[0]


ONCE = (1, 100, 1, 100, 1)  # one user, balance 100, one ledger row of 100, one grant


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli_argv(*args), env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)


def start_worker(env: dict[str, str], log: Path, *extra: str, concurrency: int = 1) -> Process:
    argv = cli_argv("worker", "-c", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-n", f"rel-{secrets.token_hex(3)}@%h", *extra)  # fmt: skip
    process = Process(argv, env, log)
    process.wait_for_output("ready.", timeout=60)
    return process


@pytest.fixture
def private_env(service_env: dict[str, str]) -> dict[str, str]:
    """The session's environment with a queue of its own (a private worker sees only this test's tasks)."""
    return service_env | {"CELERY_QUEUE": own_queue("rel"), "PYTHONPATH": str(ROOT)}


@pytest.fixture
def sleeping_backends(engine: Engine):
    """Count of PostgreSQL backends of this database inside `pg_sleep` (a handler caught mid-transaction)."""

    def count() -> int:
        return scalar(
            engine,
            """SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()""",
        )

    return count


@pytest.fixture
def slow_user_insert(engine: Engine) -> Iterator:
    """`slow(clerk_id, seconds)`: inserting that user sleeps first, so a test can act mid-handler.
    Returns a function that removes the delay again."""
    created: list[str] = []

    def drop(name: str) -> None:
        execute(engine, f'DROP TRIGGER IF EXISTS {name} ON "User"; DROP FUNCTION IF EXISTS {name}()')

    def slow(clerk_id: str, seconds: float):
        name = f"pedro_test_slow_{secrets.token_hex(4)}"
        execute(
            engine,
            f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$;
                CREATE TRIGGER {name} BEFORE INSERT ON "User" FOR EACH ROW
                WHEN (NEW."clerkId" = '{clerk_id}') EXECUTE FUNCTION {name}();""",
        )
        created.append(name)
        return lambda: drop(name)

    yield slow
    for name in created:
        drop(name)


# ---- crashes, poison, retries and replay -------------------------------------------------------------


@pytest.mark.slow
def test_worker_sigkilled_mid_handler_applies_the_event_once_after_restart_and_sweep(
    engine: Engine, private_env: dict[str, str], tmp_path: Path, slow_user_insert, sleeping_backends
) -> None:
    event = clerk_user_event("user.created")
    clerk_id = event["data"]["id"]
    fast_again = slow_user_insert(clerk_id, 120)
    worker = start_worker(private_env, tmp_path / "worker1.log")
    publisher = CeleryPublisher(REDIS_URL, private_env["CELERY_QUEUE"])
    row_id = store(engine, event)
    enqueue(engine, publisher, row_id)
    try:
        wait_for(lambda: sleeping_backends() == 1, 30, what="the handler to be inside its transaction")
        worker.stop(sig=9)  # the whole worker (main process and pool child) dies, as in a machine crash
    finally:
        worker.stop()
    # The dead worker's backend would finish its sleep and roll back; end it now, as PostgreSQL's keepalive would.
    execute(engine, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
                    "AND datname = current_database()")  # fmt: skip
    wait_for(lambda: sleeping_backends() == 0, 30, what="the orphaned transaction to end")
    fast_again()
    assert status_of(engine, row_id) == "enqueued"  # its task is held by the dead worker (unacked in Redis)
    assert credits_of(engine, clerk_id)[0] == 0  # nothing half-applied

    worker = start_worker(private_env, tmp_path / "worker2.log")
    try:
        swept = cli(private_env, "sweep", "--stuck-after", "0")
        assert swept.returncode == 0, swept.stderr
        assert "enqueued=1" in swept.stdout
        wait_status(engine, row_id, "processed")
    finally:
        worker.stop()
    assert credits_of(engine, clerk_id) == ONCE


@pytest.mark.slow
def test_poison_message_that_kills_its_worker_ends_dead_after_its_budget_then_replays(
    engine: Engine, private_env: dict[str, str], tmp_path: Path
) -> None:
    fixed = tmp_path / "fixed"
    row_id = store(engine, {"type": "crash", "fixed_when": str(fixed)}, provider="test")
    worker = start_worker(private_env, tmp_path / "worker.log", "-I", "tests.support.crash_handlers")
    try:
        enqueue(engine, CeleryPublisher(REDIS_URL, private_env["CELERY_QUEUE"]), row_id)
        wait_status(engine, row_id, "dead", timeout=120)
        budget = int(private_env["TASK_MAX_RETRIES"]) + 1
        assert rows(engine, 'SELECT attempts, "lastError" FROM "WebhookEvent" WHERE id = :id', id=row_id) == [
            (budget, "worker_lost")
        ]
        assert worker.output().count("WorkerLostError") >= budget  # it really crashed, once per attempt

        shown = cli(private_env, "events", "show", row_id)
        assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "dead"

        fixed.touch()  # the fix is deployed
        replayed = cli(private_env, "replay", "--status", "dead", "--type", "crash")
        assert replayed.returncode == 0, replayed.stderr
        assert f"{row_id}: replay enqueued" in replayed.stdout
        wait_status(engine, row_id, "processed")
    finally:
        worker.stop()
    assert rows(engine, 'SELECT attempts, "lastError" FROM "WebhookEvent" WHERE id = :id', id=row_id) == [(1, None)]


@pytest.mark.slow
def test_handler_that_always_raises_ends_dead_with_its_error_then_replay_after_the_fix_applies_it(
    engine: Engine, client, worker, service_env: dict[str, str]
) -> None:
    event = clerk_user_event("user.created")
    clerk_id = event["data"]["id"]
    refuse = f"pedro_test_refuse_{secrets.token_hex(4)}"
    execute(
        engine,
        f"""CREATE FUNCTION {refuse}() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
            CREATE TRIGGER {refuse} BEFORE INSERT ON "User" FOR EACH ROW
            WHEN (NEW."clerkId" = '{clerk_id}') EXECUTE FUNCTION {refuse}();""",
    )
    try:
        body, headers = signed_clerk(event)
        response = client.post("/webhooks/clerk", data=body, headers=headers)
        assert response.status_code == 200 and response.json["enqueued"] is True
        row_id = response.json["id"]
        wait_status(engine, row_id, "dead")
    finally:
        execute(engine, f'DROP TRIGGER IF EXISTS {refuse} ON "User"; DROP FUNCTION IF EXISTS {refuse}()')
    attempts, code, detail = rows(
        engine, 'SELECT attempts, "lastError", "lastErrorDetail" FROM "WebhookEvent" WHERE id = :id', id=row_id
    )[0]
    assert attempts == int(service_env["TASK_MAX_RETRIES"]) + 1
    assert code == "handler_error" and detail == Failure.HANDLER_ERROR.sentence
    assert credits_of(engine, clerk_id)[0] == 0

    listed = cli(service_env, "events", "list", "--status", "dead", "--provider", "clerk", "--since", "1h")
    assert row_id in listed.stdout and "error=handler_error" in listed.stdout
    replayed = cli(service_env, "replay", row_id)
    assert replayed.returncode == 0 and f"{row_id}: replay enqueued" in replayed.stdout
    wait_status(engine, row_id, "processed")
    assert credits_of(engine, clerk_id) == ONCE

    again = cli(service_env, "replay", row_id)
    assert again.returncode == 0
    assert f"{row_id}: already processed, nothing to replay" in again.stdout
    assert credits_of(engine, clerk_id) == ONCE


def test_replay_and_events_refuse_unknown_ids_and_bad_filters(engine: Engine, service_env: dict[str, str]) -> None:
    missing = cli(service_env, "replay", "does-not-exist")
    assert missing.returncode == 1 and "does-not-exist: no such event" in missing.stderr
    both = cli(service_env, "replay", "some-id", "--status", "dead")
    assert both.returncode == 2 and "not both" in both.stderr
    since = cli(service_env, "events", "list", "--since", "yesterday")
    assert since.returncode == 2 and "--since" in since.stderr
    shown = cli(service_env, "events", "show", "does-not-exist")
    assert shown.returncode == 1 and "no event with id" in shown.stderr


# ---- outages -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_redis_down_while_events_arrive_every_acknowledged_event_is_processed_after_the_sweep(
    engine: Engine, private_env: dict[str, str], tmp_path: Path, monkeypatch
) -> None:
    from ingest.config.settings import load_settings
    from ingest.http.app import create_app

    redis = PrivateRedis().start()
    env = private_env | {"CELERY_BROKER_URL": redis.url}
    monkeypatch.setenv("CELERY_BROKER_URL", redis.url)
    monkeypatch.setenv("CELERY_QUEUE", env["CELERY_QUEUE"])
    client = create_app(load_settings()).test_client()
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        events = [clerk_user_event("user.created") for _ in range(12)]
        answers = []
        for index, event in enumerate(events):
            if index == 4:
                redis.stop()
            if index == 8:
                redis.start()
            body, headers = signed_clerk(event)
            response = client.post("/webhooks/clerk", data=body, headers=headers)
            assert response.status_code == 200  # acknowledged: durable in PostgreSQL whatever Redis does
            answers.append(response.json)
        assert [answer["enqueued"] for answer in answers[4:8]] == [False] * 4
        # The tasks queued before the outage died with Redis (no persistence): those rows are stranded too.
        swept = cli(env, "sweep", "--received-after", "0", "--stuck-after", "0")
        assert swept.returncode == 0, swept.stderr + swept.stdout
        wait_for(
            lambda: scalar(engine, """SELECT count(*) FROM "WebhookEvent" WHERE status = 'processed'""") == 12,
            60,
            what="every acknowledged event processed",
        )
    finally:
        worker.stop()
        redis.close()
    for event in events:
        assert credits_of(engine, event["data"]["id"]) == ONCE


@pytest.mark.slow
def test_sweep_says_so_when_the_broker_is_down(engine: Engine, private_env: dict[str, str]) -> None:
    redis = PrivateRedis()  # never started: nothing listens on its port
    row_id = store(engine, clerk_user_event("user.created"))
    swept = cli(private_env | {"CELERY_BROKER_URL": redis.url}, "sweep", "--received-after", "0")
    assert swept.returncode == 1 and "broker unreachable" in swept.stdout
    assert status_of(engine, row_id) == "received"  # still there for the next sweep


@pytest.mark.slow
def test_postgres_restarted_while_the_worker_is_processing_the_events_retry_and_succeed(
    private_env: dict[str, str], tmp_path: Path
) -> None:
    from migrations.runner import migrate

    postgres = PrivatePostgres().start()
    try:
        url = postgres.create_database("pedro_outage")
        migrate(url)
        engine = make_engine(url)
        env = private_env | {"DATABASE_URL": url, "TASK_MAX_RETRIES": "8", "LOG_LEVEL": "INFO"}
        events = [clerk_user_event("user.created") for _ in range(4)]
        slow_id = events[0]["data"]["id"]
        execute(
            engine,
            f"""CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$;
                CREATE TRIGGER slow_insert BEFORE INSERT ON "User" FOR EACH ROW
                WHEN (NEW."clerkId" = '{slow_id}') EXECUTE FUNCTION slow_insert();""",
        )
        worker = start_worker(env, tmp_path / "worker.log")
        try:
            publisher = CeleryPublisher(REDIS_URL, env["CELERY_QUEUE"])
            row_ids = [store(engine, event) for event in events]
            for row_id in row_ids:
                enqueue(engine, publisher, row_id)
            wait_for(
                lambda: scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") == 1,
                30,
                what="the worker inside a transaction",
            )
            engine.dispose()
            postgres.restart(down_for=1.0)  # terminates the worker's connection mid-transaction
            wait_for(
                lambda: scalar(engine, """SELECT count(*) FROM "WebhookEvent" WHERE status = 'processed'""") == 4,
                90,
                what="every event processed after the restart",
            )
            assert "retry: Retry in" in worker.output()  # the interrupted attempt was retried, not lost
        finally:
            worker.stop()
        for event in events:
            assert credits_of(engine, event["data"]["id"]) == ONCE
        engine.dispose()
    finally:
        postgres.close()


# ---- concurrency ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_receiving_the_same_events_and_the_same_users_at_once_apply_each_effect_once(
    engine: Engine, worker, service_env: dict[str, str], tmp_path: Path
) -> None:
    # The session worker (-c 1) and a second worker process (-c 2) share the queue: three consumers.
    second = start_worker(service_env, tmp_path / "second.log", concurrency=2)
    publisher = CeleryPublisher(REDIS_URL, service_env["CELERY_QUEUE"])
    base = int(time.time() * 1000) - 60_000
    users = [f"user_conc{index}{secrets.token_hex(4)}" for index in range(8)]
    newest = {}
    row_ids = []
    try:
        for clerk_id in users:
            for version in range(4):
                kind = "user.created" if version == 0 else "user.updated"
                event = clerk_user_event(kind, clerk_id=clerk_id, email=f"{clerk_id}.{version}@example.org",
                                         first_name=f"V{version}", updated_at=base + version * 1000)  # fmt: skip
                row_ids.append(store(engine, event))
                newest[clerk_id] = (f"{clerk_id}.{version}@example.org", f"V{version} Lovelace", True)
        for _ in range(3):  # every event delivered three times, interleaved
            for row_id in row_ids:
                assert publisher.publish(row_id)
        wait_for(
            lambda: (
                scalar(engine, """SELECT count(*) FROM "WebhookEvent" WHERE status = 'processed'""") == len(row_ids)
            ),
            60,
            what="all events processed",
        )
    finally:
        second.stop()
    for clerk_id in users:
        assert credits_of(engine, clerk_id) == ONCE
        assert rows(engine, 'SELECT email, name, "isActive" FROM "User" WHERE "clerkId" = :c', c=clerk_id) == [
            newest[clerk_id]
        ]
    assert scalar(engine, 'SELECT max(attempts) FROM "WebhookEvent"') == 1  # duplicates found them processed


class SlowRecordingPublisher:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.lock = threading.Lock()

    def publish(self, row_id: str) -> bool:
        time.sleep(0.01)  # keeps the first sweep's locks held while the second one scans
        with self.lock:
            self.published.append(row_id)
        return True


def test_two_sweeps_at_once_enqueue_each_stranded_row_once(engine: Engine) -> None:
    from workers.jobs.sweeper import sweep

    row_ids = [store(engine, clerk_user_event("user.created")) for _ in range(40)]
    fresh = store(engine, clerk_user_event("user.created"))
    execute(engine, f"""UPDATE "WebhookEvent" SET "receivedAt" = now() - interval '1 hour',
                        status = CASE WHEN random() < 0.5 THEN 'received' ELSE 'enqueued' END,
                        "updatedAt" = now() - interval '1 hour' WHERE id <> '{fresh}'""")  # fmt: skip
    processed = row_ids.pop()
    execute(engine, f"""UPDATE "WebhookEvent" SET status = 'processed' WHERE id = '{processed}'""")
    publisher = SlowRecordingPublisher()
    results = []

    def run() -> None:
        results.append(sweep(engine, publisher, received_after=60, stuck_after=600, batch=7))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(publisher.published) == sorted(row_ids)  # each once; not the fresh one, not the processed one
    assert sum(result.enqueued for result in results) == len(row_ids)
    assert {status_of(engine, row_id) for row_id in row_ids} == {"enqueued"}
    assert status_of(engine, fresh) == "received"


# ---- the chaos run -------------------------------------------------------------------------------------

CHAOS_EVENTS = 1000  # enough for every kill and restart to land mid-run; bench/chaos.py runs 5,000 and more


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_chaos_run_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    """The slow one: 1,000 Clerk user and Asaas payment events with duplicates and forgeries while workers are
    SIGKILLed and private Redis and PostgreSQL servers restart, with beat as the only sweeper; the database
    must equal the oracle. (`bench/chaos.py` runs 5,000 and more.)"""
    ours = ("CLERK_", "ASAAS_", "CELERY_", "DATABASE_", "TASK_", "RETRY_", "VISIBILITY_", "SWEEP_", "DB_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(ours)}  # its own servers
    chaos = [str(ROOT / "bench" / "chaos.py"), "--events", str(CHAOS_EVENTS), "--logs", str(tmp_path)]
    result = subprocess.run(
        [str(Path(cli_argv()[0])), *chaos],
        env=env,
        capture_output=True,
        text=True,
        timeout=560,
        cwd=ROOT,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    fields = dict(part.split("=", 1) for part in summary.split() if "=" in part)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert fields["events"] == fields["accepted"] == str(CHAOS_EVENTS)
    assert int(fields["forged_rejected"]) == CHAOS_EVENTS // 100
    assert (fields["lost"], fields["double_applied"], fields["mismatches"]) == ("0", "0", "0")
    assert fields["chaos_actions"] == "7"  # every kill and restart happened
    assert fields["worker_restarts"] == "0"  # every worker reconnected by itself after the Redis restart
    assert int(fields["recovered_lost"]) > 0  # beat's sweeps, not the harness, re-enqueued what Redis lost
    # 30% of the events are Asaas payments, checked by their own oracle; some refunds really came first.
    assert fields["payment_events"] == str(CHAOS_EVENTS * 3 // 10) and int(fields["payments"]) > 0
    assert (fields["payment_double"], fields["payment_mismatches"]) == ("0", "0")
    assert 0 < int(fields["refunds_before_grant"]) <= int(fields["refunded"])
    assert all(int(fields[f"purchases_{kind}"]) > 0 for kind in ("partial", "installments", "chargeback", "trial"))
