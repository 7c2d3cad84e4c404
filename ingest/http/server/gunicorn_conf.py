"""Gunicorn settings and hooks for the receiver: gevent workers, Prometheus multiprocess samples kept right."""

from __future__ import annotations

import os
import sys

from ingest.config.settings import ConfigError, get_settings
from ingest.http.server.serving import WORKER_CLASS, WORKER_CONNECTIONS, first_clash, with_operations_bind
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


def on_starting(server: object) -> None:
    """Listen on the operations port too (a plain gunicorn command names only the webhook port); a port
    another program holds, or a setting gunicorn cannot run with, ends the start in one line."""
    cfg = server.cfg  # type: ignore[attr-defined]
    try:
        settings = get_settings()
    except ConfigError as error:
        sys.exit(f"pedro-ingest: {error}")
    binds = with_operations_bind(list(cfg.bind), settings)
    if len(binds) == 1:
        sys.exit(f"pedro-ingest: gunicorn would listen only on OPS_PORT ({settings.ops_port}): bind webhooks elsewhere")
    if binds != list(cfg.bind):
        cfg.set("bind", binds)
    inherited = os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS")  # a re-exec or systemd: bound
    clash = None if inherited else first_clash(binds, settings, webhook_setting="gunicorn's -b/--bind")
    if clash:
        sys.exit(f"pedro-ingest: {clash}")


def post_fork(server: object, worker: object) -> None:
    """Ctrl-C (SIGINT from the terminal, SIGQUIT from the master) stops a worker the way SIGTERM does: it
    stops accepting, finishes what it holds and returns. gunicorn's own quit handler calls sys.exit in a
    greenlet, which gevent reports as a traceback ending in `SystemExit: 0` for every worker. Set before
    the worker installs its handlers, so a Ctrl-C while it boots is covered too."""
    worker.handle_quit = worker.handle_exit  # type: ignore[attr-defined]


def child_exit(server: object, worker: object) -> None:
    """A dead gunicorn worker's live gauges must not be reported any more."""
    mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    """The receiver stops: delete the temporary metrics directory `serve` created."""
    remove_owned_multiproc_dir()
