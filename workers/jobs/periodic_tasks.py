"""Celery wrappers of the periodic jobs (beat sends them to the periodic queue; see celeryconfig.py).

Thin on purpose: each calls its service, which holds a PostgreSQL advisory lock, so a second beat or an
overlapping run is skipped rather than doubled. No retry here: the next scheduled run is the retry.
"""

from __future__ import annotations

from ingest.broker import task_names
from ingest.config.settings import get_settings
from workers.celery_app import app


@app.task(name=task_names.RECONCILE, ignore_result=True)
def reconcile() -> dict[str, object]:
    from workers.jobs.reconcile import reconcile as run

    settings = get_settings()
    return run(fix=settings.reconcile_policy == "fix", page_size=settings.reconcile_page_size).summary()


@app.task(name=task_names.EXPIRE_CREDITS, ignore_result=True)
def expire_credits() -> int:
    from workers.jobs.expire_credits import expire_credits as run

    return run().credits


@app.task(name=task_names.RESYNC_USERS, ignore_result=True)
def resync_users() -> str:
    from workers.jobs.resync import resync_users as run

    return run().status


@app.task(name=task_names.PRUNE_PAYLOADS, ignore_result=True)
def prune_payloads() -> int:
    from workers.jobs.retention import prune_payloads as run

    return run(days=get_settings().payload_retention_days).pruned


@app.task(name=task_names.RESYNC_PAYMENTS, ignore_result=True)
def resync_payments(since: str | None = None) -> str:
    import datetime as dt

    from workers.jobs.payment_sync import resync_payments as run

    return run(since=dt.date.fromisoformat(since) if since else None).status


@app.task(name=task_names.WATCH_ASAAS_QUEUE, ignore_result=True)
def watch_asaas_queue() -> str:
    from workers.jobs.asaas_queue_watch import watch_asaas_queue as run

    return run().status
