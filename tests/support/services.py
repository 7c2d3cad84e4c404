"""Make sure PostgreSQL and Redis answer, starting them with the machine's own commands if not.

Standard library only: `.ci/run` calls it before any virtualenv exists (`python3 tests/support/services.py`),
and the test session calls it again before touching the services.
"""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
import time

POSTGRES = ("127.0.0.1", int(os.environ.get("PEDRO_TEST_PG_PORT", "5432")))
REDIS = ("127.0.0.1", int(os.environ.get("PEDRO_TEST_REDIS_PORT", "6379")))


def answers(address: tuple[str, int], timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_postgres() -> None:
    for version in sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False, capture_output=True
        )


def start_redis() -> None:
    os.makedirs("/var/lib/redis", exist_ok=True)
    os.makedirs("/var/log/redis", exist_ok=True)
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(REDIS[1]),
         "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"],
        check=False, capture_output=True,
    )  # fmt: skip


def wait_until(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def ensure_services() -> list[str]:
    """Returns the problems left (empty when both services answer)."""
    problems = []
    if not answers(POSTGRES):
        start_postgres()
        if not wait_until(lambda: answers(POSTGRES), 30):
            problems.append(f"PostgreSQL does not answer on {POSTGRES[0]}:{POSTGRES[1]} (tried pg_ctlcluster start)")
    if not redis_answers():
        start_redis()
        if not wait_until(redis_answers, 15):
            problems.append(f"Redis does not answer on {REDIS[0]}:{REDIS[1]} (tried redis-server --daemonize yes)")
    return problems


def postgres_bin_dir() -> str | None:
    """Where pg_ctl lives (for tests that restart a throw-away PostgreSQL of their own)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


if __name__ == "__main__":
    left = ensure_services()
    for problem in left:
        print(f"services: {problem}", file=sys.stderr)
    if not left:
        print("services: PostgreSQL and Redis answer")
    sys.exit(1 if left else 0)
