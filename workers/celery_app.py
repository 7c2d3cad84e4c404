"""The Celery application, configured from `celeryconfig.py`."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from models.db import forget_inherited_connections
from workers.processing import telemetry  # noqa: F401  (logging, worker /metrics and pool signals)

app = Celery("pedro_ingest")
app.config_from_object("celeryconfig")


@worker_process_init.connect
def _fresh_pool_after_fork(**_: object) -> None:
    """A forked pool child must not share the parent's PostgreSQL sockets."""
    forget_inherited_connections()
