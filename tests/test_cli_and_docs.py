"""The CLI's surface, the compose file, the OpenAPI document and the README stay true to the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ingest.cli import main
from ingest.config import settings_doc
from ingest.config.settings import Settings
from ingest.http import openapi
from tests.support.processes import cli_argv, free_port

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_VARS = {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_subcommand_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: main {command}") or f" {command} " in result.output.splitlines()[0]
    docstring = (main.commands[command].help or "").strip()
    assert docstring, f"`{command}` has no help text"


def test_top_level_help_lists_every_subcommand() -> None:
    result = subprocess.run(cli_argv("--help"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in main.commands:
        assert command in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["send-sample", "--url", "not-a-url", "--clerk-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], {},
         "--url must be an http(s):// URL"),
        (["send-sample", "--url", "http://127.0.0.1:{port}", "--provider", "clerk", "--clerk-secret",
          "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], {}, "receiver not reachable at http://127.0.0.1:"),
        (["send-sample", "--provider", "clerk", "--state-dir", "/nonexistent-pedro"], {"CLERK_WEBHOOK_SECRET": ""},
         "no Clerk signing secret"),
        (["migrate"], {"DATABASE_URL": "postgresql://postgres@127.0.0.1:{port}/nowhere"}, "database unreachable"),
        (["migrate"], {"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be a postgresql:// URL"),
    ],
)  # fmt: skip
def test_user_mistakes_end_with_one_line_and_non_zero_exit(
    args: list[str], env: dict[str, str], expected: str, service_env: dict[str, str]
) -> None:
    port = str(free_port())
    run_env = {**service_env, **{k: v.replace("{port}", port) for k, v in env.items()}}
    result = subprocess.run(
        cli_argv(*[a.replace("{port}", port) for a in args]), capture_output=True, text=True, env=run_env, timeout=60
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# ---- OpenAPI -----------------------------------------------------------------------------------------


def flask_routes(app) -> set[tuple[str, str]]:
    return {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_openapi_describes_exactly_the_routes(app) -> None:
    from ingest.http.operations_app import create_operations_app

    operations = create_operations_app()
    served = operations.test_client().get("/openapi.json")
    assert served.status_code == 200
    document = served.json
    assert document["openapi"].startswith("3.1")
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == flask_routes(app) | flask_routes(operations)


def test_openapi_lists_every_error_code_the_receiver_documents() -> None:
    receiver_doc = (ROOT / "docs" / "receiver.md").read_text()  # README links it under "How it works"
    section = receiver_doc.split("\n## Receiver answers\n", 1)[1].split("\n## ", 1)[0]
    table = [line.split("|")[2] for line in section.splitlines() if line.startswith("| ") and "`" in line]
    codes = set(re.findall(r"`([a-z_]+)`", " ".join(table)))
    webhooks = [openapi.PATHS[path]["post"]["responses"] for path in ("/webhooks/clerk", "/webhooks/asaas")]
    in_spec = {
        code for responses in webhooks for response in responses.values() if "allOf" in str(response)
        for code in _codes(response)
    }  # fmt: skip
    not_webhook_answers = {"error", "not_found", "method_not_allowed", "internal_error"}  # header; any path; a bug
    assert codes - not_webhook_answers == in_spec
    assert {"ip_not_allowed", "body_timeout", "body_too_large", "server_busy"} <= codes


def _codes(response: dict) -> list[str]:
    schema = response["content"]["application/json"]["schema"]
    return schema["allOf"][1]["properties"]["error"]["enum"]


# ---- docker-compose -----------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def pedro_services() -> dict[str, dict]:
    return {name: svc for name, svc in compose()["services"].items() if svc.get("image", "").startswith("pedro")}


def test_compose_runs_every_role_with_health_checks_and_restart_policies() -> None:
    services = compose()["services"]
    assert re.fullmatch(r"postgres:16\.\d+", services["postgres"]["image"])  # pinned to a minor release
    assert re.fullmatch(r"redis:7\.\d+\.\d+", services["redis"]["image"])
    assert all(re.search(r":\$\{PEDRO_INGEST_VERSION:-\d", svc["image"]) for svc in pedro_services().values())
    text = (ROOT / "docker-compose.yml").read_text()
    assert "pedro:pedro@" not in text and "POSTGRES_PASSWORD: pedro" not in text
    assert set(pedro_services()) == {"migrate", "receiver", "worker", "beat"}
    for name, service in services.items():
        assert "restart" in service, name
        if name != "migrate":
            assert service["healthcheck"]["test"], name
    assert services["migrate"]["restart"] == "no"
    for name in ("receiver", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_commands_exist_in_the_cli() -> None:
    missing = {svc["command"][0] for svc in pedro_services().values()} - set(main.commands)
    assert not missing


def test_compose_environment_is_known_to_the_settings() -> None:
    for name, service in pedro_services().items():
        unknown = set(service["environment"]) - SETTINGS_VARS
        assert not unknown, f"{name} sets {unknown}, which Settings does not read"


def test_compose_ports_agree() -> None:
    services = pedro_services()
    receiver = services["receiver"]
    port = receiver["command"][receiver["command"].index("--port") + 1]
    assert receiver["ports"] == [f"{port}:{port}"]
    assert f":{port}/healthz" in " ".join(receiver["healthcheck"]["test"])
    worker = services["worker"]
    metrics_port = worker["environment"]["WORKER_METRICS_PORT"]
    assert worker["ports"] == [f"127.0.0.1:{metrics_port}:{metrics_port}"]  # metrics are not for the internet
    assert f":{metrics_port}/metrics" in " ".join(worker["healthcheck"]["test"])
    assert worker["environment"]["WORKER_METRICS_HOST"] == "0.0.0.0"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"EXPOSE .*\b{port}\b.*\b{metrics_port}\b", dockerfile)


# ---- README -------------------------------------------------------------------------------------------


def test_readme_configuration_table_is_generated_from_the_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings_doc.block() in readme, "run: python -m ingest.config.settings_doc --write README.md"


def test_readme_names_every_cli_command() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in main.commands:
        assert f"pedro-ingest {command}" in readme, command
