"""An installment purchase's amounts, kept as `CreditGrant` rows beside its grant (cents, not credits).

The purchase total read once from the provider is `<grant key>:total`; each installment seen is
`<grant key>:part:<payment id>`. Claimed with the grant's own keyed `ON CONFLICT`, so a redelivery records
nothing twice; they never touch a balance.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from models.ledger.grants import claim_key

_TOTAL = text("""SELECT amount FROM "CreditGrant" WHERE "grantKey" = :key""")
_PARTS = text("""SELECT COALESCE(SUM(amount), 0) FROM "CreditGrant" WHERE left("grantKey", :n) = :prefix""")


def _total_key(grant_key: str) -> str:
    return f"{grant_key}:total"


def recorded_total(session: Session, grant_key: str) -> int | None:
    """The purchase total on record (cents), or None when it was never read."""
    return session.execute(_TOTAL, {"key": _total_key(grant_key)}).scalar_one_or_none()


def record_total(session: Session, grant_key: str, user_id: str, cents: int) -> None:
    claim_key(session, _total_key(grant_key), user_id, None, cents, None)


def record_part(session: Session, grant_key: str, payment_id: str, user_id: str, cents: int) -> int:
    """Record one installment's value (once) and return the sum of every installment seen so far (cents)."""
    prefix = f"{grant_key}:part:"
    claim_key(session, prefix + payment_id, user_id, None, cents, None)
    return int(session.execute(_PARTS, {"n": len(prefix), "prefix": prefix}).scalar_one())
