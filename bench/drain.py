"""Backlog drain: Celery workers against a plain psycopg2 loop applying the same effects, same run.

    python bench/drain.py [--events 100000] [--processes 2] [--batch 50]

Loads N events (Clerk user.created/updated/deleted and Asaas payment CONFIRMED+RECEIVED pairs, ~20%
duplicate deliveries) into the inbox and the queue, starts the workers the way `pedro-ingest worker`
does, and measures events/s until every row is final. Then the same rows are reset and applied by
`bench/raw_effects.py` in P plain processes (the ceiling). Prints both and the ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from bench.common import REDIS_URL, ThrowawayDatabase, clerk_user_payload, drop_queue, software  # noqa: E402
from bench.raw_effects import drain as raw_drain  # noqa: E402

FINAL = "('processed', 'ignored')"
ASAAS_SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "asaas_payment_received.json"
EFFECT_TABLES = '"CreditGrant", "EntityVersion", "UsageHistory", "SubscriptionEvent", "AsaasSubscriptionLink"'


def asaas_payment(event_type: str, payment_id: str, external_reference: str) -> dict:
    sample = json.loads(
        (Path(__file__).resolve().parent.parent / "tests/fixtures/asaas_payment_received.json").read_text()
    )
    sample["id"] = f"evt_{secrets.token_hex(16)}"
    sample["event"] = event_type
    sample["payment"].update(id=payment_id, externalReference=external_reference, subscription=None, paymentLink=None,
                             installment=None, status=event_type.removeprefix("PAYMENT_"))  # fmt: skip
    return sample


def generate(count: int, plan_id: str, payers: list[str]) -> list[tuple[str, str, str, dict]]:
    """(provider, event id, type, payload): 70% user events, 30% payment events (pairs for one payment)."""
    events: list[tuple[str, str, str, dict]] = []
    base = int(time.time() * 1000) - 10_000_000
    users = 0
    while len(events) < count:
        roll = random.random()
        if roll < 0.30:
            payer = random.choice(payers)
            payment_id = f"pay_{secrets.token_hex(6)}"
            for kind in ("PAYMENT_CONFIRMED", "PAYMENT_RECEIVED"):
                body = asaas_payment(kind, payment_id, f"{payer}|plan:{plan_id}")
                events.append(("asaas", body["id"], kind, body))
            continue
        users += 1
        clerk_id = f"user_{secrets.token_hex(8)}"
        created = clerk_user_payload(clerk_id, "user.created", base + users)
        events.append(("clerk", f"msg_{secrets.token_hex(10)}", "user.created", created))
        if roll < 0.55:
            updated = clerk_user_payload(clerk_id, "user.updated", base + users + 1000)
            events.append(("clerk", f"msg_{secrets.token_hex(10)}", "user.updated", updated))
        elif roll < 0.58:
            deleted = {"type": "user.deleted", "timestamp": base + users + 2000, "object": "event",
                       "data": {"id": clerk_id, "deleted": True, "object": "user"}}  # fmt: skip
            events.append(("clerk", f"msg_{secrets.token_hex(10)}", "user.deleted", deleted))
    return events[:count]


def seed(url: str, payers: list[str], plan_id: str) -> None:
    """The plan and the paying users (their own signup is not part of the drain)."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO "Plan" (id, name, credits, "updatedAt") VALUES (%s, 'Pro', 500, now())
               ON CONFLICT DO NOTHING""",
            (plan_id,),
        )
        for clerk_id in payers:
            cursor.execute(
                """WITH u AS (INSERT INTO "User" (id, "clerkId", "updatedAt") VALUES (%s, %s, now()) RETURNING id)
                   INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "updatedAt")
                   SELECT %s, id, %s, now() FROM u""",
                (f"u_{clerk_id}", clerk_id, f"b_{clerk_id}", clerk_id),
            )
    connection.close()


def load_inbox(url: str, events: list) -> list[str]:
    from models import inbox
    from models.db import make_engine
    from models.inbox import NewEvent

    engine = make_engine(url, pool_size=1)
    ids: list[str] = []
    with engine.begin() as connection:
        for start in range(0, len(events), 1000):
            chunk = [NewEvent(p, e, t, json.dumps(body), None) for p, e, t, body in events[start : start + 1000]]
            stored = inbox.store_many(connection, chunk)
            ids.extend(stored[c.key] for c in chunk)
    engine.dispose()
    return ids


def reset(url: str, payers: list[str], plan_id: str) -> None:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'TRUNCATE {EFFECT_TABLES}, "CreditBalance", "User" CASCADE')
        cursor.execute(
            """UPDATE "WebhookEvent" SET status = 'enqueued', attempts = 0, "processedAt" = NULL,
                 "lastError" = NULL, "lastErrorDetail" = NULL"""
        )
    connection.close()
    seed(url, payers, plan_id)


def deliveries(ids: list[str], duplicates: float) -> list[str]:
    extra = random.sample(ids, int(len(ids) * duplicates))
    order = ids + extra
    random.shuffle(order)
    return order


def rate_from_rows(url: str) -> tuple[int, float]:
    connection = psycopg2.connect(url)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*), EXTRACT(EPOCH FROM max("processedAt") - min("processedAt"))
                FROM "WebhookEvent" WHERE status IN {FINAL}"""
        )
        done, seconds = cursor.fetchone()
    connection.close()
    return done, float(seconds or 0.0)


def count(url: str, sql: str) -> int:
    connection = psycopg2.connect(url)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    connection.close()
    return value


def effects(url: str) -> str:
    """Order-independent effects: plan grants, and users whose newest event left them active.

    (Signup grants are not compared: when a deletion is applied before its creation, the user never gets
    a balance; applied the other way round, it does, then is deactivated. Both are correct final states.)
    """
    grants = count(url, 'SELECT count(*) FROM "UsageHistory" WHERE "creditsUsed" = -500')
    active = count(url, 'SELECT count(*) FROM "User" WHERE "isActive" AND email IS NOT NULL')
    return f"{grants}grants/{active}active"


def run_pedro(url: str, order: list[str], args: argparse.Namespace) -> tuple[float, float]:
    """Publish every delivery, then start the workers; events/s from first to last processedAt."""
    from ingest.broker.publisher import CeleryPublisher

    queue = f"pedro-drain-{secrets.token_hex(4)}"
    publisher = CeleryPublisher(REDIS_URL, queue)
    for start in range(0, len(order), args.batch):
        assert publisher.publish_many(order[start : start + args.batch])
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": REDIS_URL, "CELERY_QUEUE": queue,
           "LOG_LEVEL": "WARNING", "WORKER_METRICS_PORT": "0"}  # fmt: skip
    argv = [sys.executable, "-m", "ingest.cli", "worker", "-c", str(args.processes), "--without-gossip",
            "--without-mingle", "--without-heartbeat", "-n", f"drain-{queue}@%h"]  # fmt: skip
    worker = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    unique = len(set(order))
    try:
        while count(url, f'SELECT count(*) FROM "WebhookEvent" WHERE status IN {FINAL}') < unique:
            if time.monotonic() - started > args.timeout:
                raise RuntimeError("drain did not finish in time")
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(30)
        drop_queue(queue)
    done, seconds = rate_from_rows(url)
    return done / seconds if seconds else 0.0, time.monotonic() - started


def run_raw(url: str, order: list[str], processes: int) -> float:
    shares = [order[i::processes] for i in range(processes)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.starmap(raw_drain, [(url, share) for share in shares])
    elapsed = time.perf_counter() - started
    return len(set(order)) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=2, help="worker processes (pedro) and loop processes (raw)")
    parser.add_argument("--batch", type=int, default=50, help="ids per task message, as the receiver batches them")
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    random.seed(7)
    plan_id = "plan_pro"
    payers = [f"user_payer{i:04d}" for i in range(300)]
    with ThrowawayDatabase("pedro_drain") as database:
        seed(database.url, payers, plan_id)
        events = generate(args.events, plan_id, payers)
        ids = load_inbox(database.url, events)
        order = deliveries(ids, args.duplicates)

        raw_one = run_raw(database.url, order, 1)
        reset(database.url, payers, plan_id)
        raw = run_raw(database.url, order, args.processes)
        raw_state = effects(database.url)
        reset(database.url, payers, plan_id)
        pedro, wall = run_pedro(database.url, order, args)
        pedro_state = effects(database.url)
        failed = count(database.url, """SELECT count(*) FROM "WebhookEvent" WHERE status NOT IN ('processed')""")

    print(f"raw psycopg2 loop, 1 process:  {raw_one:,.0f} events/s")
    print(f"raw psycopg2 loop, {args.processes} processes: {raw:,.0f} events/s (ceiling)")
    print(f"pedro-ingest worker -c {args.processes}:    {pedro:,.0f} events/s ({wall:.0f}s wall with start-up)")
    print(
        f"SUMMARY drain/raw={pedro / raw if raw else 0:.2f} pedro_eps={pedro:.0f} raw_eps={raw:.0f} "
        f"raw_1proc_eps={raw_one:.0f} events={len(ids)} deliveries={len(order)} batch={args.batch} "
        f"processes={args.processes} effects_pedro={pedro_state} effects_raw={raw_state} "
        f"not_processed={failed} {software()}"
    )


if __name__ == "__main__":
    main()
