"""Asaas payment backfill against a local server speaking the Asaas API: one grant whatever the order with
webhooks, refunds reversed once, paging through 429 and 503, budget and concurrency, 401 and no key."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine

from ingest.config.settings import Settings, get_settings
from tests.support.asaas import asaas_payment_event, deliver_asaas
from tests.support.fake_asaas import FakeAsaas, asaas_api_payment
from tests.support.ledger import assert_balance_matches_ledger, balance, grant_rows, make_plan, make_user, settle
from tests.support.servers import REDIS_URL, rows, scalar
from workers.jobs.payment_sync import resync_payments
from workers.jobs.payment_sync_state import SyncState
from workers.providers.asaas_api import AsaasApi
from workers.providers.asaas_limiter import AsaasLimiter, LimiterTimeout, QuotaExhausted

OPENING = 40
CREDITS = 500
SINCE = dt.date(2026, 11, 29)


@pytest.fixture
def fake() -> Iterator[FakeAsaas]:
    with FakeAsaas() as server:
        yield server


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """Limiter and backfill state of this test only; removed afterwards."""
    prefix = f"pedro-test:asaas:{secrets.token_hex(4)}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def customer(engine: Engine) -> tuple[str, str]:
    """(User.id, externalReference linking the user and a 500-credit plan)."""
    user_id, clerk_id = make_user(engine, OPENING)
    return user_id, f"{clerk_id}|plan:{make_plan(engine, CREDITS)}"


class Backfill:
    """Runs `resync_payments` against the fake with this test's limiter and state."""

    def __init__(self, fake: FakeAsaas, prefix: str, engine: Engine) -> None:
        self.fake, self.prefix, self.engine = fake, prefix, engine
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.state = SyncState(self.redis, prefix=f"{prefix}:sync")

    def api(self, *, key: str | None = None, concurrency: int = 2, budget: int = 100, **options) -> AsaasApi:
        limiter = AsaasLimiter(self.redis, concurrency=concurrency, quota=10_000, prefix=f"{self.prefix}:api")
        options = {"backoff_base": 0.01, "max_attempts": 4, **options}
        return AsaasApi(self.fake.url, key or self.fake.api_key, limiter, budget=budget, **options)

    def run(self, since: dt.date | None = SINCE, *, api: AsaasApi | None = None, concurrency: int = 2, **kw):
        settings: Settings = get_settings().model_copy(update={"asaas_api_concurrency": concurrency})
        api = api or self.api(concurrency=concurrency)
        return resync_payments(since=since, settings=settings, engine=self.engine, api=api, state=self.state, **kw)


@pytest.fixture
def backfill(fake: FakeAsaas, redis_prefix: str, engine: Engine) -> Backfill:
    return Backfill(fake, redis_prefix, engine)


def sync_rows(engine: Engine) -> list[tuple]:
    return rows(
        engine,
        """SELECT "eventId", status FROM "WebhookEvent" WHERE "eventType" = 'PAYMENT_SYNC' ORDER BY "eventId" """,
    )


def grants_like(engine: Engine, pattern: str) -> int:
    return scalar(engine, 'SELECT count(*) FROM "CreditGrant" WHERE "grantKey" LIKE :p', p=pattern)


def test_a_payment_whose_webhook_never_came_grants_once_and_its_late_webhook_adds_nothing(
    engine, worker, receiver_url, fake, backfill, customer
) -> None:
    user_id, reference = customer
    fake.payments = [asaas_api_payment("pay_lost1", external_reference=reference)]

    report = backfill.run()
    assert (report.status, report.stored, report.applied) == ("done", 1, 1)
    assert sync_rows(engine) == [("payment-sync:pay_lost1:RECEIVED", "processed")]
    assert grant_rows(engine, "asaas:payment:pay_lost1") == [("asaas:payment:pay_lost1", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS

    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", "pay_lost1", external_reference=reference))
    settle(engine, 2)
    assert grant_rows(engine, "asaas:payment:pay_lost1") == [("asaas:payment:pay_lost1", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)
    details = rows(engine, """SELECT details->>'eventId', details->>'eventType' FROM "UsageHistory" """)
    assert details == [("payment-sync:pay_lost1:RECEIVED", "PAYMENT_RECEIVED")], "the ledger names the backfill"


def test_a_webhook_first_then_the_backfill_grants_once(engine, worker, receiver_url, fake, backfill, customer) -> None:
    user_id, reference = customer
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_CONFIRMED", "pay_hook1", external_reference=reference))
    settle(engine, 1)
    fake.payments = [asaas_api_payment("pay_hook1", status="CONFIRMED", external_reference=reference)]

    report = backfill.run()
    assert (report.status, report.stored, report.applied) == ("done", 1, 1)
    assert grant_rows(engine, "asaas:payment:pay_hook1") == [("asaas:payment:pay_hook1", CREDITS)]
    assert balance(engine, user_id) == OPENING + CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_a_refund_whose_webhook_was_lost_is_reversed_once(engine, worker, receiver_url, fake, backfill, customer):
    user_id, reference = customer
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", "pay_refd1", external_reference=reference))
    settle(engine, 1)
    assert balance(engine, user_id) == OPENING + CREDITS
    fake.payments = [asaas_api_payment("pay_refd1", status="REFUNDED", external_reference=reference)]

    assert backfill.run().applied == 1
    assert balance(engine, user_id) == OPENING
    again = backfill.run()
    assert (again.stored, again.applied) == (0, 0), "seen by two passes, applied by none"
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_REFUNDED", "pay_refd1", external_reference=reference))
    settle(engine, 3)
    assert balance(engine, user_id) == OPENING, "reversed once, whatever reports it"
    assert grant_rows(engine, "asaas:payment:pay_refd1") == [
        ("asaas:payment:pay_refd1", CREDITS),
        ("asaas:payment:pay_refd1:reversal", -CREDITS),
    ]
    assert_balance_matches_ledger(engine, user_id, OPENING)


def test_250_payments_through_a_429_and_a_503_apply_once_within_concurrency_and_budget(
    engine, fake, backfill, customer
) -> None:
    user_id, reference = customer
    fake.delay = 0.05  # pages overlap in time, so the concurrency bound is exercised
    fake.payments = [asaas_api_payment(f"pay_bulk{n:03d}", external_reference=reference) for n in range(250)]
    fake.inject(429, {"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"}, after=1)
    fake.inject(503, after=2)
    api = backfill.api(concurrency=2, budget=30)

    report = backfill.run(api=api, concurrency=2)
    assert (report.status, report.seen, report.stored, report.applied) == ("done", 250, 250, 250)
    statuses = [status for *_, status in fake.requests]
    assert statuses.count(429) == 1 and statuses.count(503) == 1
    assert fake.max_in_flight == 2, "pages are read two at a time, never more"
    assert len(fake.requests) == api.requests_made <= 30
    assert grants_like(engine, "asaas:payment:pay_bulk%") == 250
    assert balance(engine, user_id) == OPENING + 250 * CREDITS
    assert_balance_matches_ledger(engine, user_id, OPENING)

    again = backfill.run(concurrency=2)
    assert (again.status, again.stored, again.applied, again.already_applied) == ("done", 0, 0, 250)
    assert balance(engine, user_id) == OPENING + 250 * CREDITS


def test_a_run_stopped_by_its_budget_or_a_5xx_storm_resumes_where_it_stopped(engine, fake, backfill, customer):
    _, reference = customer
    fake.payments = [asaas_api_payment(f"pay_res{n:03d}", external_reference=reference) for n in range(250)]

    stopped = backfill.run(api=backfill.api(concurrency=1, budget=2), concurrency=1)
    assert (stopped.status, stopped.applied) == ("budget_spent", 200)
    fake.inject(502, after=0)
    fake.inject(503, after=0)
    fake.inject(500, after=0)
    fake.inject(504, after=0)
    storm = backfill.run(api=backfill.api(concurrency=1, max_attempts=4), concurrency=1)
    assert (storm.status, storm.resumed_at, storm.applied) == ("unavailable", "pass 0 offset 200", 0)

    fake.requests.clear()
    resumed = backfill.run(concurrency=1)
    assert (resumed.status, resumed.resumed_at, resumed.applied) == ("done", "pass 0 offset 200", 50)
    assert fake.requests[0][2]["offset"] == ["200"] and fake.requests[0][2]["paymentDate[ge]"] == [SINCE.isoformat()]
    assert grants_like(engine, "asaas:payment:pay_res%") == 250
    assert backfill.state.cursor() is None and backfill.state.watermark() is not None


def test_the_limiter_shares_its_slots_between_processes(backfill) -> None:
    first = AsaasLimiter(backfill.redis, concurrency=1, quota=10, prefix=f"{backfill.prefix}:shared")
    second = AsaasLimiter(backfill.redis, concurrency=1, quota=10, prefix=f"{backfill.prefix}:shared")
    with first.slot(max_wait=1), pytest.raises(LimiterTimeout), second.slot(max_wait=0.2):
        pass
    with second.slot(max_wait=1):
        pass
    first.pause_for(30)
    with pytest.raises(LimiterTimeout), second.slot(max_wait=1):
        pass
    backfill.redis.delete(f"{backfill.prefix}:shared:paused_until")
    with pytest.raises(QuotaExhausted):
        for _ in range(11):
            with second.slot(max_wait=1):
                pass


def test_401_stops_at_once_and_never_logs_the_key(engine, fake, backfill, customer, caplog) -> None:
    _, reference = customer
    fake.payments = [asaas_api_payment("pay_nokey", external_reference=reference)]
    wrong = "$aact_wrong_key_0123456789"
    with caplog.at_level(logging.DEBUG):
        report = backfill.run(api=backfill.api(key=wrong))
    assert report.status == "unauthorized"
    assert [status for *_, status in fake.requests] == [401]
    assert sync_rows(engine) == []
    assert wrong not in caplog.text and "wrong_key" not in caplog.text


def test_without_a_key_the_backfill_is_skipped_with_one_line(engine, caplog) -> None:
    settings = get_settings().model_copy(update={"asaas_api_key": None})
    with caplog.at_level(logging.INFO, logger="workers.jobs.payment_sync"):
        report = resync_payments(settings=settings, engine=engine)
    assert report.status == "skipped_no_key"
    assert [r.getMessage() for r in caplog.records] == ["payment backfill skipped: ASAAS_API_KEY is not set"]


def test_dry_run_writes_nothing(engine, fake, backfill, customer) -> None:
    user_id, reference = customer
    fake.payments = [asaas_api_payment("pay_dry1", external_reference=reference)]
    report = backfill.run(dry_run=True)
    assert (report.status, report.stored, report.applied) == ("done", 1, 0)
    assert sync_rows(engine) == [] and balance(engine, user_id) == OPENING
    assert backfill.state.watermark() is None


def test_installment_payments_carry_their_purchase_read_once_per_run(engine, fake, backfill, customer) -> None:
    _, reference = customer
    purchase = {"object": "installment", "id": "ins_pur1", "value": 200.0, "paymentValue": 100.0,
                "installmentCount": 2, "billingType": "CREDIT_CARD", "deleted": False, "refunds": None}  # fmt: skip
    fake.installments = {"ins_pur1": purchase}
    fake.payments = [
        asaas_api_payment(f"pay_par{n}", status="CONFIRMED", external_reference=reference, installment="ins_pur1")
        for n in (1, 2)
    ]
    report = backfill.run()
    assert (report.status, report.stored) == ("done", 2)
    assert len(fake.answered("/v3/installments/ins_pur1")) == 1
    stored = rows(engine, """SELECT payload->'installment'->>'value' FROM "WebhookEvent" ORDER BY "eventId" """)
    assert stored == [("200.0",), ("200.0",)]


def test_the_cli_reads_the_configured_api(engine, fake, customer, monkeypatch) -> None:
    from click.testing import CliRunner

    from ingest.cli import main

    _, reference = customer
    fake.payments = [asaas_api_payment("pay_cli1", external_reference=reference)]
    monkeypatch.setenv("ASAAS_API_KEY", fake.api_key)
    monkeypatch.setenv("ASAAS_API_URL", fake.url)
    get_settings.cache_clear()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        dry = CliRunner().invoke(main, ["resync-payments", "--since", SINCE.isoformat(), "--dry-run"])
        real = CliRunner().invoke(main, ["resync-payments", "--since", SINCE.isoformat()])
    finally:
        monkeypatch.delenv("ASAAS_API_KEY")
        monkeypatch.delenv("ASAAS_API_URL")
        get_settings.cache_clear()
        for key in client.scan_iter(match="pedro:asaas:*"):
            client.delete(key)
        client.close()
    assert dry.exit_code == 0 and "would store 1, applied 0" in dry.output, dry.output
    assert real.exit_code == 0 and "stored 1, applied 1" in real.output, real.output
    assert fake.api_key not in dry.output + real.output
    assert grant_rows(engine, "asaas:payment:pay_cli1") == [("asaas:payment:pay_cli1", CREDITS)]
