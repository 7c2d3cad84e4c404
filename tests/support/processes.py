"""Real processes for integration tests: subprocesses with logs, the CLI, a serving receiver, polling."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Process:
    """A subprocess with its output in a file, stopped (and killed if need be) by `stop`."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, needle: str, timeout: float = 60.0) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited with {self.popen.returncode}:\n{self.output()[-3000:]}")
            return needle in self.output()

        wait_for(seen, timeout, what=f"{needle!r} in {self.log_path.name}")

    def stop(self, sig: int = 15, timeout: float = 20.0) -> int | None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, 9)
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode


def cli_argv(*args: str) -> list[str]:
    """`pedro-ingest ARGS` through the installed package's entry point."""
    return [sys.executable, "-m", "ingest.cli", *args]


def wait_for_receiver(process: Process, url: str, timeout: float = 30.0) -> None:
    """Until `serve` answers /healthz; fails at once, with its output, if it exited."""
    import requests  # the rest of this module is standard library only (bench/chaos.py, private servers)

    def up() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(process.output())
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:  # refused, or a read timeout while gunicorn's workers boot
            return False

    wait_for(up, timeout, what="receiver to answer /healthz")


@contextlib.contextmanager
def serving(env: dict[str, str], log_path: Path, workers: int = 2) -> Iterator[tuple[Process, str]]:
    """A real `pedro-ingest serve` (gunicorn) on a free loopback port, stopped on the way out.

    Its operations port is a free one too (`process.ops_url`): the default 8001 would collide between
    receivers of parallel test runs."""
    port, ops_port = free_port(), free_port()
    env = {**env, "OPS_PORT": str(ops_port)}
    process = Process(cli_argv("serve", "--port", str(port), "--workers", str(workers)), env, log_path)
    process.ops_url = f"http://127.0.0.1:{ops_port}"  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_receiver(process, url)
        yield process, url
    finally:  # also when it never came up: no orphaned gunicorn
        process.stop()
