"""What a running `pedro-ingest dev` tells the other commands run in the same folder.

`dev` holds an exclusive lock on `<state dir>/dev.lock` for its whole life and records its database,
broker, receiver and the ports it picked in `<state dir>/dev-run.json` (mode 600). A second `dev` finds
the lock taken and refuses instead of restarting the first one's servers; `events`, `replay`, `user`, `send-sample`… in
another terminal read the record, and only while the lock is held (a record left by a killed `dev` is
ignored).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

RUN_FILE = "dev-run.json"
LOCK_FILE = "dev.lock"
DEFAULT_STATE_DIR = ".pedro"


class AlreadyRunning(Exception):
    """Another `dev` holds this state directory; the message says which and what to do."""


@dataclass(frozen=True)
class DevRun:
    pid: int
    database_url: str
    broker_url: str
    receiver_url: str
    embedded: bool
    ops_url: str = ""  # the operations port's base URL (/metrics, /readyz, the console)
    metrics_url: str = ""  # the worker's /metrics, "" when WORKER_METRICS_PORT is 0


def state_dir_from_env() -> Path:
    return Path(os.environ.get("PEDRO_STATE_DIR") or DEFAULT_STATE_DIR)


def claim(state_dir: Path) -> IO[str]:
    """Take the state directory for this `dev` (kept until `release` or exit), or raise `AlreadyRunning`."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = open(state_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the life of `dev`
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        other = _read(state_dir)
        who = f" (pid {other.pid}, receiver {other.receiver_url})" if other else ""
        raise AlreadyRunning(
            f"another `pedro-ingest dev` is running in {state_dir}{who}: use that one, stop it first (Ctrl-C), "
            "or give this one its own --state-dir"
        ) from None
    return handle


def record(state_dir: Path, run: DevRun) -> None:
    path = state_dir / RUN_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(run.__dict__, out)


def release(state_dir: Path, handle: IO[str]) -> None:
    (state_dir / RUN_FILE).unlink(missing_ok=True)
    handle.close()  # closing the file drops the lock


def running(state_dir: Path) -> DevRun | None:
    """The `dev` running in `state_dir`, or None (none, or only a stale record)."""
    lock = state_dir / LOCK_FILE
    if not lock.exists() or not (state_dir / RUN_FILE).exists():
        return None
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(state_dir)
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _read(state_dir: Path) -> DevRun | None:
    with contextlib.suppress(OSError, ValueError, TypeError):
        return DevRun(**json.loads((state_dir / RUN_FILE).read_text()))
    return None
