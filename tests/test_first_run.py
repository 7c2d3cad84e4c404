"""What a new user meets first, each a promise README makes: `migrate`'s answers, the help texts, the plain
gunicorn command, the compose beat, and README's words about metrics and the runbook."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.clerk import clerk_user_event, post_clerk
from tests.support.processes import Process, cli_argv, free_port, wait_for_receiver
from tests.support.servers import create_database, drop_database, run_sql

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def cli(env: dict[str, str], *args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**env, "COLUMNS": str(columns)}
    return subprocess.run(cli_argv(*args), env=env, capture_output=True, text=True, timeout=120, check=False)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def scratch_database() -> tuple[str, str]:
    name, url = create_database("pedro_migrate")
    yield name, url
    drop_database(name)


def test_migrate_unknown_revision_is_one_line(service_env: dict[str, str], scratch_database) -> None:
    _, url = scratch_database
    line = one_line(cli({**service_env, "DATABASE_URL": url}, "migrate", "--revision", "9999"))
    assert line.startswith("pedro-ingest: unknown revision '9999' (known: 0001, 0002")


def test_migrate_to_an_older_revision_refuses_then_downgrades_with_the_flag(
    service_env: dict[str, str], scratch_database
) -> None:
    _, url = scratch_database
    env = {**service_env, "DATABASE_URL": url}
    assert cli(env, "migrate").returncode == 0
    head = run_sql(url, "SELECT version_num FROM alembic_version")[0][0]
    line = one_line(cli(env, "migrate", "--revision", "0003"))
    assert f"the database is at {head} and 0003 is older: migrate only upgrades" in line
    assert "pedro-ingest migrate --downgrade --revision 0003" in line
    assert run_sql(url, "SELECT version_num FROM alembic_version") == [(head,)]
    down = cli(env, "migrate", "--downgrade", "--revision", "0003")
    assert down.returncode == 0, down.stderr
    assert run_sql(url, "SELECT version_num FROM alembic_version") == [("0003",)]
    assert run_sql(url, "SELECT to_regclass('\"AsaasSubscriptionLink\"')") == [(None,)]  # 0004's table is gone
    assert "refusing to go below the baseline" in one_line(cli(env, "migrate", "--downgrade", "--revision", "base"))
    assert cli(env, "migrate").returncode == 0
    assert run_sql(url, "SELECT version_num FROM alembic_version") == [(head,)]


def test_migrate_on_a_database_that_does_not_exist_says_so(service_env: dict[str, str]) -> None:
    url = service_env["DATABASE_URL"].rsplit("/", 1)[0] + "/pedro_no_such_database"
    line = one_line(cli({**service_env, "DATABASE_URL": url}, "migrate"))
    assert 'database "pedro_no_such_database" does not exist on ' in line
    assert "unreachable" not in line


def test_help_texts_are_whole_and_there_is_a_version() -> None:
    env = dict(os.environ)
    for args in (["--help"], ["events", "--help"]):
        listed = cli(env, *args).stdout.split("Commands:", 1)[1]
        assert "..." not in listed and "…" not in listed, listed
    version = cli(env, "--version")
    assert version.returncode == 0 and re.fullmatch(r"pedro-ingest, version \d+\.\d+\.\d+\S*\n", version.stdout)


def test_readme_gunicorn_command_creates_a_missing_metrics_directory(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    command = re.search(r"`(PROMETHEUS_MULTIPROC_DIR=\S+ gunicorn [^`]+)`", README).group(1)
    metrics_dir = tmp_path / "run" / "pedro-metrics"
    command = re.sub(r"^PROMETHEUS_MULTIPROC_DIR=\S+", f"PROMETHEUS_MULTIPROC_DIR={metrics_dir}", command)
    port, ops_port = free_port(), free_port()
    env = {**service_env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OPS_PORT": str(ops_port)}
    process = Process(["bash", "-c", f"{command} -b 127.0.0.1:{port}"], env, tmp_path / "gunicorn.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_receiver(process, url)
        response = post_clerk(url, clerk_user_event())
        assert response.status_code == 200, response.text + process.output()[-2000:]
        assert metrics_dir.is_dir()
        ready = requests.get(f"http://127.0.0.1:{ops_port}/readyz", timeout=10)  # the checklist's probe
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
        assert "pedro_" in requests.get(f"http://127.0.0.1:{ops_port}/metrics", timeout=10).text
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 404  # never on the webhook port
    finally:
        process.stop()


def test_compose_beat_writes_its_schedule_where_its_user_may() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER pedro$", dockerfile, re.M)
    beat = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["beat"]
    command = beat["command"]
    schedule = Path(command[command.index("--schedule") + 1])
    assert not schedule.is_relative_to("/app")  # /app belongs to root
    owned = re.search(rf"install -d -o pedro -g pedro {re.escape(str(schedule.parent))}\b", dockerfile)
    assert owned, "the schedule's directory must be created for user pedro"
    assert any(volume.endswith(f":{schedule.parent}") for volume in beat["volumes"])


def test_readme_documents_the_metrics_the_code_exports_and_no_missing_files() -> None:
    from tests.test_alert_rules import exported_metric_names

    migrations = "".join(path.read_text() for path in (ROOT / "migrations" / "versions").glob("*.py"))
    sql_functions = set(re.findall(r"FUNCTION (pedro_[a-z_]+)", migrations))  # named like metrics, but not
    documented = set(re.findall(r"`(pedro_[a-z_]+)(?![.\w])", README)) - sql_functions
    assert documented <= exported_metric_names(), documented - exported_metric_names()
    assert "pedro_reconciliation_drift" not in README
    assert not re.search(r"DESIGN\.md|shared/", README)  # files a clone does not have
    assert not re.search(r"\b(the|this) \w* ?issue\b", README)
    assert "`reconcile --fix`" in README.split("### Runbook", 1)[1].split("\n## ", 1)[0]


@pytest.mark.slow
def test_dev_on_configured_servers_seeds_nothing_and_other_commands_find_it(
    service_env: dict[str, str], tmp_path: Path, engine
) -> None:
    from tests.support.servers import scalar

    env = {**service_env, "CELERY_QUEUE": f"{service_env['CELERY_QUEUE']}-dev", "WORKER_METRICS_PORT": "0",
           "OPS_PORT": str(free_port())}  # fmt: skip
    port = free_port()
    dev = Process(cli_argv("dev", "--port", str(port)), {**env, "PEDRO_STATE_DIR": str(tmp_path / "state")},
                  tmp_path / "dev.log")  # fmt: skip
    try:
        dev.wait_for_output("Ctrl-C stops them all", timeout=120)
        assert scalar(engine, """SELECT count(*) FROM "Plan" WHERE id = 'pedro_demo_plan'""") == 0  # a user's db
        bare = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
        bare["PEDRO_STATE_DIR"] = str(tmp_path / "state")
        listed = cli(bare, "replay", "--status", "failed")
        assert listed.returncode == 0, listed.stderr
        assert "default broker" not in listed.stderr  # the dev's broker, taken with its database
        elsewhere = {**bare, "DATABASE_URL": env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"}
        fallback = cli(elsewhere, "sweep")
        assert "CELERY_BROKER_URL is not set: publishing to the default broker redis://localhost:6379/0" in (
            fallback.stderr
        )
    finally:
        dev.stop(signal.SIGINT, timeout=60)
