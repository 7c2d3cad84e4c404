"""`dev`'s ports: the defaults when they are free, free ones when another program holds a default.

A port the user chose (an option or its variable) is never moved: if it is taken, `dev` stops with one
line naming the setting. The ports in use are printed and recorded in the state directory, so the other
commands (`send-sample`…) find them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.config.ports import any_free_port, clash_message, port_taken


class PortTaken(Exception):
    """A port the user chose is taken; the message is one line naming the setting."""


@dataclass(frozen=True)
class WantedPort:
    what: str  # "receiver", "operations", "worker metrics"
    setting: str  # what the user changes: "--ops-port or OPS_PORT"
    host: str
    port: int
    chosen: bool  # given by the user, never moved


def settle(wanted: list[WantedPort]) -> tuple[list[int], list[str]]:
    """The port to use for each wanted one (0 stays 0: disabled) and a line for each port moved."""
    ports: list[int] = []
    notes: list[str] = []
    for want in wanted:
        reason = port_taken(want.host, want.port) if want.port else None
        if reason is None and want.port not in ports:
            ports.append(want.port)
            continue
        reason = reason or "already used by another of dev's servers"
        if want.chosen:
            raise PortTaken(clash_message(want.host, want.port, reason, want.setting))
        port = any_free_port(want.host)
        while port in ports:
            port = any_free_port(want.host)
        ports.append(port)
        notes.append(f"port {want.port} is taken ({reason}): {want.what} on {port} instead (choose: {want.setting})")
    return ports, notes
