"""Chargebacks of a charge: reversed like a refund, given back once when the merchant wins the dispute.

Keys, under the charge's reversal prefix (`asaas:payment:<id>:reversal`, or for one installment of a
purchase `asaas:installment:<id>:reversal:<payment id>:`): the chargeback `…:chargeback`, the won dispute
`…:chargeback:won`. A won dispute gives back what the chargeback really removed, once, and only when no
refund of the charge is on record (a refund is never undone). Its key's amount cancels the chargeback's,
so a later refund reverses the whole share again. The chargeback's debt is cancelled, and what the user had
already repaid of it is given back with the rest. A dispute won before its chargeback is processed leaves
the won key as a marker and the chargeback then removes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.ledger import lots
from models.ledger.balances import ensure_balance, write_ledger_row
from models.ledger.facts import CreditFact
from models.ledger.grants import (
    SET_AMOUNT_SQL,
    CreditChange,
    claim_key,
    lock_grant,
    record_without_effect,
    reverse_once,
)
from models.prisma import OperationType

CHARGEBACK = ":chargeback"
WON = ":won"
_KEYS = text("""SELECT id, "grantKey", amount FROM "CreditGrant" WHERE left("grantKey", :n) = :prefix""")
_GRANTED = text("""SELECT 1 FROM "CreditGrant" WHERE "grantKey" = :key""")
# pedro-ingest's own reversal rows only: a deduction's `details` (the web app's JSON) may say anything.
_REMOVED_BY_KEY = text(
    """SELECT COALESCE(SUM("creditsUsed"), 0) FROM "UsageHistory"
        WHERE "userId" = :user_id AND "operationType" = 'CREDIT_REVERSAL' AND details->>'reversalKey' = :key"""
)


@dataclass(frozen=True)
class WonResult:
    applied: bool
    added: int = 0
    note: str = ""  # `before_chargeback`, `refund_on_record`, `pending_cancelled`, `given_back`


def chargeback_key(charge_prefix: str) -> str:
    return charge_prefix.rstrip(":") + CHARGEBACK


def reverse_chargeback(
    session: Session,
    fact: CreditFact,
    *,
    grant_key: str,
    charge_prefix: str,
    fraction: Fraction,
    pending_base: int,
    terms: lots.LotTerms | None = None,
) -> CreditChange:
    """Reverse the charge's share once, unless its dispute was already won (then: a no-op on record)."""
    lock_grant(session, grant_key)
    key = chargeback_key(charge_prefix)
    if session.execute(_GRANTED, {"key": key + WON}).first() is not None:
        return record_without_effect(session, fact, key=key)
    return reverse_once(
        session,
        fact,
        grant_key=grant_key,
        reversal_key=key,
        fraction=fraction,
        charge_prefix=charge_prefix,
        pending_base=pending_base,
        terms=terms,
    )


def chargeback_won(
    session: Session,
    fact: CreditFact,
    *,
    grant_key: str,
    charge_prefix: str,
) -> WonResult:
    """Give back, once, what the charge's chargeback removed (see the module docstring for the rules)."""
    lock_grant(session, grant_key)
    ensure_balance(session, user_id=fact.user_id, clerk_id=fact.clerk_id)
    key = chargeback_key(charge_prefix)
    won_id = claim_key(session, key + WON, fact.user_id, None, 0, fact.source_event_id)
    if won_id is None:
        return WonResult(applied=False)
    found = session.execute(_KEYS, {"n": len(charge_prefix), "prefix": charge_prefix}).all()
    chargeback = next((row for row in found if row.grantKey == key), None)
    if chargeback is None:
        return WonResult(applied=True, note="before_chargeback")
    if any(row.grantKey not in (key, key + WON) for row in found):
        return WonResult(applied=True, note="refund_on_record")
    if session.execute(_GRANTED, {"key": grant_key}).first() is None:
        session.execute(SET_AMOUNT_SQL, {"id": chargeback.id, "amount": 0})  # still pending: cancel it
        return WonResult(applied=True, note="pending_cancelled")
    session.execute(SET_AMOUNT_SQL, {"id": won_id, "amount": -chargeback.amount})
    removed = session.execute(_REMOVED_BY_KEY, {"user_id": fact.user_id, "key": key}).scalar_one()
    removed += lots.cancel_debt(session, user_id=fact.user_id, fact_key=key)  # its debt: the repaid part comes back
    if removed <= 0:
        return WonResult(applied=True, note="given_back")
    balance_id = lots.give_back(session, user_id=fact.user_id, amount=removed, fact_key=key, grant_key=grant_key)
    write_ledger_row(
        session,
        user_id=fact.user_id,
        balance_id=balance_id,
        operation=OperationType.CREDIT_GRANT,
        added=removed,
        details={**fact.details, "grantKey": grant_key, "wonKey": key + WON, "restored": removed},
    )
    return WonResult(applied=True, added=removed, note="given_back")
