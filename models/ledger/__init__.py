"""The credit ledger: every balance change goes through here, with its `UsageHistory` row.

Invariant kept by this package: `CreditBalance.creditsRemaining` == sum of `-creditsUsed` over the
balance's ledger rows (plus an opening balance for balances that predate pedro-ingest). Balance changes
are atomic SQL, never read-modify-write; each credit fact carries a unique `CreditGrant.grantKey`.

- `facts`: who a credit fact belongs to (user, source event, ledger details), shared by every call below;
- `balances`: the atomic balance statements and the ledger row;
- `grants`: keyed credit facts (signup, plan grants) and their reversals;
- `restores`: deletions and restores of a charge;
- `chargebacks`: chargebacks and won disputes;
- `deductions`: the web app's deductions and refunds (database functions), for Python callers.
"""

from models.ledger.balances import ensure_balance, write_ledger_row
from models.ledger.chargebacks import WonResult, chargeback_key, chargeback_won, reverse_chargeback
from models.ledger.deductions import DeductionResult, deduct_credits, refund_credits
from models.ledger.facts import CreditFact
from models.ledger.grants import (
    REVERSAL_SUFFIX,
    CreditChange,
    grant_once,
    is_claimed,
    open_balance_with_signup_grant,
    reverse_once,
)
from models.ledger.lots import LotTerms, Period
from models.ledger.restores import RestoreResult, deletion_key, restore_key, restore_once, reverse_deletion_once

__all__ = [
    "REVERSAL_SUFFIX",
    "CreditChange",
    "CreditFact",
    "DeductionResult",
    "LotTerms",
    "Period",
    "RestoreResult",
    "WonResult",
    "chargeback_key",
    "chargeback_won",
    "deduct_credits",
    "deletion_key",
    "ensure_balance",
    "grant_once",
    "is_claimed",
    "open_balance_with_signup_grant",
    "refund_credits",
    "restore_key",
    "restore_once",
    "reverse_chargeback",
    "reverse_deletion_once",
    "reverse_once",
    "write_ledger_row",
]
