"""Listening ports: is one free, a free one when a default is taken, and the one line a clash deserves.

Every process that listens (the receiver's two ports, the worker's metrics) checks before it binds, so that
a port another program holds ends the start with one sentence naming the setting to change, instead of a
server's retries and a traceback.
"""

from __future__ import annotations

import socket


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_taken(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on now (e.g. "Address already in use"), or None when it can.

    SO_REUSEADDR as the servers set it, so a port left in TIME_WAIT by a stopped server counts as free.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def any_free_port(host: str) -> int:
    """A port the system says is free on `host` now."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def clash_message(host: str, port: int, reason: str, setting: str) -> str:
    """The one line for a port that cannot be listened on, naming what to change."""
    return f"cannot listen on {host}:{port} ({reason}): another program has it; set {setting} to a free port"


def parse_bind(bind: str) -> tuple[str, int] | None:
    """gunicorn's `HOST:PORT`, `[V6]:PORT` or `PORT`; None for a unix socket or a file descriptor."""
    if bind.startswith(("unix:", "fd://")):
        return None
    host, _, port = bind.rpartition(":")
    if not port.isdigit():
        return None
    return (host.strip("[]") or "0.0.0.0"), int(port)  # noqa: S104 - gunicorn's meaning of a bare port
