"""Reconciliation against real PostgreSQL: drift detection, --fix, opening balances, concurrency."""

from __future__ import annotations

import secrets
import threading

import psycopg2
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from ingest.broker.run_reports import last_reconcile
from ingest.config.settings import get_settings
from models.locks import try_job_lock
from tests.support.factories import make_pedro_user, make_spend, make_webapp_user
from workers.jobs import reconcile as service


def pedro_user(engine: Engine, credits: int = 100) -> tuple[str, str, str]:
    """A user opened by pedro-ingest (signup grant); returns (clerk id, user id, balance id)."""
    user_id, clerk_id, balance_id = make_pedro_user(engine, credits)
    return clerk_id, user_id, balance_id


def webapp_user(engine: Engine, credits: int = 100, spent: int = 0) -> tuple[str, str, str]:
    """A user and balance the web app created by itself (Prisma default), with `spent` recorded usage."""
    user_id, clerk_id, balance_id = make_webapp_user(engine, credits)
    if spent:
        make_spend(engine, user_id, spent)
    return clerk_id, user_id, balance_id


def libpq(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def deduct(url: str, balance_id: str, user_id: str, n: int, *, commit: bool = True):
    """The web app's pattern: decrement and UsageHistory row in one transaction (left open if not commit)."""
    if url.startswith("postgresql+psycopg2"):
        url = url.replace("postgresql+psycopg2", "postgresql", 1)
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    cur.execute(
        """UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" - %s, "updatedAt" = now()
           WHERE id = %s""",
        (n, balance_id),
    )
    cur.execute(
        """INSERT INTO "UsageHistory" (id, "userId", "creditBalanceId", "operationType", "creditsUsed")
           VALUES (%s, %s, %s, 'AI_TEXT_CHAT', %s)""",
        (f"h{secrets.token_hex(8)}", user_id, balance_id, n),
    )
    if commit:
        conn.commit()
        conn.close()
        return None
    return conn


def tamper(engine: Engine, balance_id: str, delta: int) -> None:
    """A change behind the ledger's back."""
    with engine.begin() as c:
        c.execute(
            text("""UPDATE "CreditBalance" SET "creditsRemaining" = "creditsRemaining" + :d WHERE id = :b"""),
            {"d": delta, "b": balance_id},
        )


def invariant_breaks(engine: Engine) -> list[tuple]:
    with engine.connect() as c:
        return c.execute(
            text(
                """SELECT b."clerkUserId", b."creditsRemaining", COALESCE(sum(-u."creditsUsed"), 0)
                     FROM "CreditBalance" b LEFT JOIN "UsageHistory" u ON u."creditBalanceId" = b.id
                    GROUP BY b.id HAVING b."creditsRemaining" <> COALESCE(sum(-u."creditsUsed"), 0)"""
            )
        ).all()


def adjustments(engine: Engine, kind: str) -> list[tuple]:
    with engine.connect() as c:
        return c.execute(
            text(
                """SELECT "creditBalanceId", -"creditsUsed" FROM "UsageHistory"
                    WHERE "operationType" = 'CREDIT_ADJUSTMENT' AND details->>'kind' = :k ORDER BY 1"""
            ),
            {"k": kind},
        ).all()


def last_run() -> dict[str, float]:
    settings = get_settings()
    return last_reconcile(settings.celery_broker_url, settings.celery_queue, 2)


def balance(engine: Engine, balance_id: str) -> int:
    with engine.connect() as c:
        return c.execute(
            text("""SELECT "creditsRemaining" FROM "CreditBalance" WHERE id = :b"""), {"b": balance_id}
        ).scalar_one()


def test_tampered_balance_is_detected_fixed_once_and_then_clean(engine: Engine) -> None:
    _, _, good = pedro_user(engine)
    _, _, bad = pedro_user(engine)
    tamper(engine, bad, +37)

    report = service.reconcile(fix=False, page_size=1)
    assert (report.scanned, report.drifted, report.fixed, report.drift_credits) == (2, 1, 0, 37)
    assert [(s.id, s.balance, s.ledger) for s in report.drifts] == [(bad, 137, 100)]
    assert adjustments(engine, "drift_correction") == []
    assert last_run()["drifted_balances"] == 1 and last_run()["drift_credits"] == 37

    fixed = service.reconcile(fix=True, page_size=1)
    assert (fixed.drifted, fixed.fixed) == (1, 1)
    assert adjustments(engine, "drift_correction") == [(bad, 37)]
    assert balance(engine, bad) == 137, "the balance is never overwritten; the ledger explains it"
    assert invariant_breaks(engine) == []

    again = service.reconcile(fix=True)
    assert (again.drifted, again.fixed, again.openings, again.consistent) == (0, 0, 0, 2)
    assert last_run()["drifted_balances"] == 0 and last_run()["drift_credits"] == 0
    assert len(adjustments(engine, "drift_correction")) == 1
    with engine.connect() as c:
        synced = c.execute(
            text("""SELECT count(*) FROM "CreditBalance" WHERE "lastSyncedAt" > now() - interval '1 minute'""")
        ).scalar()
    assert synced == 2
    assert good


def test_balances_that_predate_pedro_ingest_get_one_opening_row(engine: Engine) -> None:
    _, _, fresh = webapp_user(engine, credits=100)
    _, _, used = webapp_user(engine, credits=80, spent=30)  # the web app logged 30 of usage: ledger says -30
    assert len(invariant_breaks(engine)) == 2

    dry = service.reconcile(fix=False, dry_run=True)
    assert (dry.openings, dry.drifted) == (2, 0)
    assert adjustments(engine, "opening_balance") == []

    first = service.reconcile(fix=False)
    assert (first.openings, first.drifted, first.opening_credits) == (2, 0, 100 + 80)
    assert sorted(adjustments(engine, "opening_balance")) == sorted([(fresh, 100), (used, 80)])
    assert invariant_breaks(engine) == []

    tamper(engine, used, -5)  # from now on a difference is drift, not an opening
    second = service.reconcile(fix=False)
    assert (second.openings, second.drifted, second.drift_credits) == (0, 1, 5)


def test_user_option_reconciles_one_balance(engine: Engine) -> None:
    a, _, a_balance = pedro_user(engine)
    _, _, b_balance = pedro_user(engine)
    tamper(engine, a_balance, 3)
    tamper(engine, b_balance, 4)
    report = service.reconcile(fix=True, clerk_user_id=a)
    assert (report.scanned, report.fixed) == (1, 1)
    assert adjustments(engine, "drift_correction") == [(a_balance, 3)]


def test_deduction_held_open_during_reconcile_is_neither_drift_nor_lost(engine: Engine) -> None:
    """The web app's transaction is in flight while reconciliation reads and fixes the same balance."""
    _, user_id, balance_id = pedro_user(engine)
    tamper(engine, balance_id, 10)  # real drift of +10, to force the locking path on this balance
    url = libpq(engine)
    open_tx = deduct(url, balance_id, user_id, 7, commit=False)  # holds the balance's row lock
    timer = threading.Timer(0.5, open_tx.commit)  # commits while reconcile waits for the lock
    timer.start()
    try:
        report = service.reconcile(fix=True, lock_timeout_ms=30_000)
    finally:
        timer.join()
        open_tx.close()
    assert (report.drifted, report.fixed, report.busy) == (1, 1, 0)
    assert adjustments(engine, "drift_correction") == [(balance_id, 10)], "only the real drift, not the deduction"
    assert balance(engine, balance_id) == 100 + 10 - 7, "the deduction is not lost"
    assert invariant_breaks(engine) == []


def test_concurrent_deductions_during_reconcile_runs(engine: Engine) -> None:
    users = [pedro_user(engine, credits=10_000) for _ in range(20)]
    url = libpq(engine)
    stop = threading.Event()
    done: list[int] = []

    def web_app() -> None:
        n = 0
        while not stop.is_set() or n < 200:
            _, user_id, balance_id = users[n % len(users)]
            deduct(url, balance_id, user_id, 1 + n % 3)
            n += 1
        done.append(n)

    thread = threading.Thread(target=web_app)
    thread.start()
    reports = [service.reconcile(fix=True, page_size=3) for _ in range(15)]
    stop.set()
    thread.join()
    assert sum(r.drifted for r in reports) == 0
    assert sum(r.scanned for r in reports) == 15 * 20
    assert adjustments(engine, "drift_correction") == []
    assert invariant_breaks(engine) == []
    spent = sum(1 + n % 3 for n in range(done[0]))
    with engine.connect() as c:
        total = c.execute(text("""SELECT sum("creditsRemaining") FROM "CreditBalance" """)).scalar_one()
    assert total == 20 * 10_000 - spent


def test_two_runs_at_once_write_one_set_of_adjustments(engine: Engine) -> None:
    tampered = [pedro_user(engine)[2] for _ in range(60)]
    tampered += [webapp_user(engine)[2] for _ in range(60)]
    for balance_id in tampered[:60]:
        tamper(engine, balance_id, 2)
    barrier = threading.Barrier(2)
    reports: list[service.ReconcileReport] = []

    def run() -> None:
        barrier.wait()
        reports.append(service.reconcile(fix=True, page_size=7, use_lock=False))  # row locks alone must hold

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(adjustments(engine, "drift_correction")) == 60
    assert len(adjustments(engine, "opening_balance")) == 60
    assert sum(r.fixed for r in reports) == 60
    assert sum(r.openings for r in reports) == 60
    assert invariant_breaks(engine) == []


def test_a_second_run_skips_while_one_holds_the_lock(engine: Engine) -> None:
    _, _, balance_id = pedro_user(engine)
    tamper(engine, balance_id, 1)
    with try_job_lock(engine, service.JOB.name) as held:
        assert held
        skipped = service.reconcile(fix=True)
    assert skipped.status == "skipped_locked"
    assert adjustments(engine, "drift_correction") == []
    assert service.reconcile(fix=True).fixed == 1


@pytest.mark.parametrize("fix", [False, True])
def test_cli_prints_the_drift_table(engine: Engine, fix: bool) -> None:
    from ingest.cli import main

    clerk_id, _, balance_id = pedro_user(engine)
    tamper(engine, balance_id, -4)
    result = CliRunner().invoke(main, ["reconcile", *(["--fix"] if fix else [])])
    assert result.exit_code == (0 if fix else 1), result.output
    assert clerk_id in result.output
    assert "-4" in result.output
    assert len(adjustments(engine, "drift_correction")) == int(fix)


def test_a_cli_run_reaches_the_receivers_metrics_without_a_pid_label(
    engine: Engine, receiver_ops_url: str, service_env: dict[str, str]
) -> None:
    import subprocess

    import requests

    from tests.support.processes import cli_argv

    _, _, balance_id = pedro_user(engine)
    tamper(engine, balance_id, +9)
    run = subprocess.run(cli_argv("reconcile"), env=service_env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stdout + run.stderr  # drift left unfixed
    scraped = requests.get(f"{receiver_ops_url}/metrics", timeout=10).text
    assert "\npedro_ingest_balance_drift_balances 1.0\n" in scraped
    assert "\npedro_ingest_balance_drift_credits 9.0\n" in scraped
    assert 'pedro_ingest_scrape_error{source="reconcile"} 0.0' in scraped
    assert "pid=" not in scraped


def test_last_synced_at_says_when_the_balance_as_it_stands_was_found_equal_to_its_ledger(engine: Engine) -> None:
    """A steady run leaves a still-true stamp alone, restamps a balance that changed since, and never stamps
    a drifted one."""
    _, _, steady = pedro_user(engine)
    _, spender_user, spender = pedro_user(engine)
    _, _, drifted = pedro_user(engine)

    def stamps() -> dict[str, object]:
        with engine.connect() as c:
            return dict(c.execute(text('SELECT id, "lastSyncedAt" FROM "CreditBalance"')).all())

    service.reconcile(fix=False)
    first = stamps()
    deduct(libpq(engine), spender, spender_user, 7)  # the web app: balance and ledger row together
    with engine.begin() as c:  # a change behind the ledger's back
        c.execute(text("""UPDATE "CreditBalance" SET "creditsRemaining" = 1 WHERE id = :id"""), {"id": drifted})
    report = service.reconcile(fix=False)
    second = stamps()
    assert (report.scanned, report.consistent, report.drifted, report.stamped) == (3, 2, 1, 1)
    assert second[steady] == first[steady]  # nothing changed: the stamp is still true
    assert second[spender] > first[spender]  # changed since its stamp, found consistent again
    assert second[drifted] == first[drifted]  # never stamped while it disagrees with its ledger
