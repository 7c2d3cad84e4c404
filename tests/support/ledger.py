"""Balances and the ledger invariant, read with plain SQL; waiting for events to settle. (The users and plans
the tests start from are made in `tests.support.factories`; `make_user` and `make_plan` are imported here too.)"""

from __future__ import annotations

from sqlalchemy import Engine

from tests.support.factories import make_plan as make_plan  # re-exported: tests import them from here too
from tests.support.factories import make_user as make_user
from tests.support.factories import make_webapp_user as make_webapp_user
from tests.support.processes import wait_for
from tests.support.servers import rows, scalar

FINAL = ("processed", "ignored", "failed", "dead")


def balance(engine: Engine, user_id: str) -> int:
    return scalar(engine, 'SELECT "creditsRemaining" FROM "CreditBalance" WHERE "userId" = :u', u=user_id)


def ledger_sum(engine: Engine, user_id: str) -> int:
    return scalar(engine, 'SELECT COALESCE(-SUM("creditsUsed"), 0) FROM "UsageHistory" WHERE "userId" = :u', u=user_id)


def live_lots(engine: Engine, user_id: str) -> int:
    return scalar(
        engine,
        """SELECT COALESCE(SUM(remaining), 0) FROM "CreditLot"
            WHERE "userId" = :u AND "expiredAt" IS NULL AND "voidedAt" IS NULL""",
        u=user_id,
    )


def assert_balance_matches_ledger(engine: Engine, user_id: str, opening: int) -> None:
    """Balance == ledger (plus an opening balance the test seeded), and == Σ live lots once pedro-ingest wrote it."""
    assert balance(engine, user_id) == opening + ledger_sum(engine, user_id)
    if scalar(engine, 'SELECT count(*) FROM "CreditLot" WHERE "userId" = :u', u=user_id):
        assert live_lots(engine, user_id) == max(balance(engine, user_id), 0), "balance != Σ live lots"
    assert scalar(engine, 'SELECT count(*) FROM "CreditLot" WHERE "userId" = :u AND remaining < 0', u=user_id) == 0


def grant_rows(engine: Engine, prefix: str) -> list[tuple]:
    return rows(
        engine,
        """SELECT "grantKey", amount FROM "CreditGrant" WHERE "grantKey" LIKE :p ORDER BY "createdAt", "grantKey" """,
        p=prefix + "%",
    )


def settle(engine: Engine, count: int, timeout: float = 30) -> None:
    """Wait until `count` inbox rows are in a final or failed state."""
    wait_for(
        lambda: scalar(engine, 'SELECT count(*) FROM "WebhookEvent" WHERE status = ANY(:s)', s=list(FINAL)) >= count,
        timeout=timeout,
        what=f"{count} events settled",
    )


def assert_no_drift(engine: Engine, clerk_id: str) -> None:
    """Reconciliation (read only) finds this user's balance equal to its ledger."""
    from workers.jobs.reconcile import reconcile

    report = reconcile(fix=False, clerk_user_id=clerk_id, dry_run=True, engine=engine, use_lock=False)
    assert report.drifted == 0 and report.lots_settled <= report.openings, report.summary()  # a seeded balance


def event_status(engine: Engine, event_id: str) -> tuple[str, str | None, str | None]:
    """(status, lastError, lastErrorDetail) of the row with this provider event id."""
    return tuple(
        rows(
            engine,
            """SELECT status, "lastError", "lastErrorDetail" FROM "WebhookEvent" WHERE "eventId" = :e""",
            e=event_id,
        )[0]
    )
