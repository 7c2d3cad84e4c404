"""The production commands as an operator meets them: `serve` answers `/readyz` on the operations port, says
what is wrong with a broken setup before it starts, refuses a taken port in one line, and stops on Ctrl-C
without tracebacks; compose wires the operations port; `migrate` and the CLI's fixed lists stay true."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.processes import Process, cli_argv, free_port, serving, wait_for
from tests.support.servers import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_answers_readyz_on_the_operations_port_and_ctrl_c_is_clean(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    with serving(service_env, tmp_path / "serve.log") as (process, url):
        ready = requests.get(f"{process.ops_url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "broker": "ok"},
        }
        assert "WARNING" not in process.output()  # a sound setup: no warning at start
        before = len(process.output())
        assert process.stop(signal.SIGINT, timeout=60) == 0  # Ctrl-C: the terminal signals the whole group
        stopping = process.output()[before:]
        assert "Traceback" not in stopping and "SystemExit" not in stopping, stopping
        assert "Shutting down: Master" in stopping


def test_serve_with_a_broken_setup_warns_once_per_setting_and_readyz_says_the_same(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        key: value for key, value in service_env.items() if key not in ("CLERK_WEBHOOK_SECRET", "ASAAS_WEBHOOK_TOKEN")
    }
    env.update(
        DATABASE_URL=service_env["DATABASE_URL"].rsplit("/", 1)[0] + "/pedro_no_such_database",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",  # nobody listens
        LOG_FORMAT="text",
        READY_TIMEOUT="1",
        OPS_CACHE_SECONDS="0",
    )
    with serving(env, tmp_path / "serve.log") as (process, _):
        warnings = [line for line in process.output().splitlines() if " WARNING " in line]
        assert len(warnings) == 3, process.output()
        database, broker, secrets = warnings
        assert 'DATABASE_URL: database "pedro_no_such_database" does not exist on ' in database
        assert 'create it (CREATE DATABASE "pedro_no_such_database")' in database
        assert "CELERY_BROKER_URL: broker unreachable" in broker
        assert "CLERK_WEBHOOK_SECRET and ASAAS_WEBHOOK_TOKEN are unset" in secrets
        ready = requests.get(f"{process.ops_url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "unavailable", "broker": "unavailable"}
        problems = ready.json()["problems"]
        assert [problem.split(":", 1)[0] for problem in problems] == [
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "CLERK_WEBHOOK_SECRET and ASAAS_WEBHOOK_TOKEN are unset",
        ]
        assert all(problem in process.output() for problem in problems[:1] + problems[2:])  # the same sentences


@pytest.mark.parametrize("which", ["--port", "OPS_PORT"])
def test_serve_on_a_taken_port_is_one_line_naming_the_setting(
    which: str, held_port: int, service_env: dict[str, str], tmp_path: Path
) -> None:
    port, ops_port = (held_port, free_port()) if which == "--port" else (free_port(), held_port)
    process = Process(cli_argv("serve", "--port", str(port)), {**service_env, "OPS_PORT": str(ops_port)},
                      tmp_path / "serve.log")  # fmt: skip
    assert process.popen.wait(60) == 2
    assert process.output().strip() == (
        f"pedro-ingest: cannot listen on 127.0.0.1:{held_port} (Address already in use): another program has it; "
        f"set {which} to a free port"
    )
    process.stop()


def test_plain_gunicorn_on_a_taken_operations_port_is_one_line(
    held_port: int, service_env: dict[str, str], tmp_path: Path
) -> None:
    argv = ["-m", "gunicorn", "-c", "python:ingest.http.server.gunicorn_conf", "-b", f"127.0.0.1:{free_port()}",
            "ingest.http.server.wsgi:app"]  # fmt: skip
    process = Process([cli_argv()[0], *argv], {**service_env, "OPS_PORT": str(held_port)}, tmp_path / "g.log")
    assert process.popen.wait(60) == 1
    lines = [line for line in process.output().splitlines() if "[INFO]" not in line]
    assert lines == [
        f"pedro-ingest: cannot listen on 127.0.0.1:{held_port} (Address already in use): another program has it; "
        "set OPS_PORT to a free port"
    ]
    process.stop()


def test_worker_metrics_on_a_taken_port_is_one_line_naming_the_setting(
    held_port: int, service_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**service_env, "WORKER_METRICS_PORT": str(held_port), "CELERY_QUEUE": f"{service_env['CELERY_QUEUE']}-m"}
    worker = Process(cli_argv("worker", "-c", "1"), env, tmp_path / "worker.log")
    try:
        worker.wait_for_output("ready.", timeout=120)
        wait_for(lambda: "worker metrics not served" in worker.output(), 30, what="the metrics warning")
        line = next(line for line in worker.output().splitlines() if "worker metrics not served" in line)
        assert f"cannot listen on 127.0.0.1:{held_port}" in line and "set WORKER_METRICS_PORT to a free port" in line
    finally:
        worker.stop()


def test_compose_receiver_serves_the_operations_port_on_the_compose_network_only() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    receiver = compose["services"]["receiver"]
    assert receiver["command"][0] == "serve"  # binds the webhook port and OPS_HOST:OPS_PORT
    ops_port = receiver["environment"]["OPS_PORT"]
    assert receiver["environment"]["OPS_HOST"] == "0.0.0.0"  # reachable by Prometheus on the compose network
    published = [str(mapping).rsplit(":", 1)[-1] for mapping in receiver.get("ports", [])]
    assert ops_port not in published  # never published on the host
    assert "${POSTGRES_PASSWORD:?" in (ROOT / "docker-compose.yml").read_text()
    readme = (ROOT / "README.md").read_text()
    docker = " ".join(readme.split("**With Docker**", 1)[1].split("\n\n", 1)[0].split())
    assert "`POSTGRES_PASSWORD=…` in `.env`" in docker


def test_migrate_when_current_says_already_at_the_head(service_env: dict[str, str]) -> None:
    import subprocess

    from migrations.runner import alembic_config

    name, url = create_database("pedro_current")
    try:
        env = {**service_env, "DATABASE_URL": url}
        first = subprocess.run(cli_argv("migrate"), env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0 and first.stdout.startswith("migrated: empty -> "), first.stderr
        again = subprocess.run(cli_argv("migrate"), env=env, capture_output=True, text=True, timeout=120)
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        assert again.returncode == 0 and again.stdout == f"already at {head}: nothing to migrate\n"
    finally:
        drop_database(name)


def test_the_cli_status_lists_are_the_models_ones() -> None:
    from ingest.cli.events import STATUSES, replay
    from models.status import REPLAYABLE_STATUSES, EventStatus

    assert tuple(status.value for status in EventStatus) == STATUSES
    choice = next(param for param in replay.params if param.name == "status").type
    assert set(choice.choices) == set(REPLAYABLE_STATUSES)  # type: ignore[attr-defined]


def test_cli_startup_benchmark_smoke() -> None:
    from tests.test_bench_smoke import run_bench

    figures = run_bench("cli_startup.py", "--repeat", "1")
    assert float(figures["floor"]) > float(figures["python"]) > 0
    assert float(figures["help"]) > 0 and float(figures["events_list"]) > 0
