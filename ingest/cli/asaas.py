"""CLI for the Asaas API jobs: `resync-payments` and `asaas-queue`, the same services as their beat tasks."""

from __future__ import annotations

import datetime as dt
import sys

import click

from ingest.cli.support import fail, settings_or_exit

OK = ("done", "skipped_no_key")


@click.command("resync-payments")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="São Paulo date to cover from (YYYY-MM-DD).")
@click.option("--dry-run", is_flag=True, help="Read the API and count what would be applied; write nothing.")
def resync_payments(since: dt.datetime | None, dry_run: bool) -> None:
    """Apply every Asaas payment's current state through the webhook handlers (grants and reversals once)."""
    from workers.jobs.payment_sync import resync_payments as run

    settings_or_exit()
    report = run(since=since.date() if since else None, dry_run=dry_run)
    if report.status == "skipped_locked":
        fail("another payment backfill is running (lock held); it will cover --since too", code=3)
    verb = "would store" if dry_run else "stored"
    resumed = f" (resumed at {report.resumed_at})" if report.resumed_at else ""
    click.echo(
        f"{report.status}: since {report.since or '-'}{resumed}, pages {report.pages}, payments seen {report.seen}, "
        f"{verb} {report.stored}, applied {report.applied}, already applied {report.already_applied}, "
        f"failed {report.failed}, API requests {report.requests}"
    )
    if report.status not in OK or report.failed:
        sys.exit(1)


@click.command("asaas-queue")
def asaas_queue() -> None:
    """Read our Asaas webhook's queue state now (and resume it when ASAAS_RESUME_QUEUE=true and ready)."""
    from workers.jobs.asaas_queue_watch import watch_asaas_queue as run

    settings_or_exit()
    report = run()
    click.echo(
        f"{report.status}: webhook {report.webhook_id or '-'}, interrupted {report.interrupted}, "
        f"penalized requests {report.penalized}"
    )
    if report.backfill is not None:
        backfill = report.backfill
        click.echo(f"backfill {backfill.status}: applied {backfill.applied} since {backfill.since}")
    if report.status in ("unauthorized", "failed", "not_found", "interrupted"):
        sys.exit(1)


ASAAS_COMMANDS = (resync_payments, asaas_queue)
