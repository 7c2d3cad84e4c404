"""Users, plans, balances and the ledger invariant, written and read with plain SQL; waiting for events to settle."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, text

from models.base import new_id
from tests.support.processes import wait_for
from tests.support.servers import rows, scalar

FINAL = ("processed", "ignored", "failed", "dead")


def make_user(engine: Engine, opening: int = 40) -> tuple[str, str]:
    """A user whose balance the web app created (`opening` credits, no ledger row); returns (User.id, clerkId)."""
    user_id, clerk_id, _ = make_webapp_user(engine, opening)
    return user_id, clerk_id


def make_webapp_user(engine: Engine, credits: int) -> tuple[str, str, str]:
    """A user and balance the web app created by itself (no ledger row); returns (User.id, clerkId, balance id)."""
    user_id, clerk_id, balance_id = new_id(), f"user_{secrets.token_hex(8)}", new_id()
    with engine.begin() as connection:
        connection.execute(
            text("""INSERT INTO "User" (id, "clerkId", "updatedAt") VALUES (:id, :clerk, now())"""),
            {"id": user_id, "clerk": clerk_id},
        )
        connection.execute(
            text(
                """INSERT INTO "CreditBalance" (id, "userId", "clerkUserId", "creditsRemaining", "updatedAt")
                   VALUES (:id, :user, :clerk, :credits, now())"""
            ),
            {"id": balance_id, "user": user_id, "clerk": clerk_id, "credits": credits},
        )
    return user_id, clerk_id, balance_id


def make_plan(engine: Engine, credits: int = 500, *, plan_id: str | None = None, **columns: str) -> str:
    plan_id = plan_id or new_id()
    names = ", ".join(f'"{name}"' for name in columns)
    values = ", ".join(f":{name}" for name in columns)
    with engine.begin() as connection:
        connection.execute(
            text(
                f"""INSERT INTO "Plan" (id, name, credits, "updatedAt"{", " + names if columns else ""})
                    VALUES (:id, 'Pro', :credits, now(){", " + values if columns else ""})"""
            ),
            {"id": plan_id, "credits": credits, **columns},
        )
    return plan_id


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
