"""Readiness under a real broker outage, metrics after real requests and real processing, and logs that
carry no secret, signature or payload."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from ingest.config.database import default_engine
from ingest.config.settings import load_settings
from ingest.http.app import create_app
from ingest.http.operations_app import create_operations_app
from tests.support.clerk import CLERK_SECRET, OTHER_SECRET, clerk_user_event, signed_clerk
from tests.support.processes import Process, cli_argv, free_port, wait_for, wait_for_receiver
from tests.support.servers import own_queue


def samples(exposition: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} from Prometheus text."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(exposition: str, name: str, **labels: str) -> float:
    return samples(exposition).get((name, frozenset(labels.items())), 0.0)


# ---- readiness ------------------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of our own on a free loopback port, which the test may stop and start again."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.log_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_readyz_names_the_broker_while_redis_is_down(engine: Engine, private_redis: PrivateRedis, monkeypatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{private_redis.port}/0")
    monkeypatch.setenv("READY_TIMEOUT", "1")
    client = create_operations_app(load_settings(ops_cache_seconds=0)).test_client()
    wait_for(lambda: client.get("/readyz").status_code == 200, 15, what="readyz 200 with Redis up")

    private_redis.stop()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json["checks"] == {"database": "ok", "broker": "unavailable"}
    assert down.json["error"] == "not_ready" and "broker" in down.json["detail"]
    assert client.get("/healthz").status_code == 200  # liveness does no I/O

    private_redis.start()
    back = wait_for(lambda: (r := client.get("/readyz")).status_code == 200 and r, 15, what="readyz 200 again")
    assert back.json == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_names_the_database_when_postgresql_does_not_answer(engine: Engine) -> None:
    settings = load_settings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", ready_timeout=1)
    response = create_operations_app(settings).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "unavailable", "broker": "ok"}
    assert response.json["detail"] == "database does not answer"


# ---- backlog gauges (in process) ------------------------------------------------------------------------


def test_stranded_event_shows_in_enqueue_failures_and_oldest_unprocessed_age(engine: Engine, monkeypatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")  # nobody listens
    client = create_app(load_settings()).test_client()
    operations = create_operations_app(load_settings(ops_cache_seconds=0)).test_client()
    before = operations.get("/metrics").get_data(as_text=True)
    body, headers = signed_clerk(clerk_user_event())
    assert client.post("/webhooks/clerk", data=body, headers=headers).json["enqueued"] is False
    with engine.begin() as connection:
        connection.execute(text("""UPDATE "WebhookEvent" SET "receivedAt" = "receivedAt" - interval '2 minutes'"""))
    after = operations.get("/metrics").get_data(as_text=True)

    failures = "pedro_ingest_enqueue_failures_total"
    assert value(after, failures, provider="clerk") == value(before, failures, provider="clerk") + 1
    assert value(after, "pedro_ingest_inbox_events", status="received") == 1
    assert 120 <= value(after, "pedro_ingest_inbox_oldest_unprocessed_age_seconds") < 3600
    assert value(after, "pedro_ingest_scrape_error", source="database") == 0
    assert value(after, "pedro_ingest_scrape_error", source="broker") == 1  # the queue depth could not be read


# ---- real receiver + worker: metrics and logs ------------------------------------------------------------


class Stack:
    def __init__(self, receiver: Process, worker: Process, url: str, ops_url: str, worker_metrics: str) -> None:
        self.receiver, self.worker, self.url, self.worker_metrics = receiver, worker, url, worker_metrics
        self.ops_url = ops_url


@pytest.fixture(scope="module")
def stack(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`serve` (gunicorn, 2 processes) and `worker` (prefork) on a queue of their own, JSON logs, metrics on."""
    logs = tmp_path_factory.mktemp("observability")
    port, ops_port, metrics_port = free_port(), free_port(), free_port()
    env = {**service_env, "CELERY_QUEUE": own_queue("obs"), "LOG_FORMAT": "json",
           "WORKER_METRICS_PORT": str(metrics_port), "OPS_PORT": str(ops_port), "OPS_CACHE_SECONDS": "0"}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    receiver = Process(cli_argv("serve", "--port", str(port), "--workers", "2"), env, logs / "receiver.log")
    worker = Process(
        cli_argv("worker", "-c", "2", "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-n", f"obs-{secrets.token_hex(3)}@%h"),
        env, logs / "worker.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_receiver(receiver, url)
        worker.wait_for_output("ready.", timeout=60)
        yield Stack(receiver, worker, url, f"http://127.0.0.1:{ops_port}", f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        worker.stop()
        receiver.stop()


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> dict[str, str]:
    """One new event, one redelivery, one forged request and one wrong content type."""
    marker = f"marker-{secrets.token_hex(6)}"
    event = clerk_user_event(email=f"{marker}@example.org", first_name=marker)
    body, headers = signed_clerk(event)
    post = lambda b, h: requests.post(f"{stack.url}/webhooks/clerk", data=b, headers=h, timeout=10)  # noqa: E731
    assert post(body, headers).json()["status"] == "accepted"
    assert post(body, headers).json()["status"] == "duplicate"
    forged_body, forged_headers = signed_clerk(clerk_user_event(email=f"{marker}@evil.example"), secret=OTHER_SECRET)
    assert post(forged_body, forged_headers).status_code == 401
    assert post(body, {**headers, "content-type": "text/plain"}).status_code == 415

    engine = default_engine()

    def processed() -> bool:
        with engine.connect() as connection:
            status = connection.execute(
                text("""SELECT status FROM "WebhookEvent" WHERE "eventId" = :id"""), {"id": headers["svix-id"]}
            ).scalar()
        return status == "processed"

    wait_for(processed, 30, what="the event processed by the stack's worker")
    wait_for(lambda: '"outcome": "processed"' in stack.worker.output(), 10, what="the worker's event line")
    return {
        "marker": marker,
        "event_id": headers["svix-id"],
        "signature": headers["svix-signature"],
        "forged_signature": forged_headers["svix-signature"],
    }


def test_receiver_metrics_count_real_requests(stack: Stack, traffic: dict[str, str]) -> None:
    assert requests.get(f"{stack.url}/metrics", timeout=10).status_code == 404  # not on the webhook port
    assert requests.get(f"{stack.url}/readyz", timeout=10).status_code == 404
    assert requests.get(f"{stack.ops_url}/healthz", timeout=10).status_code == 200
    exposition = requests.get(f"{stack.ops_url}/metrics", timeout=10).text
    assert value(exposition, "pedro_ingest_webhooks_received_total", provider="clerk", event_type="user.created") == 2
    assert value(exposition, "pedro_ingest_webhooks_duplicate_total", provider="clerk") == 1
    assert value(exposition, "pedro_ingest_webhooks_rejected_total", provider="clerk", reason="invalid_signature") == 1
    assert (
        value(exposition, "pedro_ingest_webhooks_rejected_total", provider="clerk", reason="unsupported_media_type")
        == 1
    )
    assert value(exposition, "pedro_ingest_enqueue_failures_total", provider="clerk") == 0
    assert value(exposition, "pedro_ingest_scrape_error", source="database") == 0
    assert value(exposition, "pedro_ingest_scrape_error", source="broker") == 0
    assert ("pedro_ingest_queue_depth", frozenset({("queue", "pedro-ingest")})) not in samples(exposition)
    assert any(name == "pedro_ingest_queue_depth" for name, _ in samples(exposition))
    assert any(name == "pedro_ingest_inbox_oldest_unprocessed_age_seconds" for name, _ in samples(exposition))
    assert any(name == "pedro_ingest_dead_letters" for name, _ in samples(exposition))


def test_worker_metrics_count_real_processing(stack: Stack, traffic: dict[str, str]) -> None:
    exposition = requests.get(stack.worker_metrics, timeout=10).text
    labels = {"provider": "clerk", "event_type": "user.created"}
    assert value(exposition, "pedro_ingest_events_processed_total", outcome="processed", **labels) == 1
    assert value(exposition, "pedro_ingest_processing_lag_seconds_count", provider="clerk") == 1
    assert value(exposition, "pedro_ingest_event_duration_seconds_count", provider="clerk") == 1
    assert value(exposition, "pedro_ingest_event_retries_total", **labels) == 0


def json_lines(output: str) -> list[dict]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_logs_have_one_line_per_request_and_event_and_no_secret_or_body(stack: Stack, traffic: dict[str, str]) -> None:
    receiver_log, worker_log = stack.receiver.output(), stack.worker.output()
    requests_logged = [line for line in json_lines(receiver_log) if line.get("logger") == "pedro_ingest.request"]
    forged = [line for line in requests_logged if line.get("outcome") == "invalid_signature"]
    assert len(forged) == 1 and forged[0]["status"] == 401 and forged[0]["provider"] == "clerk"
    # An accepted delivery is recorded by its inbox row: at the production level (INFO) it writes no line.
    assert not [line for line in requests_logged if line.get("outcome") in ("accepted", "duplicate")]

    events = [line for line in json_lines(worker_log) if line.get("logger") == "pedro_ingest.event"]
    assert len(events) == 1
    assert {k: events[0][k] for k in ("provider", "event_id", "event_type", "outcome", "attempt")} == {
        "provider": "clerk",
        "event_id": traffic["event_id"],
        "event_type": "user.created",
        "outcome": "processed",
        "attempt": 1,
    }

    secret_key = CLERK_SECRET.removeprefix("whsec_")
    other_key = OTHER_SECRET.removeprefix("whsec_")
    for log in (receiver_log, worker_log):
        assert traffic["marker"] not in log  # neither payload body (e-mail, name) appears
        assert secret_key not in log and other_key not in log
        assert traffic["signature"].split(",")[-1] not in log
        assert traffic["forged_signature"].split(",")[-1] not in log
        assert "asaas-test-token" not in log
