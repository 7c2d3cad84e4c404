"""Who a credit fact belongs to and where it came from: the part every ledger call shares.

A grant, a reversal, a restore or a won dispute is always for one user (its `User.id` and Clerk id, for the
balance row), caused by one inbox event (`sourceEventId` on its `CreditGrant` rows) and described by the same
`details` on its ledger row; only the keys and amounts differ from call to call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class CreditFact:
    user_id: str
    clerk_id: str
    source_event_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def described(self, **details: Any) -> CreditFact:
        """The same fact with more (or other) `details` on its ledger rows."""
        return replace(self, details={**self.details, **details})
