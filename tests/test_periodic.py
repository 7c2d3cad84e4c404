"""Retention, the beat schedule and real beat + worker processes running the periodic jobs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, text

from models.base import utcnow
from tests.support.factories import make_inbox_event
from tests.support.processes import Process, cli_argv, wait_for
from tests.test_reconcile import adjustments, invariant_breaks, pedro_user, tamper, webapp_user
from workers.jobs.retention import prune_payloads


def inbox_row(engine: Engine, status: str, processed_days_ago: float | None) -> str:
    processed = None if processed_days_ago is None else utcnow() - dt.timedelta(days=processed_days_ago)
    received = processed or utcnow() - dt.timedelta(days=90)
    return make_inbox_event(engine, status=status, processed_at=processed, received_at=received)


def payload_kept(engine: Engine) -> dict[str, bool]:
    with engine.connect() as c:
        rows = c.execute(text("""SELECT id, payload IS NOT NULL, "eventId" IS NOT NULL FROM "WebhookEvent" """))
        return {row_id: kept for row_id, kept, has_meta in rows if has_meta}


def test_retention_drops_old_final_payloads_only(engine: Engine) -> None:
    old_processed = inbox_row(engine, "processed", 31)
    old_ignored = inbox_row(engine, "ignored", 45)
    recent = inbox_row(engine, "processed", 29)
    failed = inbox_row(engine, "failed", None)
    dead = inbox_row(engine, "dead", None)
    received = inbox_row(engine, "received", None)
    dead_with_date = inbox_row(engine, "dead", 60)  # even with an old processedAt, dead rows keep their body

    report = prune_payloads(days=30, batch=1)
    assert (report.status, report.pruned) == ("done", 2)
    assert payload_kept(engine) == {
        old_processed: False,
        old_ignored: False,
        recent: True,
        failed: True,
        dead: True,
        received: True,
        dead_with_date: True,
    }
    assert prune_payloads(days=30).pruned == 0


def test_schedule_and_routes_come_from_settings() -> None:
    import celeryconfig
    from ingest.config.settings import get_settings

    settings = get_settings()
    queue = settings.periodic_queue
    assert queue == f"{settings.celery_queue}-periodic"
    assert {name: entry["task"] for name, entry in celeryconfig.beat_schedule.items()} == {
        "sweep": "pedro_ingest.sweep_stranded",
        "reconcile": "pedro_ingest.reconcile",
        "expire-credits": "pedro_ingest.expire_credits",
        "resync-users": "pedro_ingest.resync_users",
        "prune-payloads": "pedro_ingest.prune_payloads",
        "resync-payments": "pedro_ingest.resync_payments",
        "watch-asaas-queue": "pedro_ingest.watch_asaas_queue",
    }
    assert celeryconfig.beat_schedule["resync-payments"]["schedule"] == settings.payment_sync_interval
    assert celeryconfig.beat_schedule["watch-asaas-queue"]["schedule"] == settings.asaas_queue_watch_interval
    assert celeryconfig.beat_schedule["reconcile"]["schedule"] == settings.reconcile_interval
    assert celeryconfig.beat_schedule["expire-credits"]["schedule"] == settings.credit_expiry_interval
    assert celeryconfig.beat_schedule["sweep"]["schedule"] == settings.sweep_interval
    assert all(entry["options"]["queue"] == queue for entry in celeryconfig.beat_schedule.values())
    assert all(route["queue"] == queue for route in celeryconfig.task_routes.values())
    assert "workers.jobs.periodic_tasks" in celeryconfig.imports


@pytest.mark.timeout(180)
def test_two_beats_and_a_worker_reconcile_once(engine: Engine, worker, service_env, tmp_path) -> None:
    """Real `pedro-ingest beat` twice (a misconfiguration) and the real worker: one set of opening rows."""
    fresh = [webapp_user(engine, credits=50)[2] for _ in range(30)]
    _, _, drifted = pedro_user(engine)
    tamper(engine, drifted, 9)
    env = {**service_env, "RECONCILE_INTERVAL": "1", "RESYNC_INTERVAL": "3600", "RETENTION_INTERVAL": "3600"}
    beats = [
        Process(cli_argv("beat", "--schedule", str(tmp_path / f"schedule-{n}")), env, tmp_path / f"beat-{n}.log")
        for n in range(2)
    ]
    try:

        def opened() -> bool:
            return len(adjustments(engine, "opening_balance")) == len(fresh)

        wait_for(opened, 90, interval=0.5, what="beat-driven reconcile to record the opening balances")
        with engine.begin() as c:
            first = c.execute(text("""SELECT max("lastSyncedAt") FROM "CreditBalance" """)).scalar_one()
            # A web-app change (still consistent): the next run restamps this balance, and only this one.
            c.execute(text("""UPDATE "CreditBalance" SET "updatedAt" = :now WHERE id = :id"""),
                      {"now": utcnow(), "id": fresh[0]})  # fmt: skip

        def ran_again() -> bool:
            with engine.connect() as c:
                return c.execute(text("""SELECT max("lastSyncedAt") FROM "CreditBalance" """)).scalar_one() > first

        wait_for(ran_again, 60, interval=0.5, what="another scheduled reconcile")
    finally:
        for beat in beats:
            beat.stop()
    assert sorted(row[0] for row in adjustments(engine, "opening_balance")) == sorted(fresh)
    assert adjustments(engine, "drift_correction") == [], "the default policy reports drift, it does not fix it"
    assert [row[0] for row in invariant_breaks(engine)] != []
    assert "Sending due task reconcile" in beats[0].output() + beats[1].output()


def test_bench_smoke(database: str) -> None:
    """The benchmark runs end to end on a tiny data set (figures are not checked: speed is not a test)."""
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "bench" / "reconcile.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--balances", "300", "--page-size", "64"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "baseline  SQL aggregate: 300 rows, 31 mismatched" in result.stdout
    assert "first     reconcile: 300 rows, 30 openings, 1 drifted" in result.stdout
    assert "steady    reconcile: 300 rows, 0 openings, 1 drifted" in result.stdout
