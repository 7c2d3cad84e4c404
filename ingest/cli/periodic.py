"""CLI for the periodic jobs: `reconcile`, `expire-credits`, `resync-users`, `prune-payloads` and `beat`.

Each command runs the same service as its beat task, in the foreground, under the same lock.
"""

from __future__ import annotations

import os
import sys

import click

from ingest.cli.support import fail, settings_or_exit


@click.command()
@click.option("--fix", is_flag=True, help="Book each drift as one CREDIT_ADJUSTMENT ledger row.")
@click.option("--user", "clerk_user_id", metavar="CLERK_ID", help="Only this Clerk user's balance.")
@click.option("--dry-run", is_flag=True, help="Write nothing (not even opening balances or lastSyncedAt).")
@click.option("--page-size", type=click.IntRange(1, 10_000), help="Balances per page (RECONCILE_PAGE_SIZE).")
def reconcile(fix: bool, clerk_user_id: str | None, dry_run: bool, page_size: int | None) -> None:
    """Compare every credit balance with its ledger; exit 1 when drift is left unfixed."""
    from workers.jobs.reconcile import reconcile as run

    settings = settings_or_exit()
    if fix and dry_run:
        fail("--fix and --dry-run exclude each other")
    report = run(
        fix=fix, clerk_user_id=clerk_user_id, dry_run=dry_run, page_size=page_size or settings.reconcile_page_size
    )
    if report.status == "skipped_locked":
        fail("another reconciliation is running (lock held); try again later", code=3)
    if report.drifts:
        click.echo(f"{'clerk user':<36} {'balance':>10} {'ledger':>10} {'drift':>8}  action")
        for state in report.drifts:
            action = "fixed" if fix else ("would fix" if dry_run else "reported")
            click.echo(f"{state.clerk_user_id:<36} {state.balance:>10} {state.ledger:>10} {state.drift:>8}  {action}")
    if report.drifted > len(report.drifts):
        click.echo(f"… and {report.drifted - len(report.drifts)} more (see the log)")
    click.echo(
        f"scanned {report.scanned}, consistent {report.consistent}, opening balances "
        f"{'to record' if dry_run else 'recorded'} {report.openings}, drifted {report.drifted}, fixed {report.fixed}, "
        f"busy {report.busy} in {report.seconds}s"
    )
    if report.drifted > report.fixed or report.busy:
        sys.exit(1)


@click.command("expire-credits")
def expire_credits() -> None:
    """Expire the credit lots that are due, once (what the beat job does every CREDIT_EXPIRY_INTERVAL)."""
    from workers.jobs.expire_credits import expire_credits as run

    settings_or_exit()
    report = run()
    if report.status == "skipped_locked":
        fail("another credit expiry is running (lock held); try again later", code=3)
    click.echo(f"{report.status}: lots expired {report.lots}, credits expired {report.credits}")


@click.command("resync-users")
def resync_users() -> None:
    """Apply every user from the Clerk Backend API through the webhook upsert path (version rules apply)."""
    from workers.jobs.resync import resync_users as run

    settings_or_exit()
    report = run()
    click.echo(
        f"{report.status}: pages {report.pages}, users seen {report.seen}, applied {report.applied}, "
        f"stale (newer state kept) {report.stale}, invalid {report.invalid}"
    )
    if report.status not in ("done", "skipped_no_key"):
        sys.exit(1)


@click.command("prune-payloads")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), help="Age (PAYLOAD_RETENTION_DAYS).")
def prune_payloads(days: float | None) -> None:
    """Drop stored payloads of processed/ignored events older than the retention age (rows are kept)."""
    from workers.jobs.retention import prune_payloads as run

    settings = settings_or_exit()
    report = run(days=days or settings.payload_retention_days)
    click.echo(f"{report.status}: payloads dropped {report.pruned}")


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(celery_args: tuple[str, ...]) -> None:
    """Run Celery beat (the periodic schedule); extra arguments go to `celery beat`. Run exactly one."""
    settings = settings_or_exit(publishes=True)
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat"]
    if not any(arg.startswith(("-l", "--loglevel")) for arg in celery_args):
        argv += ["--loglevel", settings.log_level]
    os.execv(sys.executable, argv + list(celery_args))


PERIODIC_COMMANDS = (reconcile, expire_credits, resync_users, prune_payloads, beat)
