"""Gunicorn settings and hooks for the receiver: gevent workers, Prometheus multiprocess samples kept right."""

from __future__ import annotations

from ingest.http.server.serving import WORKER_CLASS, WORKER_CONNECTIONS
from ingest.observability.metrics import ensure_multiproc_dir, mark_process_dead, remove_owned_multiproc_dir

# Also for a plain `gunicorn -c python:ingest.http.server.gunicorn_conf ingest.http.server.wsgi:app`
# (see ingest.http.server.serving for why).
worker_class = WORKER_CLASS
worker_connections = WORKER_CONNECTIONS
# A PROMETHEUS_MULTIPROC_DIR that does not exist (a fresh /run) would fail every metric update, hence
# every webhook: create it now, in the master, before any worker writes a sample.
ensure_multiproc_dir()
# gunicorn's control socket is one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl): two receivers on one host
# would take it from each other. Nothing here uses it.
control_socket_disable = True


def child_exit(server: object, worker: object) -> None:
    """A dead gunicorn worker's live gauges must not be reported any more."""
    mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    """The receiver stops: delete the temporary metrics directory `serve` created."""
    remove_owned_multiproc_dir()
