"""`pedro-ingest user REF`: one user's state, ledger and inbox events, to answer "why no credits?".

The data comes from `models.reports.user_report`; this module only formats it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ingest.cli.support import fail, settings_or_exit

if TYPE_CHECKING:
    from models.ledger.pricing import LotView
    from models.reports.user_report import EventOutcome, InboxEntry, LedgerEntry, UserReport


def format_lot(lot: LotView) -> str:
    """`plan 38 (expires 2026-01-31)`, `purchase 2000`, `debt -450`."""
    expiry = f" (expires {lot.expires_at:%Y-%m-%d %H:%M})" if lot.expires_at else ""
    return f"{lot.category} {lot.remaining}{expiry}"


def format_event(event: InboxEntry) -> list[str]:
    """An inbox event in one line, plus its reason and the replay command when it did not apply."""
    line = (
        f"  {event.received_at:%Y-%m-%d %H:%M:%S}  {event.provider:<6} {event.event_type:<28} {event.status:<9} "
        f"attempts={event.attempts}  {event.event_id}  (row {event.row_id})"
    )
    lines = [line]
    if event.error:
        lines.append(f"      {event.error}: {event.reason}")
        if event.error_detail:
            lines.append(f"      detail: {event.error_detail}")
    if event.replayable:
        lines.append(f"      after the fix: pedro-ingest replay {event.row_id}")
    return lines


def format_ledger(entry: LedgerEntry) -> str:
    what = entry.detail or entry.operation
    key = f"  key={entry.key}" if entry.key else ""
    return f"  {entry.at:%Y-%m-%d %H:%M:%S}  {entry.kind:<10} {entry.credits:>+8}  {what}{key}"


def format_report(report: UserReport) -> list[str]:
    user = report.user
    state = "active" if user.active else "deactivated"
    lines = [f"user {user.clerk_id} (id {user.id}) {user.email or 'no e-mail'}, {user.name or 'no name'}: {state}"]
    if report.balance is None:
        lines.append(f"balance: none (no CreditBalance row); ledger {report.ledger_total}")
    else:
        verdict = "reconciles" if report.reconciles else f"DRIFT {report.balance - report.ledger_total:+d}"
        lines.append(f"balance: {report.balance}  ledger: {report.ledger_total}  {verdict}")
        if not report.reconciles:
            lines.append(f"  check and book it: pedro-ingest reconcile --user {user.clerk_id} [--fix]")
        lines.append("lots: " + (", ".join(format_lot(lot) for lot in report.lots) or "(none)"))
        if not report.lots_agree:
            lines.append(f"  lots hold {report.lot_total}, not the balance: the next reconcile settles them")
    lines.append(f"ledger ({len(report.ledger)} rows):")
    lines += [format_ledger(entry) for entry in report.ledger] or ["  (none)"]
    lines.append(f"inbox events ({len(report.events)}):")
    for event in report.events:
        lines += format_event(event)
    if not report.events:
        lines.append("  (none)")
    return lines


def format_outcome(outcome: EventOutcome) -> str:
    event = outcome.event
    who = f"user {outcome.clerk_id}" if outcome.clerk_id else "no user"
    credits = f"credits {outcome.credits:+d}" if outcome.clerk_id else "no credits"
    balance = f", balance {outcome.balance}" if outcome.balance is not None else ""
    reason = ""
    if event.error:
        reason = f" ({event.error}: {event.reason}; after the fix: pedro-ingest replay {event.row_id})"
    return f"{event.provider}: {event.event_type}: {event.status}, {who}, {credits}{balance}{reason}"


@click.command("user")
@click.argument("ref", metavar="CLERK_ID|EMAIL|PAYMENT_ID")
@click.option("--events", "event_limit", default=500, show_default=True, type=click.IntRange(1, 100_000),
              help="Most inbox events to show.")  # fmt: skip
def user(ref: str, event_limit: int) -> None:
    """Why a user has the credits it has: state, balance, ledger and every event about it."""
    from sqlalchemy.exc import OperationalError

    from ingest.config.database import engine_from
    from models.db import transaction
    from models.reports.user_report import user_report

    engine = engine_from(settings_or_exit())
    try:
        with transaction(engine) as session:
            report = user_report(session, ref, event_limit=event_limit)
    except OperationalError as error:
        fail(f"database unreachable: {str(error.orig).strip().splitlines()[0]}")
    if report is None:
        fail(f"no user matches {ref!r} (tried Clerk id, e-mail, user id, Asaas payment id)", code=1)
    for line in format_report(report):
        click.echo(line)


USER_COMMANDS = (user,)
