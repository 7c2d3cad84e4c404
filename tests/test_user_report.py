"""`pedro-ingest user`: a user's grant, refund, failed event and deduction, each with its reason and key,
from events a real receiver and worker processed; and `events list --user/--event-id`."""

from __future__ import annotations

import secrets
import subprocess

import pytest
from sqlalchemy import Engine

from tests.support.asaas import asaas_payment_event, deliver_asaas
from tests.support.clerk import clerk_user_event, deliver_clerk
from tests.support.factories import make_spend
from tests.support.ledger import make_plan, settle
from tests.support.processes import cli_argv
from tests.support.servers import scalar


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli_argv(*args), env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def user_with_history(engine: Engine, worker, receiver_url: str) -> dict[str, str]:
    clerk_id = f"user_{secrets.token_hex(8)}"
    email = f"report+{clerk_id[-6:]}@example.org"
    plan_id = make_plan(engine, credits=500)
    paid, refunded, unlinked = (f"pay_{secrets.token_hex(6)}" for _ in range(3))
    before = scalar(engine, 'SELECT count(*) FROM "WebhookEvent"')
    deliver_clerk(receiver_url, clerk_user_event(clerk_id=clerk_id, email=email))
    settle(engine, before + 1)
    reference = f"{clerk_id}|plan:{plan_id}"
    failed = asaas_payment_event("PAYMENT_RECEIVED", unlinked, external_reference=clerk_id)  # no plan: unlinked_plan
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", paid, external_reference=reference), failed)
    settle(engine, before + 3)
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_RECEIVED", refunded, external_reference=reference))
    settle(engine, before + 4)
    deliver_asaas(receiver_url, asaas_payment_event("PAYMENT_REFUNDED", refunded, external_reference=reference))
    settle(engine, before + 5)
    make_spend(engine, scalar(engine, 'SELECT id FROM "User" WHERE "clerkId" = :c', c=clerk_id), 30)
    failed_row = scalar(engine, 'SELECT id FROM "WebhookEvent" WHERE "eventId" = :e', e=failed["id"])
    return {"clerk_id": clerk_id, "email": email, "paid": paid, "refunded": refunded, "failed_row": failed_row,
            "failed_event": failed["id"]}  # fmt: skip


def test_user_shows_grants_refund_failure_and_deduction_with_reasons(
    user_with_history: dict[str, str], service_env: dict[str, str]
) -> None:
    h = user_with_history
    result = cli(service_env, "user", h["clerk_id"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"user {h['clerk_id']}" in out and h["email"] in out and ": active" in out
    assert "balance: 570  ledger: 570  reconciles" in out  # 100 signup + 500 + 500 - 500 refunded - 30 spent
    assert f"grant          +100  signup  key=clerk:signup:{h['clerk_id']}" in out
    assert f"grant          +500  plan_grant  key=asaas:payment:{h['paid']}" in out
    assert f"reversal       -500  plan_reversal  key=asaas:payment:{h['refunded']}:reversal" in out
    assert "deduction       -30  AI_TEXT_CHAT" in out
    assert "inbox events (5):" in out
    assert out.count(" processed attempts=1") == 4
    assert f"failed    attempts=1  {h['failed_event']}" in out
    assert "unlinked_plan: no Plan matches this payment" in out
    assert f"after the fix: pedro-ingest replay {h['failed_row']}" in out
    for ref in (h["email"].upper(), h["paid"], h["refunded"]):  # the same user by e-mail or by payment id
        again = cli(service_env, "user", ref)
        assert again.returncode == 0 and again.stdout == out, again.stderr


def test_events_list_by_user_and_by_provider_event_id(
    user_with_history: dict[str, str], service_env: dict[str, str]
) -> None:
    h = user_with_history
    by_user = cli(service_env, "events", "list", "--user", h["clerk_id"])
    assert by_user.returncode == 0 and len(by_user.stdout.splitlines()) == 1 + 5 + 1, by_user.stdout + by_user.stderr
    assert by_user.stdout.splitlines()[-1] == "5 event(s)"  # after a header row, the rows and their count
    by_event = cli(service_env, "events", "list", "--event-id", h["failed_event"])
    header, row, count = by_event.stdout.splitlines()
    assert header.split()[:2] == ["id", "received"] and row.split()[0] == h["failed_row"] and count == "1 event(s)"
    assert "error=unlinked_plan" in by_event.stdout


@pytest.mark.parametrize("command", [["user"], ["events", "list", "--user"]])
def test_unknown_user_is_one_line(command: list[str], service_env: dict[str, str], engine: Engine) -> None:
    result = cli(service_env, *command, "nobody-such@example.org")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "pedro-ingest: no user matches 'nobody-such@example.org' (tried Clerk id, e-mail, user id, Asaas payment id)"
    ]
