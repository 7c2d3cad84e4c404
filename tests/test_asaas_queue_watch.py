"""Asaas queue watch against a local server speaking the Asaas API: a paused queue shows in the metrics, is
resumed (once, only when the receiver is ready) and followed by a backfill of the outage window."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine

from ingest.broker import asaas_queue_state, task_names
from ingest.config.settings import get_settings
from ingest.http.backlog import backlog_collector
from ingest.observability import metrics
from models.locks import try_job_lock
from tests.support.asaas import asaas_payment_event, deliver_asaas
from tests.support.fake_asaas import FakeAsaas, asaas_api_payment, asaas_api_webhook
from tests.support.ledger import balance, grant_rows, make_plan, make_user, settle
from tests.support.processes import Process, cli_argv, free_port, wait_for
from tests.support.servers import REDIS_URL, own_queue
from workers.jobs.asaas_queue_watch import JOB as watch_job
from workers.jobs.asaas_queue_watch import watch_asaas_queue
from workers.jobs.payment_sync import today_in_sao_paulo
from workers.providers.asaas_api import AsaasApi
from workers.providers.asaas_limiter import AsaasLimiter

OPENING, CREDITS = 40, 500
OUR_URL = "https://pedro.example.org/webhooks/asaas"


@pytest.fixture
def fake() -> Iterator[FakeAsaas]:
    with FakeAsaas() as server:
        server.webhooks = [
            asaas_api_webhook("wh_other", "https://crm.example.org/hooks/asaas-events"),
            asaas_api_webhook("wh_ours", OUR_URL, interrupted=True, penalized=15),
        ]
        yield server


@pytest.fixture
def clean_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    for key in client.scan_iter(match="pedro:asaas:*"):
        client.delete(key)
    client.close()


def api_for(fake: FakeAsaas, client: redis.Redis) -> AsaasApi:
    limiter = AsaasLimiter(client, concurrency=2, quota=10_000, prefix=f"pedro:asaas:test-{secrets.token_hex(3)}")
    return AsaasApi(fake.url, fake.api_key, limiter, budget=50, backoff_base=0.01)


def resume_calls(fake: FakeAsaas) -> list:
    return fake.answered("/v3/webhooks/", method="PUT")


def test_a_paused_queue_shows_in_the_metrics_and_is_left_alone_by_default(engine, fake, clean_redis, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="workers.jobs.asaas_queue_watch"):
        report = watch_asaas_queue(settings=get_settings(), engine=engine, api=api_for(fake, clean_redis))
    assert (report.status, report.webhook_id, report.interrupted, report.penalized) == (
        "interrupted",
        "wh_ours",
        True,
        15,
    )
    assert resume_calls(fake) == []
    assert any("paused our webhook queue" in record.getMessage() for record in caplog.records)

    body, _ = metrics.render(backlog_collector(engine, get_settings()))
    text = body.decode()
    assert "pedro_ingest_asaas_queue_interrupted 1.0" in text
    assert "pedro_ingest_asaas_queue_penalized_requests 15.0" in text
    assert 'pedro_ingest_scrape_error{source="asaas_queue"} 0.0' in text

    fake.webhooks[1].update(interrupted=False, penalizedRequestsCount=0)
    assert watch_asaas_queue(settings=get_settings(), engine=engine, api=api_for(fake, clean_redis)).status == "ok"
    assert (
        "pedro_ingest_asaas_queue_interrupted 0.0"
        in metrics.render(backlog_collector(engine, get_settings()))[0].decode()
    )


def test_with_resume_enabled_and_the_receiver_ready_it_resumes_once_and_backfills_the_outage(
    engine, worker, receiver_url, receiver_ops_url, fake, clean_redis
) -> None:
    user_id, clerk_id = make_user(engine, OPENING)
    reference = f"{clerk_id}|plan:{make_plan(engine, CREDITS)}"
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", "pay_before", external_reference=reference))
    settle(engine, 1)  # the last delivery before the outage
    paid_in_outage = today_in_sao_paulo().isoformat()
    fake.payments = [asaas_api_payment("pay_during", external_reference=reference, payment_date=paid_in_outage)]
    settings = get_settings().model_copy(
        update={"asaas_resume_queue": True, "receiver_ready_url": f"{receiver_ops_url}/readyz"}
    )

    report = watch_asaas_queue(settings=settings, engine=engine, api=api_for(fake, clean_redis))
    assert report.status == "resumed"
    assert len(resume_calls(fake)) == 1 and fake.webhooks[1]["interrupted"] is False
    window = (today_in_sao_paulo() - dt.timedelta(days=1)).isoformat()
    assert fake.answered("/v3/payments")[0]["paymentDate[ge]"] == [window]
    assert report.backfill is not None and (report.backfill.status, report.backfill.applied) == ("done", 1)
    assert grant_rows(engine, "asaas:payment:pay_during") == [("asaas:payment:pay_during", CREDITS)]
    assert balance(engine, user_id) == OPENING + 2 * CREDITS

    again = watch_asaas_queue(settings=settings, engine=engine, api=api_for(fake, clean_redis))
    assert again.status == "ok" and len(resume_calls(fake)) == 1, "a running queue is not resumed again"


def test_with_the_receiver_not_ready_the_queue_is_not_resumed(engine, fake, clean_redis) -> None:
    settings = get_settings().model_copy(
        update={"asaas_resume_queue": True, "receiver_ready_url": f"http://127.0.0.1:{free_port()}/readyz"}
    )
    report = watch_asaas_queue(settings=settings, engine=engine, api=api_for(fake, clean_redis))
    assert report.status == "interrupted"
    assert resume_calls(fake) == [] and fake.answered("/v3/payments") == []
    assert asaas_queue_state.load(clean_redis)["interrupted"] is True


def test_our_webhook_is_found_by_id_or_url_and_unknown_ones_are_reported(engine, fake, clean_redis) -> None:
    by_id = get_settings().model_copy(update={"asaas_webhook_id": "wh_other"})
    assert watch_asaas_queue(settings=by_id, engine=engine, api=api_for(fake, clean_redis)).status == "ok"
    missing = get_settings().model_copy(update={"asaas_webhook_url": "https://elsewhere.example.org/webhooks/asaas"})
    assert watch_asaas_queue(settings=missing, engine=engine, api=api_for(fake, clean_redis)).status == "not_found"


def test_without_a_key_the_watch_is_skipped_with_one_line(engine, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="workers.jobs.asaas_queue_watch"):
        no_key = get_settings().model_copy(update={"asaas_api_key": None})
        report = watch_asaas_queue(settings=no_key, engine=engine)
    assert report.status == "skipped_no_key"
    assert [r.getMessage() for r in caplog.records] == ["asaas queue watch skipped: ASAAS_API_KEY is not set"]


def test_a_second_watch_skips_while_one_holds_its_lock_and_each_run_is_counted(engine, fake, clean_redis) -> None:
    def runs(status: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "pedro_ingest_job_runs_total", {"job": watch_job.name, "status": status}
        )
        return value or 0.0

    before = runs("skipped_locked"), runs("interrupted")
    with try_job_lock(engine, watch_job.name) as held:
        assert held
        skipped = watch_asaas_queue(settings=get_settings(), engine=engine, api=api_for(fake, clean_redis))
    assert skipped.status == "skipped_locked" and fake.answered("/v3/webhooks") == []
    assert watch_asaas_queue(settings=get_settings(), engine=engine, api=api_for(fake, clean_redis)).interrupted
    assert (runs("skipped_locked"), runs("interrupted")) == (before[0] + 1, before[1] + 1)


def test_a_worker_runs_the_beat_tasks_resume_and_backfill(
    engine: Engine, receiver_url, receiver_ops_url, fake, clean_redis, service_env, tmp_path
) -> None:
    user_id, clerk_id = make_user(engine, OPENING)
    reference = f"{clerk_id}|plan:{make_plan(engine, CREDITS)}"
    fake.payments = [asaas_api_payment("pay_worker", external_reference=reference, payment_date=None,
                                       date_created=today_in_sao_paulo().isoformat())]  # fmt: skip
    queue = own_queue("asaas")
    env = {**service_env, "CELERY_QUEUE": queue, "ASAAS_API_KEY": fake.api_key, "ASAAS_API_URL": fake.url,
           "ASAAS_WEBHOOK_ID": "wh_ours", "ASAAS_RESUME_QUEUE": "true",
           "RECEIVER_READY_URL": f"{receiver_ops_url}/readyz", "WORKER_METRICS_PORT": "0"}  # fmt: skip
    process = Process(cli_argv("worker", "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat",
                               "-n", f"asaas-{secrets.token_hex(3)}@%h"), env, tmp_path / "worker.log")  # fmt: skip
    try:
        process.wait_for_output("ready.", timeout=60)
        Celery(broker=REDIS_URL).send_task(task_names.WATCH_ASAAS_QUEUE, queue=f"{queue}-periodic")
        wait_for(lambda: grant_rows(engine, "asaas:payment:pay_worker"), timeout=60, what="the backfilled grant")
        assert len(resume_calls(fake)) == 1
        assert balance(engine, user_id) == OPENING + CREDITS
        assert "$aact_test_fake_key" not in process.output()
    finally:
        process.stop()
        redis.Redis.from_url(REDIS_URL).delete(f"{queue}-periodic", queue)
