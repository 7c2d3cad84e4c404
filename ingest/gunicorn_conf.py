"""Gunicorn hooks for the receiver: keep Prometheus multiprocess samples right when workers come and go."""

from __future__ import annotations

from ingest.metrics import mark_process_dead, remove_owned_multiproc_dir


def child_exit(server: object, worker: object) -> None:
    """A dead gunicorn worker's live gauges must not be reported any more."""
    mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    """The receiver stops: delete the temporary metrics directory `serve` created."""
    remove_owned_multiproc_dir()
