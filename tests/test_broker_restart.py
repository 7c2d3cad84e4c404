"""Redis restarts and data loss with real processes: workers reconnect by themselves, and the sweeper run by
beat re-enqueues exactly the rows whose messages the broker lost (never one still queued or reserved)."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import Engine, text

from ingest.broker.inventory import BrokerInventory
from ingest.broker.publisher import CeleryPublisher
from tests.support.clerk import clerk_user_event, signed_clerk
from tests.support.inbox import store_event
from tests.support.private_services import PrivateRedis
from tests.support.processes import Process, cli_argv, serving, wait_for
from tests.support.servers import REDIS_URL, rows, scalar

pytestmark = pytest.mark.slow  # private Redis servers restarted and shut down under load

ROOT = Path(__file__).resolve().parent.parent
FINAL = ("processed", "ignored")


def execute(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def status_of(engine: Engine, row_id: str) -> str:
    return scalar(engine, 'SELECT status FROM "WebhookEvent" WHERE id = :id', id=row_id)


def enqueued_long_ago(engine: Engine, row_id: str) -> None:
    """As the receiver leaves a row after publishing, an hour ago (older than any sweep threshold)."""
    execute(engine, """UPDATE "WebhookEvent" SET status = 'enqueued', "updatedAt" = :at WHERE id = :id""",
            id=row_id, at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1))  # fmt: skip


def sweep(engine: Engine, broker_url: str, queue: str):
    from workers.jobs.sweeper import sweep as run

    inventory = BrokerInventory(broker_url, queue)
    try:
        return run(engine, CeleryPublisher(broker_url, queue), received_after=3600, stuck_after=7200, batch=100,
                   inventory=inventory, lost_after=0)  # fmt: skip
    finally:
        inventory.close()


def start_worker(env: dict[str, str], log: Path, concurrency: int, *flags: str) -> Process:
    argv = cli_argv("worker", "-c", str(concurrency), "-n", f"restart-{secrets.token_hex(3)}@%h", *flags)
    process = Process(argv, env, log)
    process.wait_for_output("ready.", timeout=60)
    return process


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    yield server
    server.close()


@pytest.fixture
def redis_env(service_env: dict[str, str], private_redis: PrivateRedis) -> dict[str, str]:
    return service_env | {
        "CELERY_BROKER_URL": private_redis.url,
        "CELERY_QUEUE": f"pedro-restart-{secrets.token_hex(4)}",
        "WORKER_METRICS_PORT": "0",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def slow_users(engine: Engine) -> Iterator[str]:
    """Users whose Clerk id starts with the returned prefix take 50 ms to insert: tasks stay in flight."""
    prefix = f"user_slow{secrets.token_hex(3)}"
    name = f"pedro_test_slow_{secrets.token_hex(4)}"
    execute(engine, f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS
                        $$ BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$;
                        CREATE TRIGGER {name} BEFORE INSERT ON "User" FOR EACH ROW
                        WHEN (NEW."clerkId" LIKE '{prefix}%') EXECUTE FUNCTION {name}();""")  # fmt: skip
    yield prefix
    execute(engine, f'DROP TRIGGER IF EXISTS {name} ON "User"; DROP FUNCTION IF EXISTS {name}()')


# ---- which rows the sweeper re-enqueues --------------------------------------------------------------


def test_a_row_whose_message_is_still_queued_is_left_alone_and_one_the_broker_lost_is_enqueued_again(
    engine: Engine,
) -> None:
    queue = f"pedro-inventory-{secrets.token_hex(4)}"  # nobody consumes it: the message stays queued
    client = redis.Redis.from_url(REDIS_URL)
    try:
        row_id = store_event(engine, clerk_user_event())
        assert CeleryPublisher(REDIS_URL, queue).publish(row_id)
        enqueued_long_ago(engine, row_id)

        result = sweep(engine, REDIS_URL, queue)
        assert (result.enqueued, result.lost) == (0, 0)
        assert client.llen(queue) == 1

        client.delete(queue)  # the broker loses the message
        result = sweep(engine, REDIS_URL, queue)
        assert (result.enqueued, result.lost) == (1, 1)
        assert client.llen(queue) == 1 and status_of(engine, row_id) == "enqueued"
        assert sweep(engine, REDIS_URL, queue).enqueued == 0  # its new message is queued now
    finally:
        client.delete(queue)
        client.close()


def test_a_row_whose_message_a_worker_holds_reserved_is_not_enqueued_again(
    engine: Engine, worker: Process, queue_name: str
) -> None:
    """A retry waiting for its countdown sits reserved in a live worker (kombu's `unacked` hash)."""
    from workers.processing.tasks import process_event

    row_id = store_event(engine, clerk_user_event())
    enqueued_long_ago(engine, row_id)
    process_event.apply_async(args=[row_id], countdown=600, queue=queue_name)
    inventory = BrokerInventory(REDIS_URL, queue_name)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        wait_for(lambda: row_id in inventory.held() and client.llen(queue_name) == 0, 30, what="the worker reserves it")
        result = sweep(engine, REDIS_URL, queue_name)
        assert (result.enqueued, result.lost) == (0, 0)
        assert client.llen(queue_name) == 0 and status_of(engine, row_id) == "enqueued"
    finally:
        inventory.close()
        client.close()


# ---- a Redis restart under load ----------------------------------------------------------------------


def test_worker_keeps_consuming_after_redis_restarts_under_load(
    engine: Engine, redis_env: dict[str, str], private_redis: PrivateRedis, slow_users: str, tmp_path: Path
) -> None:
    """A plain `pedro-ingest worker` (gossip, mingle and heartbeat on, as operators run it), pool children
    busy and the consumer blocked on BRPOP when Redis goes away: celery 5.7.0 exits here."""
    worker = start_worker(redis_env, tmp_path / "worker.log", 4)
    publisher = CeleryPublisher(private_redis.url, redis_env["CELERY_QUEUE"])
    stop = threading.Event()
    fed: list[str] = []

    def feed() -> None:
        while not stop.wait(0.05):  # below the pool's capacity: tasks in flight *and* the consumer in BRPOP
            clerk_id = f"{slow_users}{secrets.token_hex(6)}"
            row_id = store_event(engine, clerk_user_event(clerk_id=clerk_id, email=f"{clerk_id}@example.org"))
            publisher.publish(row_id)  # refused while Redis is down: that row simply stays `received`
            fed.append(row_id)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        wait_for(lambda: fed and status_of(engine, fed[0]) == "processed", 60, what="the first event applied")
        for _ in range(4):  # the failure needs a task in flight at the right moment: several chances to meet it
            time.sleep(1.0)
            private_redis.shutdown_nosave()
            time.sleep(2.0)
            private_redis.start()
            time.sleep(1.0)
            after = store_event(engine, clerk_user_event(email=None))
            wait_for(lambda a=after: publisher.publish(a), 30, what="the broker to accept again")

            def applied(row_id: str = after) -> bool:
                assert worker.popen.poll() is None, "worker exited:\n" + worker.output()[-3000:]
                return status_of(engine, row_id) == "processed"

            wait_for(applied, 60, what="an event sent after the restart")
        assert "Unrecoverable error" not in worker.output()
    finally:
        stop.set()
        feeder.join(10)
        worker.stop()


def test_redis_shutdown_nosave_under_load_beat_alone_brings_every_acknowledged_event_to_its_effects_once(
    engine: Engine, redis_env: dict[str, str], private_redis: PrivateRedis, slow_users: str, tmp_path: Path
) -> None:
    """Receiver, two workers and beat; Redis loses every queued task mid-run; nobody sweeps by hand."""
    env = redis_env | {"SWEEP_INTERVAL": "5", "SWEEP_LOST_AFTER": "5", "SWEEP_RECEIVED_AFTER": "5"}
    env |= {"RECONCILE_INTERVAL": "3600", "RESYNC_INTERVAL": "3600", "RETENTION_INTERVAL": "3600"}
    users = [f"{slow_users}{index:04d}" for index in range(200)]
    events = [clerk_user_event("user.created", clerk_id=user, email=f"{user}@example.org",
                               updated_at=1_700_000_000_000 + i) for i, user in enumerate(users)]  # fmt: skip
    events += [clerk_user_event("user.updated", clerk_id=user, email=f"{user}@example.org", first_name="Later",
                                updated_at=1_700_000_100_000 + i) for i, user in enumerate(users)]  # fmt: skip
    events += events[:60]  # duplicate deliveries
    quiet = ("--without-gossip", "--without-mingle", "--without-heartbeat")
    workers = [start_worker(env, tmp_path / f"worker{n}.log", 2, *quiet) for n in range(2)]
    beat = Process(cli_argv("beat", "--schedule", str(tmp_path / "schedule")), env, tmp_path / "beat.log")
    acknowledged: set[str] = set()
    lock = threading.Lock()
    try:
        with serving(env, tmp_path / "receiver.log") as (_, url):

            def send(event: dict) -> None:
                body, headers = signed_clerk(event, msg_id=f"msg_{event['data']['id']}_{event['timestamp']}")
                for _ in range(100):
                    try:
                        if requests.post(f"{url}/webhooks/clerk", data=body, headers=headers, timeout=10).ok:
                            with lock:
                                acknowledged.add(headers["svix-id"])
                            return
                    except requests.RequestException:
                        pass
                    time.sleep(0.2)

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(send, events[:250]))
                private_redis.shutdown_nosave()  # the queue holds a backlog now (inserts are slow)
                time.sleep(1.0)
                private_redis.start()
                list(pool.map(send, events[250:]))
            assert len(acknowledged) == len(users) * 2

            def all_final() -> bool:
                found = rows(engine, """SELECT "eventId", status FROM "WebhookEvent" """)
                return sum(1 for event_id, status in found if status in FINAL and event_id in acknowledged) == len(
                    acknowledged
                )

            wait_for(all_final, 180, interval=1.0, what="every acknowledged event final, beat sweeping alone")
        per_user = rows(
            engine,
            """SELECT u."clerkId", u.name, b."creditsRemaining",
                      (SELECT count(*) FROM "UsageHistory" h WHERE h."userId" = u.id),
                      (SELECT count(*) FROM "CreditGrant" g WHERE g."userId" = u.id)
                 FROM "User" u JOIN "CreditBalance" b ON b."userId" = u.id WHERE u."clerkId" LIKE :p""",
            p=f"{slow_users}%",
        )
        assert sorted(r[0] for r in per_user) == users
        assert {tuple(r[1:]) for r in per_user} == {("Later Lovelace", 100, 1, 1)}  # newest state, effects once
        logs = "".join(w.output() for w in workers)
        recovered = sum(int(n) for n in re.findall(r'"lost_by_broker": (\d+)', logs))
        assert recovered > 0, "the run never lost a queued task: nothing was tested"
        assert all(w.popen.poll() is None for w in workers)
    finally:
        beat.stop()
        for process in workers:
            process.stop()


def test_inventory_reads_the_ids_of_both_task_shapes() -> None:
    from ingest.broker.task_messages import task_message

    queue = f"pedro-inventory-{secrets.token_hex(4)}"
    client = redis.Redis.from_url(REDIS_URL)
    inventory = BrokerInventory(REDIS_URL, queue)
    try:
        client.lpush(queue, task_message("pedro_ingest.process_event", ["one"], queue))
        client.lpush(queue, task_message("pedro_ingest.process_events", [["two", "three"]], queue))
        client.lpush(queue, json.dumps({"not": "a task"}))
        assert {"one", "two", "three"} <= inventory.held()
        assert inventory.missing(["one", "four"]) == {"four"}
    finally:
        client.delete(queue)
        inventory.close()
        client.close()
