"""`pedro-ingest dev`: receiver and worker as child processes of one command, stopped together."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

CHILD_STOP_SECONDS = 20


def run_children(commands: dict[str, list[str]]) -> int:
    """Start every command; when one exits or Ctrl-C/SIGTERM arrives, stop the others. Returns an exit code."""
    children = {name: subprocess.Popen(argv) for name, argv in commands.items()}
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exited = None
    while not stopping and exited is None:
        exited = next((name for name, child in children.items() if child.poll() is not None), None)
        time.sleep(0.2)
    if exited:
        print(f"pedro-ingest dev: {exited} exited with {children[exited].returncode}; stopping", file=sys.stderr)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + CHILD_STOP_SECONDS
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 1 if exited else 0
