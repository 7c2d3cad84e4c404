"""Every example Clerk and Asaas publish, delivered through the running receiver and worker.

Each must be accepted (200) and end `processed` or `ignored`: never `dead`, never `failed` for a type we do
not handle. The world is set up as a deployment would have it: the billing payer exists (the web app
created it), Clerk's example plan is configured, and Asaas's example subscription is linked to a user.
"""

from __future__ import annotations

import json

from sqlalchemy import Engine

from tests.support.asaas import post_asaas
from tests.support.clerk import post_clerk
from tests.support.factories import make_bare_user, make_subscription_link
from tests.support.fixtures import FIXTURES
from tests.support.ledger import assert_no_drift, make_plan, settle
from tests.support.servers import rows

OFFICIAL = FIXTURES / "official"
PAYER = "user_34D368EufHwugfYh4yyGNEheM0S"  # the payer of Clerk's billing examples
CLERK_PLAN = "cplan_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
ASAAS_SUBSCRIPTION = "sub_VXJBYgP2u0eO"  # the subscription of Asaas's PAYMENT_RECEIVED example


def _seed(engine: Engine) -> None:
    make_subscription_link(engine, make_bare_user(engine, PAYER), ASAAS_SUBSCRIPTION)
    make_plan(engine, 500, clerkId=CLERK_PLAN, clerkName="pro-plan", asaasId=ASAAS_SUBSCRIPTION)


def test_every_official_example_is_accepted_and_ends_processed_or_ignored(engine, worker, receiver_url) -> None:
    _seed(engine)
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

    outcomes = rows(engine, """SELECT provider, "eventType", status, "lastError" FROM "WebhookEvent" ORDER BY 1, 2""")
    assert len(outcomes) == stored and len(duplicates) <= 3
    assert {status for _, _, status, _ in outcomes} <= {"processed", "ignored"}, outcomes
    by_type = {(provider, event_type): status for provider, event_type, status, _ in outcomes}
    assert by_type[("clerk", "user.deleted")] == "processed"
    assert by_type[("asaas", "TRANSFER_CREATED")] == "ignored"
    official_user = json.loads(created.read_text())["data"]["id"]
    user = rows(engine, """SELECT "isActive", email, name FROM "User" WHERE "clerkId" = :c""", c=official_user)
    assert user == [(False, None, None)]  # the official user.deleted deactivates and erases the official user
    assert_no_drift(engine, PAYER)
