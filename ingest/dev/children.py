"""`pedro-ingest dev`: receiver and worker as child processes of one command, stopped together."""

from __future__ import annotations

import base64
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

CHILD_STOP_SECONDS = 20


def run_children(commands: dict[str, list[str]]) -> int:
    """Start every command; when one exits or Ctrl-C/SIGTERM arrives, stop the others. Returns an exit code.

    The children have process groups of their own, so a Ctrl-C in the terminal reaches only `dev`, which
    prints one line and stops each child with SIGTERM (their graceful stop), instead of every server
    handling the terminal's SIGINT its own noisy way.
    """
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
        signal.signal(signum, request_stop)
    children = {name: subprocess.Popen(argv, process_group=0) for name, argv in commands.items()}
    exited = None
    while not stopping and exited is None:
        exited = next((name for name, child in children.items() if child.poll() is not None), None)
        time.sleep(0.2)
    if exited:
        print(f"pedro-ingest dev: {exited} exited with {children[exited].returncode}; stopping", file=sys.stderr)
    else:
        print(f"pedro-ingest dev: stopping {', '.join(children)}", file=sys.stderr)
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


def dev_secrets(state_dir: Path) -> dict[str, str]:
    """Signing secret and token for local runs, made once and kept in `<state_dir>/dev.env` (mode 600)."""
    path = state_dir / "dev.env"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        key = base64.b64encode(secrets.token_bytes(24)).decode()
        path.touch(mode=0o600)
        path.write_text(f"CLERK_WEBHOOK_SECRET=whsec_{key}\nASAAS_WEBHOOK_TOKEN=dev_{secrets.token_urlsafe(24)}\n")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def redact_url(url: str) -> str:
    """A URL safe to print: the password replaced by `***`."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
