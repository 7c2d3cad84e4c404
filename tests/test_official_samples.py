"""Every example Clerk and Asaas publish, delivered through the running receiver and worker.

Each must be accepted (200) and end `processed` or `ignored`: never `dead`, never `failed` for a type we do
not handle. The world is set up as a deployment would have it: the billing payer exists (the web app
created it), Clerk's example plan is configured, and Asaas's example subscription is linked to a user.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.support.asaas import post_asaas
from tests.support.clerk import post_clerk
from tests.support.factories import make_bare_user, make_subscription_link
from tests.support.fixtures import FIXTURES
from tests.support.ledger import assert_no_drift, ledger_sum, live_lots, make_plan, settle
from tests.support.processes import Process, cli_argv
from tests.support.servers import rows
from workers.jobs import expire_credits

OFFICIAL = FIXTURES / "official"
PAYER = "user_34D368EufHwugfYh4yyGNEheM0S"  # the payer of Clerk's billing examples
CLERK_PLAN = "cplan_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
ASAAS_SUBSCRIPTION = "sub_VXJBYgP2u0eO"  # the subscription of Asaas's PAYMENT_RECEIVED example
# As before lots: Clerk's example user gets its signup 100 and the example item's plan 500; the payer none.
EXPECTED_BALANCES = [("user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", 600), (PAYER, 0)]


def _seed(engine: Engine) -> None:
    make_subscription_link(engine, make_bare_user(engine, PAYER), ASAAS_SUBSCRIPTION)
    make_plan(engine, 500, clerkId=CLERK_PLAN, clerkName="pro-plan", asaasId=ASAAS_SUBSCRIPTION)


def _deliver_every_example(engine: Engine, receiver_url: str) -> int:
    """Post every example in order (the user exists before its billing, and is deleted last); returns the rows."""
    clerk = sorted((OFFICIAL / "clerk").glob("*.json"))
    created, deleted = OFFICIAL / "clerk/official_user_created.json", OFFICIAL / "clerk/official_user_deleted.json"
    ordered = [created, *(path for path in clerk if path not in (created, deleted)), deleted]
    stored = 0
    for path in ordered:
        response = post_clerk(receiver_url, json.loads(path.read_text()))
        assert response.status_code == 200, (path.name, response.text)
        stored += 1
        settle(engine, stored, timeout=60)  # in order: the user exists before its billing, and is deleted last
    duplicates = []
    for path in sorted((OFFICIAL / "asaas").glob("*.json")):
        response = post_asaas(receiver_url, path.read_bytes())
        assert response.status_code == 200, (path.name, response.text)
        if response.json().get("status") == "duplicate":
            duplicates.append(path.name)  # the docs reuse one placeholder `id` for several examples
        else:
            stored += 1
    settle(engine, stored, timeout=60)
    assert len(duplicates) <= 3
    return stored


def test_every_official_example_is_accepted_and_ends_processed_or_ignored(engine, worker, receiver_url) -> None:
    _seed(engine)
    stored = _deliver_every_example(engine, receiver_url)

    outcomes = rows(engine, """SELECT provider, "eventType", status, "lastError" FROM "WebhookEvent" ORDER BY 1, 2""")
    assert len(outcomes) == stored
    assert {status for _, _, status, _ in outcomes} <= {"processed", "ignored"}, outcomes
    by_type = {(provider, event_type): status for provider, event_type, status, _ in outcomes}
    assert by_type[("clerk", "user.deleted")] == "processed"
    assert by_type[("asaas", "TRANSFER_CREATED")] == "ignored"
    official_user = json.loads((OFFICIAL / "clerk/official_user_created.json").read_text())["data"]["id"]
    user = rows(engine, """SELECT "isActive", email, name FROM "User" WHERE "clerkId" = :c""", c=official_user)
    assert user == [(False, None, None)]  # the official user.deleted deactivates and erases the official user
    assert_no_drift(engine, PAYER)


@pytest.fixture
def rollover_all_worker(service_env: dict[str, str], tmp_path) -> Iterator[Process]:
    """The session's worker, configured to carry every credit over at renewal (the receiver's queue)."""
    env = {**service_env, "PLAN_CREDITS_ROLLOVER": "all"}
    argv = cli_argv("worker", "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n",
                    f"test-all-{secrets.token_hex(3)}@%h")  # fmt: skip
    process = Process(argv, env, tmp_path / "worker.log")
    process.wait_for_output("ready.", timeout=60)
    yield process
    process.stop()


def test_official_examples_keep_their_balances_under_rollover_all(engine, rollover_all_worker, receiver_url) -> None:
    """Nothing regresses for a user who never renews: the balances are the grants' sums, as before lots."""
    _seed(engine)
    _deliver_every_example(engine, receiver_url)
    expired = expire_credits.expire_credits(engine=engine, publish=False)
    assert (expired.lots, expired.credits) == (0, 0)  # the examples' periods are long past; grace runs from the grant

    balances = rows(
        engine,
        """SELECT u."clerkId", b."creditsRemaining", u.id FROM "CreditBalance" b JOIN "User" u ON u.id = b."userId"
            ORDER BY 1""",
    )
    assert [(clerk_id, credits) for clerk_id, credits, _ in balances] == EXPECTED_BALANCES
    for _, credits, user_id in balances:
        assert credits == live_lots(engine, user_id) == ledger_sum(engine, user_id)
    assert rows(engine, """SELECT 1 FROM "UsageHistory" WHERE "operationType" = 'CREDIT_EXPIRY'""") == []
    assert_no_drift(engine, PAYER)
