"""Where a worker's time per event goes: each SQL statement, commit, handler Python, metrics, logging, Celery.

    python bench/worker_profile.py [--events 3000] [--cprofile 25]

The drain bench's event mix (Clerk user events, Asaas payment pairs, 20% duplicate deliveries) is applied
three times from the same inbox, reset in between: (1) by `process_event` in this process, untouched, for
the true cost per event; (2) the same with stopwatches on every stage (`bench.stages`) for the table;
(3) by a real `pedro-ingest worker -c 1` from the broker, whose extra time per event over (1) is the
Celery row (fetching, acknowledging, the prefork pool's hand-off). Logging is on at INFO (JSON lines to
/dev/null), metrics in multiprocess mode, as in production.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pedro-bench-metrics-")  # before prometheus
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REDIS_URL, ThrowawayDatabase, software  # noqa: E402
from bench.drain import deliveries, generate, load_inbox, reset, run_pedro, seed  # noqa: E402
from bench.stages import Stages, statement_label  # noqa: E402


def in_process(url: str, order: list[str], stages: Stages | None = None, profile_top: int = 0) -> float:
    """Seconds to apply every delivery with `process_event` in this process (one attempt each)."""
    from workers.processing import apply

    engine = apply.default_engine()
    started = time.perf_counter()
    if profile_top:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
    for row_id in order:
        apply.process_event(row_id, engine=engine)
    elapsed = time.perf_counter() - started
    if profile_top:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(profile_top)
    return elapsed


def instrument(stages: Stages) -> None:
    """Stopwatches on the stages of `process_event` (module attributes, so every caller sees them)."""
    import logging

    from workers import handlers
    from workers.processing import apply, telemetry

    engine = apply.default_engine()
    stages.watch_engine(engine, statement_label)
    stages.wrap(apply, "process_event", "total")
    for key, handler in list(handlers.HANDLERS.items()):
        wrapped = type("H", (), {"f": staticmethod(handler)})
        stages.wrap(wrapped, "f", "handler Python (validation, values)")
        handlers.HANDLERS[key] = wrapped.f
    stages.wrap(telemetry, "event_finished", "telemetry: metrics")
    stages.wrap(logging.getLogger("pedro_ingest.event"), "info", "telemetry: log line")


def configure_logs() -> None:
    """Production logging (JSON at INFO), written to /dev/null: the formatting is the cost, not the disk."""
    import logging

    from ingest.observability.logs import configure_logging

    configure_logging("INFO", "json")
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--cprofile", type=int, default=0, help="also print cProfile's top N functions")
    args = parser.parse_args()

    random.seed(7)
    plan_id, payers = "plan_pro", [f"user_payer{i:04d}" for i in range(300)]
    with ThrowawayDatabase("pedro_wprof") as database:
        os.environ.update(DATABASE_URL=database.url, CELERY_BROKER_URL=REDIS_URL, LOG_LEVEL="INFO")
        seed(database.url, payers, plan_id)
        ids = load_inbox(database.url, generate(args.events, plan_id, payers))
        order = deliveries(ids, 0.2)
        configure_logs()
        in_process(database.url, order[:200])  # warm: imports, pool, prepared plans
        reset(database.url, payers, plan_id)
        plain = in_process(database.url, order)
        reset(database.url, payers, plan_id)
        stages = Stages()
        instrument(stages)
        staged = in_process(database.url, order)
        if args.cprofile:
            reset(database.url, payers, plan_id)
            in_process(database.url, order[: len(order) // 4], profile_top=args.cprofile)
        reset(database.url, payers, plan_id)
        celery_eps, _ = run_pedro(database.url, order, argparse.Namespace(processes=1, batch=50, timeout=1800))
        in_task_us = mean_event_duration_us(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]) / "worker")

    units = len(order)
    # The Celery run's rate counts distinct events; every other figure here is per delivery.
    plain_us = plain / units * 1e6
    celery_us = 1e6 / celery_eps * len(ids) / units if celery_eps else float("nan")
    # Celery's share, measured inside the Celery run itself: its wall time per event less the time its
    # `process_event` calls took (their duration histogram), so the machine's drift between runs cancels.
    named = [name for name in stages.seconds if name.startswith("sql: ")]
    handler_sql = sum(stages.seconds[name] for name in named) - stages.seconds["sql: COMMIT"]
    # Nested stopwatches: the handler's own statements and the log line are rows of their own.
    stages.seconds["handler Python (validation, values)"] -= handler_statements(stages)
    stages.seconds["telemetry: metrics"] -= stages.seconds["telemetry: log line"]
    other = stages.seconds["total"] - sum(v for k, v in stages.seconds.items() if k != "total")
    stages.add("other Python (session, pool, process_event)", max(0.0, other))
    celery = max(0.0, celery_us - in_task_us) * units / 1e6
    stages.add("Celery (fetch, ack, pool hand-off)", celery)
    stages.seconds["total"] += celery
    print(f"# worker, per event ({units:,} deliveries of {len(ids):,} events; 1 process; load {load()})\n")
    print(stages.table(units, "total", "event"))
    statements = sum(stages.calls[name] for name in named) / units
    trips = stages.round_trips() / units
    print(
        f"\nSUMMARY worker_us_per_event={plain_us:.0f} celery_us_per_event={celery_us:.0f} "
        f"celery_in_task_us={in_task_us:.0f} "
        f"stopwatch_overhead={(staged - plain) / plain:.2f} statements_per_event={statements:.1f} "
        f"round_trips_per_event={trips:.2f} "
        f"sql_us_per_event={handler_sql / units * 1e6:.0f} events={len(ids)} deliveries={units} "
        f"load={load().replace(' ', ',')} {software()}"
    )


def mean_event_duration_us(directory: Path) -> float:
    """The mean `process_event` duration a worker recorded (Prometheus multiprocess samples it left)."""
    from prometheus_client import CollectorRegistry, multiprocess

    from ingest.observability.metrics import EVENT_DURATION

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    total = count = 0.0
    for provider in ("clerk", "asaas"):
        total += registry.get_sample_value(f"{EVENT_DURATION._name}_sum", {"provider": provider}) or 0.0
        count += registry.get_sample_value(f"{EVENT_DURATION._name}_count", {"provider": provider}) or 0.0
    return total / count * 1e6 if count else float("nan")


def handler_statements(stages: Stages) -> float:
    """Statement time spent inside handlers (every statement but the inbox's, the timeouts and commit)."""
    outside = ("SET LOCAL", '"WebhookEvent"', "COMMIT", "ROLLBACK")
    return sum(v for k, v in stages.seconds.items() if k.startswith("sql: ") and not any(o in k for o in outside))


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
