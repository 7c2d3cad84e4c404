"""Benchmark: the web app's deduction through `pedro_deduct_credits` against a plain two-statement baseline.

    .venv/bin/python bench/deductions.py [--calls N] [--threads T]

Baseline (same run, same database): what a web app writes without the function, an unconditional
`UPDATE "CreditBalance" … RETURNING` and an `INSERT INTO "UsageHistory"` in one transaction (no
balance check, no idempotency key). pedro: one `SELECT * FROM pedro_deduct_credits(…)` in autocommit
(key claim, conditional decrement, ledger row, key result). Both run on distinct users (`spread`) and
with T threads on one user (`one user`, every call waits for the previous one's row lock).

Lots (`--lots`): today's single-row function (revision 0010's `pedro_deduct_credits`, installed here as
`bench_deduct_single_row`) is the baseline for the lot-drawing one. `spread`: every call deducts 3 credits
from a user of its own holding a plan lot of 1, a signup lot of 1 and a purchase, so each call draws from
3 lots; `one_user`: T threads on one user holding 3 live lots.

Expiry (`--expiry`): 1,000,000 lots on 100,000 balances, 10 % due; the job's batches of
`pedro_expire_lots` (balances locked, lots expired, balances lowered, one ledger row per lot) against a
plain `UPDATE "CreditLot" SET "expiredAt" = …` of the same rows. Prints figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from bench.common import ThrowawayDatabase, software  # noqa: E402

USERS = 1000
SETUP = [
    """INSERT INTO "User" (id, "clerkId", "updatedAt")
       SELECT 'u' || g, 'user_' || g, now() FROM generate_series(1, %(n)s) g""",
    """INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
       SELECT 'b' || g, 'u' || g, 'user_' || g, 1000000000, now() FROM generate_series(1, %(n)s) g""",
]
BASELINE = [
    """UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" - 1, "updatedAt" = now()
        WHERE "clerkUserId" = %(clerk)s RETURNING id, "userId", "creditsRemaining" """,
    """INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed", details)
       VALUES (%(id)s, 'u' || %(n)s, 'b' || %(n)s, 'AI_TEXT_CHAT', 1, '{"model": "m"}')""",
]
PEDRO = """SELECT * FROM pedro_deduct_credits(%(clerk)s, 1, 'AI_TEXT_CHAT', %(id)s, '{"model": "m"}')"""
LOT_SETUP = """
    INSERT INTO "CreditLot" (id, "userId", "creditBalanceId", category, amount, remaining, priority, "effectiveAt",
                             "expiresAt")
    SELECT 'l' || g || c.category, 'u' || g, 'b' || g, c.category, c.amount, c.amount, pedro_lot_priority(c.category),
           now(), c.expires
      FROM generate_series(1, %(n)s) g,
           (VALUES ('plan', 1, now() + interval '30 days'), ('signup', 1, NULL::timestamp),
                   ('purchase', 999999998, NULL)) c(category, amount, expires)
"""


def baseline_call(connection, n: int) -> None:
    with connection, connection.cursor() as cursor:
        params = {"clerk": f"user_{n}", "n": n, "id": secrets.token_hex(12)}
        for statement in BASELINE:
            cursor.execute(statement, params)


def pedro_call(connection, n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(PEDRO, {"clerk": f"user_{n}", "id": secrets.token_hex(12)})
        assert cursor.fetchone()[0], "deduction refused"


CHARGE = """SELECT * FROM {function}(%(clerk)s, %(credits)s, 'AI_TEXT_CHAT', %(id)s, '{{"model": "m"}}')"""


def function_call(function: str, credits: int, connection, n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(CHARGE.format(function=function), {"clerk": f"user_{n}", "id": secrets.token_hex(12),
                                                          "credits": credits})  # fmt: skip
        assert cursor.fetchone()[0], "deduction refused"


def lots(calls: int, threads: int) -> None:
    """Revision 0010's single-row deduction against the lot-drawing one, same database, same run."""
    single_row = importlib.import_module("migrations.versions.0010_deduction_inputs").DEDUCT
    with ThrowawayDatabase("pedro_bench_lots") as database:
        connection = psycopg2.connect(database.url)
        with connection, connection.cursor() as cursor:
            for statement in SETUP:
                cursor.execute(statement, {"n": calls})
            cursor.execute(LOT_SETUP, {"n": calls})
            cursor.execute(single_row.replace("pedro_deduct_credits(", "bench_deduct_single_row(", 1))
        connection.close()
        figures = {}
        for label, one_user, credits in (("spread", False, 3), ("one_user", True, 1)):
            old = functools.partial(function_call, "bench_deduct_single_row", credits)
            new = functools.partial(function_call, "pedro_deduct_credits", credits)
            base = rate(database.url, old, calls, threads, one_user, True, users=calls)
            pedro = rate(database.url, new, calls, threads, one_user, True, users=calls)
            figures[label] = (base, pedro)
            print(f"{label:9} single-row {base:8,.0f} calls/s   lots {pedro:8,.0f} calls/s  "
                  f"cost ratio {base / pedro:.2f}")  # fmt: skip
        drawn = database.scalar(
            """SELECT round(avg(n), 2) FROM (SELECT count(*) AS n FROM "CreditLotDraw" d JOIN "CreditLot" l
                ON l.id = d."lotId" WHERE l."userId" <> 'u1' GROUP BY d."factKey") per_call"""
        )
    spread, one = figures["spread"], figures["one_user"]
    print(
        f"SUMMARY lots_cost_spread={spread[0] / spread[1]:.2f} lots_cost_one_user={one[0] / one[1]:.2f} "
        f"lots_per_spread_call={drawn} calls={calls} threads={threads} {software()}"
    )


EXPIRY_SETUP = [
    """INSERT INTO "User" (id, "clerkId", "updatedAt")
       SELECT 'u' || g, 'user_' || g, now() FROM generate_series(1, %(users)s) g""",
    """INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
       SELECT 'b' || g, 'u' || g, 'user_' || g, 100, now() FROM generate_series(1, %(users)s) g""",
    """INSERT INTO "CreditLot" (id, "userId", "creditBalanceId", category, amount, remaining, priority, "effectiveAt",
                               "expiresAt")
       SELECT 'l' || g, 'u' || (g %% %(users)s + 1), 'b' || (g %% %(users)s + 1), 'plan', 10, 10, 10, now(),
              CASE WHEN g %% 10 = 0 THEN now() - interval '1 day' ELSE now() + interval '30 days' END
         FROM generate_series(1, %(lots)s) g""",
    "ANALYZE",
]
PLAIN_EXPIRY = """UPDATE "CreditLot" SET "expiredAt" = now() WHERE "expiresAt" <= now() AND "expiredAt" IS NULL"""
UNDO_EXPIRY = """UPDATE "CreditLot" SET "expiredAt" = NULL WHERE "expiredAt" IS NOT NULL"""


def expiry(lots: int, batch: int) -> None:
    """The expiry job's batches against one plain UPDATE of the same rows, same database, same run."""
    users = lots // 10
    with ThrowawayDatabase("pedro_bench_expiry") as database:
        connection = psycopg2.connect(database.url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            for statement in EXPIRY_SETUP:
                cursor.execute(statement, {"users": users, "lots": lots})
            started = time.perf_counter()
            cursor.execute(PLAIN_EXPIRY)
            plain, due = time.perf_counter() - started, cursor.rowcount
            cursor.execute(UNDO_EXPIRY)
            cursor.execute('VACUUM ANALYZE "CreditLot"')
            started, expired = time.perf_counter(), 0
            while True:
                cursor.execute("SELECT lots FROM pedro_expire_lots(now() AT TIME ZONE 'UTC', %s)", (batch,))
                done = cursor.fetchone()[0]
                expired += done
                if done == 0:
                    break
            job = time.perf_counter() - started
            cursor.execute("""SELECT count(*) FROM "UsageHistory" WHERE "operationType" = 'CREDIT_EXPIRY'""")
            rows = cursor.fetchone()[0]
        connection.close()
    print(
        f"plain UPDATE {plain:6.2f}s for {due:,} lots   "
        f"expiry job {job:6.2f}s for {expired:,} lots ({rows:,} ledger rows)"
    )
    print(f"SUMMARY expiry_job/plain_update={job / plain:.2f} lots={lots} due={due} batch={batch} {software()}")


def rate(
    url: str, call: Callable, calls: int, threads: int, one_user: bool, autocommit: bool, users: int = USERS
) -> float:
    """Calls per second over `threads` connections sharing `calls` calls."""
    connections = [psycopg2.connect(url) for _ in range(threads)]
    for connection in connections:
        connection.autocommit = autocommit
    per_thread = calls // threads

    def work(index: int) -> None:
        for i in range(per_thread):
            call(connections[index], 1 if one_user else (index * per_thread + i) % users + 1)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return per_thread * threads / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--lots", action="store_true", help="the lot-drawing deduction against the single-row one")
    parser.add_argument("--expiry", type=int, metavar="LOTS", help="the expiry job over LOTS lots (10%% due)")
    parser.add_argument("--batch", type=int, default=5000, help="lots per expiry transaction (the job: 5000)")
    args = parser.parse_args()
    if args.expiry:
        expiry(args.expiry, args.batch)
        return
    if args.lots:
        lots(args.calls, args.threads)
        return
    with ThrowawayDatabase("pedro_bench_deduct") as database:
        connection = psycopg2.connect(database.url)
        with connection, connection.cursor() as cursor:
            for statement in SETUP:
                cursor.execute(statement, {"n": USERS})
        connection.close()
        figures = {}
        for label, threads, one_user in (("spread", args.threads, False), ("one_user", args.threads, True)):
            for _ in range(2):  # alternate, keep the better of two: the machine is shared and noisy
                base = rate(database.url, baseline_call, args.calls, threads, one_user, autocommit=False)
                pedro = rate(database.url, pedro_call, args.calls, threads, one_user, autocommit=True)
                best = figures.get(label, (0.0, 0.0))
                figures[label] = (max(best[0], base), max(best[1], pedro))
            base, pedro = figures[label]
            print(f"{label:9} baseline {base:8,.0f} calls/s   pedro_deduct_credits {pedro:8,.0f} calls/s  "
                  f"ratio {pedro / base:.2f}")  # fmt: skip
        rows = database.scalar('SELECT count(*) FROM "CreditDeduction"')
    spread, one = figures["spread"], figures["one_user"]
    print(
        f"SUMMARY pedro/baseline={spread[1] / spread[0]:.2f} one_user_pedro/baseline={one[1] / one[0]:.2f} "
        f"pedro_cps={spread[1]:.0f} baseline_cps={spread[0]:.0f} calls={args.calls} threads={args.threads} "
        f"deduction_rows={rows} {software()}"
    )


if __name__ == "__main__":
    main()
