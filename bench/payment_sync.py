"""Payment backfill against the same payments applied as webhooks, same run, same handlers.

    python bench/payment_sync.py [--payments 2000] [--concurrency 4] [--latency 0.02]

In a throw-away database, one payer and plan. Runs, in order:
  baseline  N `PAYMENT_RECEIVED` webhook rows stored and processed in-process (`process_event`, no HTTP)
  backfill  N other payments listed by a local fake of `GET /v3/payments` (each request delayed by
            --latency, as a remote API is) and applied through `resync-payments`
  steady    the same backfill again: every payment already applied, only reads
Prints payments/s of each and the ratios backfill/baseline and steady/baseline; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REDIS_URL, ThrowawayDatabase, software  # noqa: E402

DAY = "2026-11-30"


def seed(url: str) -> str:
    import psycopg2

    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute("""INSERT INTO "User" (id, "clerkId", "updatedAt") VALUES ('u1', 'user_payer', now())""")
        cursor.execute(
            """INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
               VALUES ('b1', 'u1', 'user_payer', 0, now())"""
        )
        cursor.execute("""INSERT INTO "Plan" (id, name, credits, "updatedAt") VALUES ('plan1', 'Pro', 10, now())""")
    connection.close()
    return "user_payer|plan:plan1"


def baseline(count: int, reference: str) -> float:
    from ingest.config.database import default_engine
    from models import inbox
    from models.base import utcnow
    from tests.support.fake_asaas import asaas_api_payment
    from workers.processing.apply import process_event

    engine = default_engine()
    started = time.perf_counter()
    for n in range(count):
        event_id = f"evt_{secrets.token_hex(8)}"
        payment = asaas_api_payment(f"pay_hook{n:06d}", external_reference=reference, payment_date=DAY)
        body = json.dumps({"id": event_id, "event": "PAYMENT_RECEIVED", "payment": payment})
        new = inbox.NewEvent("asaas", event_id, "PAYMENT_RECEIVED", body, utcnow())
        with engine.begin() as connection:
            row_id = inbox.store_many(connection, [new])[new.key]
        assert process_event(row_id, engine=engine).status == "processed"
    return count / (time.perf_counter() - started)


def backfill(fake, concurrency: int, prefix: str) -> tuple[float, object]:
    import redis

    from ingest.config.settings import get_settings
    from workers.jobs.payment_sync import resync_payments
    from workers.jobs.payment_sync_state import SyncState
    from workers.providers.asaas_api import AsaasApi
    from workers.providers.asaas_limiter import AsaasLimiter

    client = redis.Redis.from_url(REDIS_URL)
    limiter = AsaasLimiter(client, concurrency=concurrency, quota=1_000_000, prefix=f"{prefix}:api")
    api = AsaasApi(fake.url, fake.api_key, limiter, budget=100_000)
    settings = get_settings().model_copy(update={"asaas_api_concurrency": concurrency})
    started = time.perf_counter()
    report = resync_payments(
        since=dt.date.fromisoformat(DAY), settings=settings, api=api, state=SyncState(client, f"{prefix}:sync")
    )
    return len(fake.payments) / (time.perf_counter() - started), report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the fake API takes per request")
    args = parser.parse_args()

    with ThrowawayDatabase("pedro_paysync") as database:
        os.environ.update(DATABASE_URL=database.url, CELERY_BROKER_URL=REDIS_URL, LOG_LEVEL="WARNING")
        from tests.support.fake_asaas import FakeAsaas, asaas_api_payment

        reference = seed(database.url)
        base = baseline(args.payments, reference)
        prefix = f"pedro-bench:asaas:{secrets.token_hex(4)}"
        with FakeAsaas(delay=args.latency) as fake:
            fake.payments = [
                asaas_api_payment(f"pay_sync{n:06d}", external_reference=reference, payment_date=DAY)
                for n in range(args.payments)
            ]
            first, report = backfill(fake, args.concurrency, prefix)
            steady, again = backfill(fake, args.concurrency, prefix)
            requests = len(fake.requests)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        grants = database.scalar('SELECT count(*) FROM "CreditGrant"')

    print(f"webhook rows processed in-process: {base:,.0f} payments/s (baseline)")
    print(f"backfill, concurrency {args.concurrency}:       {first:,.0f} payments/s ({report.status})")
    print(f"backfill again (nothing new):     {steady:,.0f} payments/s ({again.status})")
    print(
        f"SUMMARY backfill/baseline={first / base:.2f} steady/baseline={steady / base:.2f} baseline_pps={base:.0f} "
        f"backfill_pps={first:.0f} steady_pps={steady:.0f} payments={args.payments} applied={report.applied} "
        f"applied_again={again.applied} grants={grants} api_requests={requests} concurrency={args.concurrency} "
        f"latency_s={args.latency} {software()}"
    )


if __name__ == "__main__":
    main()
