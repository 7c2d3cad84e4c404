"""Celery settings for pedro-ingest workers and beat, derived from `ingest.config.settings`.

The visibility timeout is read from one setting and used everywhere it matters (the broker transport,
the result of `retry_backoff_max` being below it), so a retried or slow task is never redelivered twice.
"""

from __future__ import annotations

import sys

from ingest.broker import task_names
from ingest.config.settings import ConfigError, get_settings

try:
    _settings = get_settings()
except ConfigError as error:  # one clear line, also when started through `celery -A workers.celery_app`
    sys.stderr.write(f"{error}\n")
    raise SystemExit(2) from None

broker_url = _settings.celery_broker_url
broker_connection_retry_on_startup = True
broker_transport_options = {
    "visibility_timeout": _settings.visibility_timeout,
    "socket_connect_timeout": 5,
    "socket_timeout": 30,
}
task_default_queue = _settings.celery_queue
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
result_backend = None
# No task holds a worker for long: past the soft limit the attempt is rolled back and retried (reason
# `time_limit`); past the hard one the pool child is killed and the task redelivered (a lost attempt).
task_soft_time_limit = _settings.task_soft_time_limit
task_time_limit = _settings.task_time_limit
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_send_task_events = False
task_send_sent_event = False
imports = ("workers.processing.tasks",)
timezone = "UTC"
enable_utc = True

# ---- periodic jobs (beat) -------------------------------------------------------------------------
# Run exactly ONE `pedro-ingest beat`. A second one is harmless (each job takes a non-blocking PostgreSQL
# advisory lock and skips when it is held; each job is idempotent) but doubles the messages. Periodic
# jobs go to their own queue so slow work never delays webhooks; `pedro-ingest worker`
# consumes both queues, or run a dedicated one with `pedro-ingest worker -Q <CELERY_PERIODIC_QUEUE>`.
# `expires` drops a run that waited longer than its interval (workers down): the next one replaces it.
imports = (*imports, "workers.jobs.periodic_tasks")
_periodic = {"queue": _settings.periodic_queue}
task_routes = {name: _periodic for name in task_names.PERIODIC}


def _every(task: str, seconds: float) -> dict[str, object]:
    return {"task": task, "schedule": seconds, "options": {**_periodic, "expires": seconds}}


beat_schedule = {
    # Re-enqueue stranded inbox rows (broker was down, task lost); safe to overlap (SKIP LOCKED claims).
    "sweep": _every(task_names.SWEEP_STRANDED, _settings.sweep_interval),
    "reconcile": _every(task_names.RECONCILE, _settings.reconcile_interval),
    "expire-credits": _every(task_names.EXPIRE_CREDITS, _settings.credit_expiry_interval),
    "resync-users": _every(task_names.RESYNC_USERS, _settings.resync_interval),
    "prune-payloads": _every(task_names.PRUNE_PAYLOADS, _settings.retention_interval),
    # Asaas: backfill payments from the API, and notice (and resume) a paused webhook queue; skipped without a key.
    "resync-payments": _every(task_names.RESYNC_PAYMENTS, _settings.payment_sync_interval),
    "watch-asaas-queue": _every(task_names.WATCH_ASAAS_QUEUE, _settings.asaas_queue_watch_interval),
}
