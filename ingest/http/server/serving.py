"""The production gunicorn configuration, in one place for `pedro-ingest serve` and the benchmarks.

The receiver runs gevent workers. Its request path is almost all waiting (PostgreSQL, Redis) plus a
little CPU, and requests share one INSERT per batch through the process's inbox writer. With threads
(gthread), every request crossed four OS threads and fought for the GIL: on 2 cores a third of the
CPU sat idle while requests queued, and the writer's batches stayed at 3 events. With greenlets in one
thread, handing an event to the writer and waking the request is a switch, not a futex and a GIL
handover, and psycopg2 waits cooperatively (`ingest.http.server.gevent_db`), so a batch is in PostgreSQL while the next
one gathers. Measured by `bench/receiver.py` in one run: 1.6x the gthread receiver's requests/s.
"""

from __future__ import annotations

import sys

from ingest.config.ports import clash_message, parse_bind, port_taken
from ingest.config.settings import ConfigError, Settings, get_settings

WORKER_CLASS = "gevent"
# Open connections per process and listening port (MAX_CONNECTIONS); each is one greenlet of a few KiB.
WORKER_CONNECTIONS: int = Settings.model_fields["max_connections"].default


def gunicorn_options(workers: int, connections: int = WORKER_CONNECTIONS) -> list[str]:
    """The server flags every receiver-like app gets (`serve`, and both sides of every benchmark)."""
    return ["--workers", str(workers), "--worker-class", WORKER_CLASS, "--worker-connections", str(connections)]


def describe(workers: int) -> str:
    """How the benchmarks print the configuration they ran."""
    return f"w{workers}x{WORKER_CLASS}({WORKER_CONNECTIONS})"


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gunicorn_argv(host: str, port: int, workers: int, settings: Settings | None = None) -> list[str]:
    """`serve`: webhooks on host:port and the operations app on OPS_HOST:OPS_PORT, in the same workers.

    gunicorn gives each bound address its own listener and, with gevent workers, its own pool of
    MAX_CONNECTIONS greenlets per process: a flood on one port cannot take the other's slots. The WSGI app
    tells the two apart by the port the connection came in on (`ingest.http.ports`).
    """
    settings = settings or get_settings()
    if settings.ops_port == port:
        raise ConfigError(f"configuration error: OPS_PORT ({port}) must differ from the webhook port")
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", bind_address(host, port),
        "--bind", bind_address(settings.ops_host, settings.ops_port),
        *gunicorn_options(workers, settings.max_connections),
        "--timeout", "30",
        "--graceful-timeout", "20",
        "--config", "python:ingest.http.server.gunicorn_conf",
        "ingest.http.server.wsgi:app",
    ]  # fmt: skip


def with_operations_bind(binds: list[str], settings: Settings) -> list[str]:
    """The addresses to listen on: the given ones, plus OPS_HOST:OPS_PORT unless one of them is OPS_PORT.

    A plain `gunicorn -b HOST:PORT -c python:ingest.http.server.gunicorn_conf …` gets the operations port
    this way (see `gunicorn_conf.on_starting`), so `/readyz` and `/metrics` answer whichever command runs.
    """
    ports = {parsed[1] for parsed in map(parse_bind, binds) if parsed}
    if settings.ops_port in ports:
        return list(binds)
    return [*binds, bind_address(settings.ops_host, settings.ops_port)]


def first_clash(binds: list[str], settings: Settings, webhook_setting: str) -> str | None:
    """One line for the first address another program holds, naming the setting to change; None if all free."""
    for bind in binds:
        parsed = parse_bind(bind)
        if parsed is None:
            continue
        reason = port_taken(*parsed)
        if reason:
            setting = "OPS_PORT" if parsed[1] == settings.ops_port else webhook_setting
            return clash_message(parsed[0], parsed[1], reason, setting)
    return None
