"""Celery settings for pedro-ingest workers and beat (DESIGN.md §5), derived from `ingest.settings`.

The visibility timeout is read from one setting and used everywhere it matters (the broker transport,
the result of `retry_backoff_max` being below it), so a retried or slow task is never redelivered twice.
"""

from __future__ import annotations

import sys

from ingest.settings import ConfigError, get_settings

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
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_send_task_events = False
task_send_sent_event = False
imports = ("workers.tasks",)
timezone = "UTC"
enable_utc = True

# --- reliability (issue 4): the sweeper re-enqueues stranded inbox rows every minute (safe to overlap).
beat_schedule = {
    "pedro-ingest-sweep-stranded": {"task": "pedro_ingest.sweep_stranded", "schedule": 60.0},
}
