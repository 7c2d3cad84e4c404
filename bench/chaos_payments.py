"""Asaas payments for the chaos run: seeded payers and a plan, payment events, and their oracle.

Card payments send `PAYMENT_CONFIRMED` and `PAYMENT_RECEIVED`, Pix only `PAYMENT_RECEIVED`; some payments
are refunded (`PAYMENT_REFUNDED`), and for some of those the harness sends the grant events last, so the
refund is applied before its grant. The payers are seeded as the web app creates them (a `User` and a
`CreditBalance` holding an opening balance, no ledger row): an Asaas payment for a user not synced yet
fails `unlinked_payment` by design, which would make the expected state depend on arrival order.

The oracle only uses what the system guarantees whatever the order: per payment, credits granted once
when paid and no net credits when refunded (before or after the grant); per payer, the balance, the
ledger sum and the `SubscriptionEvent` rows (one per unique event, by status).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "asaas_payment_received.json"
TOKEN = "asaas-chaos-token-" + "7f3a9c21e4b05d68"
FORGER_TOKEN = "asaas-chaos-token-" + "0000000000000000"
GRANTING = ("PAYMENT_CONFIRMED", "PAYMENT_RECEIVED")
REFUND = "PAYMENT_REFUNDED"
STATUS = {"PAYMENT_CONFIRMED": "active", "PAYMENT_RECEIVED": "active", REFUND: "refunded"}


@dataclass
class Payment:
    payment_id: str
    clerk_id: str
    card: bool
    event_ids: list[str] = field(default_factory=list)
    refunded: bool = False
    refund_first: bool = False  # the harness sends its grant events after everything else


@dataclass
class AsaasPayments:
    """Payments of `payers` seeded users on one seeded plan, with the state each must end in."""

    payers: int
    plan_credits: int = 500
    refund_share: float = 0.15
    refund_first_share: float = 0.4
    card_share: float = 0.6
    provider: str = "asaas"
    plan_id: str = field(default_factory=lambda: f"plan_chaos_{secrets.token_hex(6)}")
    openings: dict[str, int] = field(default_factory=dict)  # clerk id -> opening balance
    user_ids: dict[str, str] = field(default_factory=dict)  # clerk id -> User.id
    payments: dict[str, Payment] = field(default_factory=dict)  # payment id -> payment
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # Asaas event id -> event

    # -- generation
    def generate(self, count: int, rng: random.Random) -> list[tuple[str, str]]:
        """`count` unique events as (event id, body); refunded payments always have their grant events too."""
        template = json.loads(FIXTURE.read_text())
        for index in range(self.payers):
            clerk_id = f"user_payer{index:04d}{secrets.token_hex(4)}"
            self.openings[clerk_id] = rng.randrange(0, 60)
            self.user_ids[clerk_id] = f"cpayer{index:04d}{secrets.token_hex(6)}"
        payers = list(self.openings)
        bodies = []
        remaining = count
        while remaining > 0:
            card = rng.random() < self.card_share and remaining >= 2
            types = ["PAYMENT_CONFIRMED", "PAYMENT_RECEIVED"] if card else ["PAYMENT_RECEIVED"]
            refunded = rng.random() < self.refund_share and remaining > len(types)
            payment = Payment(f"pay_chaos{len(self.payments):06d}{secrets.token_hex(4)}", rng.choice(payers), card)
            payment.refunded = refunded
            payment.refund_first = refunded and rng.random() < self.refund_first_share
            self.payments[payment.payment_id] = payment
            for event_type in types + ([REFUND] if refunded else []):
                event = self.event(template, event_type, payment)
                payment.event_ids.append(event["id"])
                self.events[event["id"]] = event
                bodies.append((event["id"], json.dumps(event)))
            remaining -= len(types) + refunded
        return bodies

    def event(self, template: dict, event_type: str, payment: Payment) -> dict[str, Any]:
        event = copy.deepcopy(template)
        event["id"] = f"evt_{secrets.token_hex(16)}&{secrets.randbelow(10**9)}"
        event["event"] = event_type
        event["dateCreated"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        event["payment"].update(
            id=payment.payment_id,
            customer=f"cus_{payment.clerk_id[-8:]}",
            externalReference=f"{payment.clerk_id}|plan:{self.plan_id}",
            subscription=None,
            paymentLink=None,
            installment=None,
            billingType="CREDIT_CARD" if payment.card else "PIX",
            value=100,
            status=event_type.removeprefix("PAYMENT_"),
            refunds=[{"value": 100, "status": "DONE"}] if event_type == REFUND else None,
            chargeback=None,
        )
        return event

    def forgery(self, rng: random.Random) -> tuple[str, str, str]:
        """(event id, body, how): a grant for a real payer under a wrong or missing token."""
        payment = Payment(f"pay_forged{secrets.token_hex(6)}", rng.choice(list(self.openings)), card=False)
        event = self.event(json.loads(FIXTURE.read_text()), "PAYMENT_RECEIVED", payment)
        return event["id"], json.dumps(event), rng.choice(["wrong_token", "wrong_token", "missing_token"])

    def held_back(self) -> set[str]:
        """Event ids to send last: the grants of refunds that must arrive first."""
        return {
            event_id
            for payment in self.payments.values()
            if payment.refund_first
            for event_id in payment.event_ids
            if self.events[event_id]["event"] in GRANTING
        }

    def headers(self, how: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if how != "missing_token":
            headers["asaas-access-token"] = FORGER_TOKEN if how == "wrong_token" else TOKEN
        return headers

    def seed(self, connection) -> None:
        """The plan and the payers, as the web app creates them (DB-API connection, committed by the caller)."""
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO "Plan" (id, name, credits, "updatedAt") VALUES (%s, 'Chaos Pro', %s, now())""",
                (self.plan_id, self.plan_credits),
            )
            for clerk_id, opening in self.openings.items():
                user_id = self.user_ids[clerk_id]
                cursor.execute(
                    """INSERT INTO "User" (id, "clerkId", "updatedAt") VALUES (%s, %s, now())""", (user_id, clerk_id)
                )
                cursor.execute(
                    """INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
                       VALUES (%s, %s, %s, %s, now())""",
                    (f"cbal{user_id}", user_id, clerk_id, opening),
                )

    # -- the oracle
    def expected(self, accepted: set[str]) -> dict[str, Any]:
        """From the unique accepted events: which payments are paid / refunded, credits and log rows per payer."""
        paid, refunded = set(), set()
        log: dict[str, Counter[str]] = defaultdict(Counter)
        for event_id in accepted & self.events.keys():
            event = self.events[event_id]
            payment = self.payments[event["payment"]["id"]]
            (refunded if event["event"] == REFUND else paid).add(payment.payment_id)
            log[payment.clerk_id][STATUS[event["event"]]] += 1
        credits: Counter[str] = Counter()
        for payment_id in paid - refunded:
            credits[self.payments[payment_id].clerk_id] += self.plan_credits
        return {"paid": paid, "refunded": refunded, "credits": credits, "log": log}

    def check(self, cursor, accepted: set[str]) -> tuple[int, int, list[str], dict[str, int]]:
        """(double_applied, mismatches, examples, figures) for the payers' balances, ledger, grants and log."""
        want = self.expected(accepted)
        payers = list(self.openings)
        cursor.execute(
            """SELECT u."clerkId", b."creditsRemaining",
                      (SELECT coalesce(-sum(h."creditsUsed"), 0) FROM "UsageHistory" h WHERE h."userId" = u.id)
                 FROM "User" u LEFT JOIN "CreditBalance" b ON b."userId" = u.id WHERE u."clerkId" = ANY(%s)""",
            (payers,),
        )
        balances = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute(
            """SELECT h.details->>'paymentId', h."operationType"::text, count(*), coalesce(-sum(h."creditsUsed"), 0)
                 FROM "UsageHistory" h JOIN "User" u ON u.id = h."userId"
                WHERE u."clerkId" = ANY(%s) GROUP BY 1, 2""",
            (payers,),
        )
        ledger: dict[str | None, dict[str, tuple[int, int]]] = defaultdict(dict)
        for payment_id, operation, rows, added in cursor.fetchall():
            ledger[payment_id][operation] = (rows, added)
        cursor.execute(
            """SELECT g."grantKey", g.amount, u."clerkId" FROM "CreditGrant" g JOIN "User" u ON u.id = g."userId"
                WHERE g."grantKey" LIKE 'asaas:payment:%%' OR u."clerkId" = ANY(%s)""",
            (payers,),
        )
        grants = {key: (amount, clerk_id) for key, amount, clerk_id in cursor.fetchall()}
        cursor.execute(
            """SELECT "clerkUserId", status, count(*), count(*) FILTER (WHERE "planKey" IS DISTINCT FROM %s)
                 FROM "SubscriptionEvent" GROUP BY 1, 2""",
            (self.plan_id,),
        )
        log: dict[str, Counter[str]] = defaultdict(Counter)
        wrong_plan = 0
        for clerk_id, status, count, other_plan in cursor.fetchall():
            log[clerk_id][status] += count
            wrong_plan += other_plan
        cursor.execute("""SELECT count(*) FROM "SubscriptionEvent" WHERE metadata->>'beforeGrant' = 'true'""")
        before_grant = cursor.fetchone()[0]

        double, mismatches, examples = 0, 0, []

        def bad(kind: str, what: str, detail: str) -> None:
            if len(examples) < 10:
                examples.append(f"{kind} {what}: {detail}")

        for clerk_id in payers:
            balance, ledger_sum = balances.get(clerk_id, (None, None))
            expected = want["credits"][clerk_id]
            if balance is None:
                mismatches += 1
                bad("payer", clerk_id, "user or balance missing")
            elif balance > self.openings[clerk_id] + expected or ledger_sum > expected:
                double += 1
                bad("double", clerk_id, f"balance={balance} ledger_sum={ledger_sum} expected=+{expected}")
            elif balance != self.openings[clerk_id] + expected or ledger_sum != expected:
                mismatches += 1
                bad("credits", clerk_id, f"balance={balance} ledger_sum={ledger_sum} expected=+{expected}")
            if log.pop(clerk_id, Counter()) != want["log"].get(clerk_id, Counter()):
                mismatches += 1
                bad("log", clerk_id, "SubscriptionEvent rows by status differ from the unique events")
        for clerk_id in log:  # log rows for somebody who is not a payer (a forgery got through?)
            mismatches += 1
            bad("log", clerk_id, "SubscriptionEvent rows for no payer")
        if wrong_plan:
            mismatches += 1
            bad("log", "planKey", f"{wrong_plan} rows without the seeded plan")

        for payment_id in want["paid"] | want["refunded"]:
            rows = ledger.pop(payment_id, {})
            granted, grant_sum = rows.get("CREDIT_GRANT", (0, 0))
            reversed_, reversal_sum = rows.get("CREDIT_REVERSAL", (0, 0))
            key = f"asaas:payment:{payment_id}"
            grant = grants.pop(key, (None, None))[0]
            reversal = grants.pop(key + ":reversal", (None, None))[0]
            if granted > 1 or reversed_ > 1 or grant_sum > self.plan_credits:
                double += 1
                bad("double", payment_id, f"grant_rows={granted} reversal_rows={reversed_} granted={grant_sum}")
            elif payment_id in want["refunded"]:
                # Refund after the grant: +P then -P; refund first: the grant key claimed at 0, no ledger rows.
                if (granted, reversed_) not in ((0, 0), (1, 1)) or grant_sum + reversal_sum != 0 or grant is None \
                        or reversal is None or grant + reversal != 0:  # fmt: skip
                    mismatches += 1
                    net = grant_sum + reversal_sum
                    bad("refund", payment_id, f"rows={granted}/{reversed_} net={net} keys={grant}/{reversal}")
            elif (granted, reversed_, grant_sum, grant, reversal) != (1, 0, self.plan_credits, self.plan_credits, None):
                mismatches += 1
                bad("grant", payment_id, f"rows={granted}/{reversed_} granted={grant_sum} keys={grant}/{reversal}")
        for payment_id in ledger:  # ledger rows no accepted payment explains
            mismatches += 1
            bad("unexpected", str(payment_id), "ledger rows for no accepted payment")
        for key in grants:
            mismatches += 1
            bad("unexpected", key, "grant key for no accepted payment")
        figures = {
            "payment_events": len(self.events),
            "payments": len(want["paid"] | want["refunded"]),
            "refunded": len(want["refunded"]),
            "refunds_before_grant": before_grant,
            "plan_credits_granted": sum(want["credits"].values()),
        }
        return double, mismatches, examples, figures
