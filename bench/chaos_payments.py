"""Payments for the chaos run: seeded payers and a plan, Asaas payment events, Clerk trials, and their oracle.

Purchases, each for one seeded payer on the seeded plan (`plan_credits` credits):
- `plain`: card (`PAYMENT_CONFIRMED` + `PAYMENT_RECEIVED`) or Pix (`PAYMENT_RECEIVED`); some fully refunded
  (`PAYMENT_REFUNDED`), and for some of those the grant events are sent last (refund applied first);
- `partial`: `PAYMENT_RECEIVED` and a 25 % `PAYMENT_PARTIALLY_REFUNDED`, often the refund first;
- `installments`: a 2-installment card purchase (one `PAYMENT_CONFIRMED` per installment, same
  `installment`), the second installment sometimes refunded, sometimes first; the purchase total comes
  from a local Asaas API (`--` the run serves `GET /installments/{id}`);
- `chargeback`: `PAYMENT_RECEIVED`, `PAYMENT_CHARGEBACK_REQUESTED`, and for most the won dispute
  (`PAYMENT_AWAITING_CHARGEBACK_REVERSAL`), shuffled like everything else;
- `trial`: Clerk `subscriptionItem.active` + `freeTrialEnding` with `is_free_trial` (grants nothing).
The payers are seeded as the web app creates them (a `User` and a `CreditBalance` holding an opening
balance, no ledger row): a payment for a user not synced yet fails `unlinked_payment` by design.

The oracle uses only what the system guarantees whatever the order, from the unique accepted events: per
purchase, its net credits (plain: plan credits if paid and not refunded; partial: minus floor(25 %);
installments: once, minus floor(half) if the second is refunded; chargeback: plan credits unless charged
back and not won; trial: none), at most one plan grant row, and no grant key or ledger row that no
accepted event explains; per payer, balance = opening + expected and the ledger sum; the
`SubscriptionEvent` rows by status.
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

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
FIXTURE = FIXTURES / "asaas_payment_received.json"
TOKEN = "asaas-chaos-token-" + "7f3a9c21e4b05d68"
FORGER_TOKEN = "asaas-chaos-token-" + "0000000000000000"
GRANTING = ("PAYMENT_CONFIRMED", "PAYMENT_RECEIVED")
REFUND = "PAYMENT_REFUNDED"
PARTIAL = "PAYMENT_PARTIALLY_REFUNDED"
CHARGEBACK = "PAYMENT_CHARGEBACK_REQUESTED"
WON = "PAYMENT_AWAITING_CHARGEBACK_REVERSAL"
TRIAL_TYPES = ("subscriptionItem.active", "subscriptionItem.freeTrialEnding")
STATUS = {
    "PAYMENT_CONFIRMED": "active",
    "PAYMENT_RECEIVED": "active",
    REFUND: "refunded",
    PARTIAL: "partially_refunded",
    CHARGEBACK: "chargeback",
    WON: "chargeback_won",
    **dict.fromkeys(TRIAL_TYPES, "active"),
}
KINDS = {"plain": 0.6, "partial": 0.1, "installments": 0.15, "chargeback": 0.1, "trial": 0.05}


@dataclass
class Purchase:
    key: str  # the payment id, or the installment id of an installment purchase
    clerk_id: str
    kind: str
    card: bool = False
    payment_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # event id -> grant/refund/partial/refund2/cb/won/trial
    first: set[str] = field(default_factory=set)  # event ids whose purchase's grants are held back

    @property
    def grant_prefix(self) -> str:
        return f"asaas:installment:{self.key}" if self.kind == "installments" else f"asaas:payment:{self.key}"


@dataclass
class AsaasPayments:
    """Purchases of `payers` seeded users on one seeded plan, with the state each must end in."""

    payers: int
    plan_credits: int = 500
    refund_share: float = 0.15
    refund_first_share: float = 0.4
    card_share: float = 0.6
    won_share: float = 0.7
    provider: str = "asaas"
    plan_id: str = field(default_factory=lambda: f"plan_chaos_{secrets.token_hex(6)}")
    clerk_plan: str = field(default_factory=lambda: f"cplan_chaos_{secrets.token_hex(6)}")
    openings: dict[str, int] = field(default_factory=dict)  # clerk id -> opening balance
    user_ids: dict[str, str] = field(default_factory=dict)  # clerk id -> User.id
    purchases: dict[str, Purchase] = field(default_factory=dict)  # purchase key -> purchase
    by_payment: dict[str, str] = field(default_factory=dict)  # payment id -> purchase key
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id (Asaas id, svix id) -> event
    providers: dict[str, str] = field(default_factory=dict)  # event id -> provider
    installment_totals: dict[str, float] = field(default_factory=dict)  # for the run's Asaas API

    # -- generation
    def generate(self, count: int, rng: random.Random) -> list[tuple[str, str, str]]:
        """`count` unique events as (event id, body, provider)."""
        self._template = json.loads(FIXTURE.read_text())
        for index in range(self.payers):
            clerk_id = f"user_payer{index:04d}{secrets.token_hex(4)}"
            self.openings[clerk_id] = rng.randrange(0, 60)
            self.user_ids[clerk_id] = f"cpayer{index:04d}{secrets.token_hex(6)}"
        payers = list(self.openings)
        remaining = count
        while remaining > 0:
            kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
            purchase = Purchase(f"pay_chaos{len(self.purchases):06d}{secrets.token_hex(4)}", rng.choice(payers), kind)
            plan = self._plan(purchase, rng, remaining)
            if not plan:
                continue
            self.purchases[purchase.key] = purchase
            for role, event in plan:
                purchase.event_ids.append(event["id"])
                purchase.roles[event["id"]] = role
                self.events[event["id"]] = event
            remaining -= len(plan)
        return [(event_id, json.dumps(event), self.providers[event_id]) for event_id, event in self.events.items()]

    def _plan(self, purchase: Purchase, rng: random.Random, remaining: int) -> list[tuple[str, dict]]:
        """The (role, event) list of one purchase, or [] when it does not fit in `remaining`."""
        kind = purchase.kind
        if kind == "plain":
            purchase.card = rng.random() < self.card_share and remaining >= 2
            types = ["PAYMENT_CONFIRMED", "PAYMENT_RECEIVED"] if purchase.card else ["PAYMENT_RECEIVED"]
            refunded = rng.random() < self.refund_share and remaining > len(types)
            plan = [("grant", self._asaas(t, purchase, purchase.key)) for t in types]
            if refunded:
                plan.append(("refund", self._asaas(REFUND, purchase, purchase.key, refunds=100)))
                if rng.random() < self.refund_first_share:
                    purchase.first = {event["id"] for _, event in plan[:-1]}
            purchase.payment_ids = [purchase.key]
            return plan
        if kind == "partial" and remaining >= 2:
            purchase.payment_ids = [purchase.key]
            plan = [("grant", self._asaas("PAYMENT_RECEIVED", purchase, purchase.key)),
                    ("partial", self._asaas(PARTIAL, purchase, purchase.key, refunds=25))]  # fmt: skip
            if rng.random() < 0.5:
                purchase.first = {plan[0][1]["id"]}
            return plan
        if kind == "installments" and remaining >= 3:
            purchase.key = f"inst-chaos-{secrets.token_hex(8)}"
            purchase.payment_ids = [f"pay_inst{secrets.token_hex(6)}" for _ in range(2)]
            self.installment_totals[purchase.key] = 100.0
            plan = [(f"grant{n}", self._asaas("PAYMENT_CONFIRMED", purchase, pay, value=50, number=n))
                    for n, pay in enumerate(purchase.payment_ids, start=1)]  # fmt: skip
            if rng.random() < 0.6:
                plan.append(("refund2", self._asaas(REFUND, purchase, purchase.payment_ids[1], value=50, number=2)))
                if rng.random() < 0.4:
                    purchase.first = {event["id"] for _, event in plan[:-1]}
            return plan
        if kind == "chargeback" and remaining >= 3:
            purchase.payment_ids = [purchase.key]
            plan = [("grant", self._asaas("PAYMENT_RECEIVED", purchase, purchase.key)),
                    ("cb", self._asaas(CHARGEBACK, purchase, purchase.key))]  # fmt: skip
            if rng.random() < self.won_share:
                plan.append(("won", self._asaas(WON, purchase, purchase.key)))
            return plan
        if kind == "trial" and remaining >= 2:
            purchase.key = f"csub_item_chaos{secrets.token_hex(6)}"
            return [("trial", self._trial(event_type, purchase)) for event_type in TRIAL_TYPES]
        return []

    def _asaas(self, event_type: str, purchase: Purchase, payment_id: str, *, value: float = 100,
               number: int | None = None, refunds: float | None = None) -> dict[str, Any]:  # fmt: skip
        event = copy.deepcopy(self._template)
        event["id"] = f"evt_{secrets.token_hex(16)}&{secrets.randbelow(10**9)}"
        event["event"] = event_type
        event["dateCreated"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        event["payment"].update(
            id=payment_id,
            customer=f"cus_{purchase.clerk_id[-8:]}",
            externalReference=f"{purchase.clerk_id}|plan:{self.plan_id}",
            subscription=None,
            paymentLink=None,
            installment=purchase.key if purchase.kind == "installments" else None,
            installmentNumber=number,
            billingType="CREDIT_CARD" if purchase.card or number else "PIX",
            value=value,
            status=event_type.removeprefix("PAYMENT_"),
            refunds=[{"value": refunds, "status": "DONE"}] if refunds else None,
            chargeback=None,
        )
        self.by_payment[payment_id] = purchase.key
        self.providers[event["id"]] = "asaas"
        return event

    def _trial(self, event_type: str, purchase: Purchase) -> dict[str, Any]:
        event = json.loads((FIXTURES / "clerk_subscription_item_active.json").read_text())
        event["type"] = event_type
        event["timestamp"] = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        data = event["data"]
        data.update(id=purchase.key, status="active", is_free_trial=True, period_start=event["timestamp"])
        data["payer"]["user_id"] = purchase.clerk_id
        data["plan"]["id"] = data["plan_id"] = self.clerk_plan
        msg_id = f"msg_{secrets.token_hex(12)}"
        event["id"] = msg_id  # not read by the system: the key of `events` is the svix id
        self.providers[msg_id] = "clerk"
        return event

    def forgery(self, rng: random.Random) -> tuple[str, str, str]:
        """(event id, body, how): a grant for a real payer under a wrong or missing token."""
        purchase = Purchase(f"pay_forged{secrets.token_hex(6)}", rng.choice(list(self.openings)), "plain")
        event = self._asaas("PAYMENT_RECEIVED", purchase, purchase.key)
        del self.providers[event["id"]], self.by_payment[purchase.key]
        return event["id"], json.dumps(event), rng.choice(["wrong_token", "wrong_token", "missing_token"])

    def held_back(self) -> set[str]:
        """Event ids to send last: the grants of reversals that must arrive first."""
        return {event_id for purchase in self.purchases.values() for event_id in purchase.first}

    def headers(self, how: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if how != "missing_token":
            headers["asaas-access-token"] = FORGER_TOKEN if how == "wrong_token" else TOKEN
        return headers

    def seed(self, connection) -> None:
        """The plan and the payers, as the web app creates them (DB-API connection, committed by the caller)."""
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO "Plan" (id, name, credits, "clerkId", "updatedAt")
                   VALUES (%s, 'Chaos Pro', %s, %s, now())""",
                (self.plan_id, self.plan_credits, self.clerk_plan),
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
    def net_credits(self, purchase: Purchase, roles: set[str]) -> int:
        """What a purchase must be worth, given the roles of its accepted events (any order)."""
        credits = self.plan_credits
        if purchase.kind == "plain":
            return credits if "grant" in roles and "refund" not in roles else 0
        if purchase.kind == "partial":
            return credits - credits // 4 * ("partial" in roles) if "grant" in roles else 0
        if purchase.kind == "installments":
            return credits - credits // 2 * ("refund2" in roles) if roles & {"grant1", "grant2"} else 0
        if purchase.kind == "chargeback":
            return credits if "grant" in roles and ("cb" not in roles or "won" in roles) else 0
        return 0

    def expected(self, accepted: set[str]) -> dict[str, Any]:
        """From the unique accepted events: roles per purchase, credits and log rows per payer."""
        roles: dict[str, set[str]] = defaultdict(set)
        log: dict[str, Counter[str]] = defaultdict(Counter)
        for purchase in self.purchases.values():
            for event_id in purchase.event_ids:
                if event_id in accepted:
                    roles[purchase.key].add(purchase.roles[event_id])
                    event = self.events[event_id]
                    log[purchase.clerk_id][STATUS[event.get("event") or event["type"]]] += 1
        net = {key: self.net_credits(self.purchases[key], found) for key, found in roles.items()}
        credits: Counter[str] = Counter()
        for key, amount in net.items():
            credits[self.purchases[key].clerk_id] += amount
        return {"roles": roles, "net": net, "credits": credits, "log": log}

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
            """SELECT h.details->>'paymentId', h.details->>'kind', count(*), coalesce(-sum(h."creditsUsed"), 0)
                 FROM "UsageHistory" h JOIN "User" u ON u.id = h."userId"
                WHERE u."clerkId" = ANY(%s) GROUP BY 1, 2""",
            (payers,),
        )
        ledger: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        for payment_id, kind, rows, added in cursor.fetchall():
            key = self.by_payment.get(payment_id, f"?{payment_id}")
            before = ledger[key].get(kind, (0, 0))
            ledger[key][kind] = (before[0] + rows, before[1] + added)
        cursor.execute(
            """SELECT g."grantKey", g.amount FROM "CreditGrant" g JOIN "User" u ON u.id = g."userId"
                WHERE g."grantKey" LIKE 'asaas:%%' OR u."clerkId" = ANY(%s)""",
            (payers,),
        )
        grants = dict(cursor.fetchall())
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

        for key, net in want["net"].items():
            purchase = self.purchases[key]
            rows = ledger.pop(key, {})
            plan_grants, granted = rows.get("plan_grant", (0, 0))
            got = sum(added for _, added in rows.values())
            prefix = purchase.grant_prefix
            for grant_key in [k for k in grants if k == prefix or k.startswith(prefix + ":")]:
                del grants[grant_key]
            if plan_grants > 1 or granted > self.plan_credits:
                double += 1
                bad("double", key, f"{purchase.kind} plan_grant_rows={plan_grants} net={got} expected={net}")
            elif got != net:
                mismatches += 1
                bad(purchase.kind, key, f"net={got} expected={net} roles={sorted(want['roles'][key])} rows={rows}")
        for key in ledger:  # ledger rows no accepted purchase explains
            mismatches += 1
            bad("unexpected", str(key), "ledger rows for no accepted purchase")
        for key in grants:
            mismatches += 1
            bad("unexpected", key, "grant key for no accepted purchase")
        kinds = Counter(self.purchases[key].kind for key in want["net"])
        reversals = {"refund", "partial", "refund2", "cb"}
        figures = {
            "payment_events": len(self.events),
            "payments": len(want["net"]),
            **{f"purchases_{kind}": count for kind, count in sorted(kinds.items())},
            "refunded": sum(bool(roles & reversals) for roles in want["roles"].values()),
            "refunds_before_grant": before_grant,
            "plan_credits_granted": sum(want["credits"].values()),
        }
        return double, mismatches, examples, figures
