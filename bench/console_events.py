"""Benchmark: the console's events page over N inbox rows (default 1,000,000) in a throw-away database.

    .venv/bin/python bench/console_events.py [--rows N] [--pages P] [--admin-url postgresql://…/postgres]

Data (generate_series, in SQL): N `WebhookEvent` rows over 30 days, 2/3 Clerk and 1/3 Asaas, 1% failed,
0.1% dead, the rest processed; a 200-byte payload each. Then times what the console runs, through the
same `models.inbox.browser.event_page` call, median of 5 each:
  first page        newest 50, no filter
  deep page         the page after P pages of cursor-walking (P×50 rows in)
  status=failed     first page, and the (status, receivedAt) index
  provider+type     first page of one type of one provider
  provider event id one row through the (provider, eventId) key
  baseline          the same first page with index scans disabled (what it costs without the index)
and prints each query's plan head, so the index each one uses is shown, not assumed. Prints figures
only; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

GENERATE = """
    INSERT INTO "WebhookEvent" (id, provider, "eventId", "eventType", payload, "receivedAt", status, attempts,
                                "updatedAt", "lastError")
    SELECT 'e' || lpad(g::text, 9, '0'),
           CASE WHEN g %% 3 = 0 THEN 'asaas' ELSE 'clerk' END,
           CASE WHEN g %% 3 = 0 THEN 'evt_' ELSE 'msg_' END || md5(g::text),
           CASE WHEN g %% 3 = 0
                THEN (ARRAY['PAYMENT_RECEIVED', 'PAYMENT_CONFIRMED', 'PAYMENT_CREATED'])[1 + (g / 3) %% 3]
                ELSE (ARRAY['user.created', 'user.updated', 'session.created', 'subscriptionItem.active'])
                     [1 + (g / 3) %% 4]
           END,
           jsonb_build_object('n', g, 'pad', repeat('x', 180)),
           now() AT TIME ZONE 'UTC' - make_interval(secs => (%(n)s - g) * (2592000.0 / %(n)s)),
           CASE WHEN g %% 1000 = 7 THEN 'dead' WHEN g %% 100 = 3 THEN 'failed' ELSE 'processed' END,
           1, now(), CASE WHEN g %% 100 = 3 THEN 'unlinked_payment' END
      FROM generate_series(1, %(n)s) g
"""


def timed(run, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def whole_pages(url: str, deep_cursor: str | None) -> None:
    """The whole HTTP answer (Flask, Jinja, every query of the page), through the operations app."""
    from ingest.config.settings import load_settings
    from ingest.http.operations_app import create_operations_app

    password = "bench-console-password"
    client = create_operations_app(load_settings(database_url=url, console_password=password)).test_client()
    assert client.post("/console/login", data={"password": password}).status_code == 302
    for label, path in [
        ("events page (HTTP)", "/console/events"),
        ("deep events page (HTTP)", f"/console/events?cursor={deep_cursor}"),
        ("failed events (HTTP)", "/console/events?status=failed"),
        ("overview (HTTP)", "/console/"),
    ]:
        assert client.get(path).status_code == 200
        print(f"{label:<28} {timed(lambda p=path: client.get(p)):8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    from migrations.runner import migrate
    from models.db import make_engine, transaction
    from models.inbox import browser as event_browser
    from tests.support.servers import create_database, drop_database

    name, url = create_database("pedro_bench_console")
    try:
        migrate(url)
        engine = make_engine(url, pool_size=1)
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.exec_driver_sql(GENERATE, {"n": args.rows})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql('VACUUM ANALYZE "WebhookEvent"')
        print(f"rows={args.rows:,} generated in {time.perf_counter() - started:.1f}s")

        with transaction(engine) as session:
            walk = event_browser.event_page(session, event_browser.EventFilter(), None, 50)
            for _ in range(args.pages - 1):
                walk = event_browser.event_page(session, event_browser.EventFilter(), walk.next_cursor, 50)
            deep_cursor = walk.next_cursor
            some_event = session.execute(
                text("""SELECT "eventId" FROM "WebhookEvent" WHERE id = 'e000000042'""")
            ).scalar()

        cases = {
            "first page": (event_browser.EventFilter(), None),
            f"deep page ({args.pages * 50:,} rows in)": (event_browser.EventFilter(), deep_cursor),
            "status=failed": (event_browser.EventFilter(status="failed"), None),
            "provider+type": (event_browser.EventFilter(provider="asaas", event_type="PAYMENT_CONFIRMED"), None),
            "provider event id": (event_browser.EventFilter(event_id=some_event), None),
        }
        results = {}
        for label, (where, cursor) in cases.items():
            with transaction(engine) as session:
                results[label] = timed(lambda w=where, c=cursor, s=session: event_browser.event_page(s, w, c, 50))
                query = event_browser.events_query(where, event_browser.decode_cursor(cursor), 50)
                compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
                plan = session.execute(text(f"EXPLAIN {compiled}")).scalars().all()
            uses = next((line.strip() for line in plan if "Index" in line), plan[0].strip())
            print(f"{label:<28} {results[label]:8.2f} ms   plan: {uses}")
        with transaction(engine) as session:
            session.execute(text("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off"))
            baseline = timed(lambda: event_browser.event_page(session, event_browser.EventFilter(), None, 50), 3)
        print(f"{'baseline (no index scans)':<28} {baseline:8.2f} ms")
        print(f"first page / baseline = {results['first page'] / baseline:.4f}")
        whole_pages(url, deep_cursor)
        engine.dispose()
    finally:
        drop_database(name)


if __name__ == "__main__":
    main()
