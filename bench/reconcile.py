"""Benchmark: reconcile N balances (default 1,000,000) in a throw-away database; prints rows/s and memory.

    .venv/bin/python bench/reconcile.py [--balances N] [--page-size P] [--admin-url postgresql://…/postgres]

Data (generate_series, in SQL): N users and balances; 90% opened by pedro-ingest (a signup ledger row),
10% predating it (no origin: the first run records their opening balance); ~6/7 carry one web-app
deduction; 0.1% were changed behind the ledger's back. Runs, in order:
  baseline  one plain SQL aggregate that finds the same mismatches (no paging, no writes)
  first     reconcile (report policy): records the opening rows, reports drift, stamps lastSyncedAt
  steady    reconcile again: only balances changed since their stamp get a new one (none here)
  read-only the same with --dry-run: the read cost alone
  traced    steady again under tracemalloc, for the peak Python heap (slower; not a speed figure)
Prints figures only; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import secrets
import sys
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

GENERATE = [
    """INSERT INTO "User" (id, "clerkId", "updatedAt")
       SELECT 'u' || lpad(g::text, 8, '0'), 'user_' || g, now() FROM generate_series(1, %(n)s) g""",
    """INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
       SELECT 'b' || lpad(g::text, 8, '0'), 'u' || lpad(g::text, 8, '0'), 'user_' || g, 100 - g %% 7, now()
         FROM generate_series(1, %(n)s) g""",
    """INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details)
       SELECT 's' || g, 'u' || lpad(g::text, 8, '0'), 'b' || lpad(g::text, 8, '0'), 'CREDIT_GRANT', -100,
              '{"kind": "signup"}'::jsonb
         FROM generate_series(1, %(n)s) g WHERE g %% 10 <> 0""",
    """INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed")
       SELECT 'd' || g, 'u' || lpad(g::text, 8, '0'), 'b' || lpad(g::text, 8, '0'), 'AI_TEXT_CHAT', g %% 7
         FROM generate_series(1, %(n)s) g WHERE g %% 7 <> 0""",
    """UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + 1
        WHERE id IN (SELECT 'b' || lpad(g::text, 8, '0') FROM generate_series(5, %(n)s, 1000) g)""",
    """VACUUM ANALYZE""",
]
BASELINE = """
    SELECT count(*) FILTER (WHERE b."creditsRemaining" <> COALESCE(l.total, 0)), count(*)
      FROM "CreditBalance" b
      LEFT JOIN (SELECT "creditBalanceId", sum(-"creditsUsed") AS total FROM "UsageHistory" GROUP BY 1) l
        ON l."creditBalanceId" = b.id
"""


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--balances", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--admin-url", default=os.environ.get("PEDRO_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--keep", action="store_true", help="Keep the database (its name is printed).")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # one "balance drift" line per drifted balance is the service's job, not ours

    name = f"pedro_bench_{os.getpid()}_{secrets.token_hex(3)}"
    parts = urlsplit(args.admin_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    admin = psycopg2.connect(args.admin_url)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        run(url, args.balances, args.page_size)
    finally:
        if not args.keep:
            from models.db import _engines

            for engine in _engines.values():
                engine.dispose()
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def run(url: str, n: int, page_size: int) -> None:
    from migrations.runner import migrate
    from models.db import engine_for

    migrate(url)
    started = time.perf_counter()
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for statement in GENERATE:
            cursor.execute(statement, {"n": n})
    connection.close()
    print(f"generated {n:,} balances in {time.perf_counter() - started:.1f}s")

    connection = psycopg2.connect(url)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(BASELINE)
        mismatched, total = cursor.fetchone()
    baseline = time.perf_counter() - started
    connection.close()
    print(f"baseline  SQL aggregate: {total:,} rows, {mismatched:,} mismatched, {baseline:.2f}s, "
          f"{total / baseline:,.0f} rows/s")  # fmt: skip

    from workers.jobs.reconcile import reconcile

    engine = engine_for(url, pool_size=2)
    rss_before = peak_rss_mib()
    for label in ("first", "steady"):
        started = time.perf_counter()
        report = reconcile(fix=False, page_size=page_size, engine=engine)
        seconds = time.perf_counter() - started
        print(
            f"{label:<9} reconcile: {report.scanned:,} rows, {report.openings:,} openings, {report.drifted:,} drifted,"
            f" {report.stamped:,} stamped,"
            f" {seconds:.2f}s, {report.scanned / seconds:,.0f} rows/s, {seconds / baseline:.1f}x the baseline"
        )
    started = time.perf_counter()
    report = reconcile(fix=False, page_size=page_size, engine=engine, dry_run=True)
    seconds = time.perf_counter() - started
    print(
        f"read-only reconcile --dry-run (no lastSyncedAt stamps): {report.scanned / seconds:,.0f} rows/s, "
        f"{seconds:.2f}s, {seconds / baseline:.1f}x the baseline"
    )
    print(f"peak RSS  {peak_rss_mib():.0f} MiB (before the reconcile runs: {rss_before:.0f} MiB)")
    tracemalloc.start()
    reconcile(fix=False, page_size=page_size, engine=engine)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"traced    peak Python heap during a steady run: {peak / 2**20:.1f} MiB (page size {page_size})")


if __name__ == "__main__":
    main()
