"""Operator commands for the inbox: `events list|show`, `replay`, `sweep`.

The work itself lives in `models.inbox`,
`ingest.broker.replay` and `workers.jobs.sweeper`; this module parses options and prints.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, cast

import click

from ingest.cli.support import fail, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.exc import OperationalError

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str | None) -> dt.datetime | None:
    """`--since`: an ISO date/time (UTC) or a duration back from now (`30m`, `2h`, `7d`)."""
    if value is None:
        return None
    relative = _RELATIVE.match(value.strip())
    if relative:
        seconds = int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        return dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds)
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter("use an ISO date/time (2026-01-31T12:00) or a duration (30m, 2h, 7d)") from None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _engine():
    """The database alone: reading commands do not load the broker client."""
    from ingest.config.database import engine_from

    return engine_from(settings_or_exit())


def _engine_and_publisher(*, publishes: bool = False):
    from ingest.broker.publisher import publisher_for
    from ingest.config.database import engine_from

    settings = settings_or_exit(publishes=publishes)
    return settings, engine_from(settings), publisher_for(settings)


def _database_unreachable(error: OperationalError) -> None:
    fail(f"database unreachable: {str(error.orig).strip().splitlines()[0]}")


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.datetime | None:
    return parse_since(value)


# models.status.EventStatus's values, written out so that `--help` does not load SQLAlchemy (a test compares them)
STATUSES = ("received", "enqueued", "processed", "ignored", "failed", "dead")
STATUS_CHOICE = click.Choice(STATUSES)


@click.group()
def events() -> None:
    """Inspect inbox events."""


@events.command("list")
@click.option("--status", type=STATUS_CHOICE, help="Only events in this status.")
@click.option("--provider", help="Only this provider (clerk, asaas, asaas-sync: the backfill's rows).")
@click.option("--type", "event_type", help="Only this event type (e.g. user.created).")
@click.option("--since", callback=_since, help="Received at or after: ISO time (UTC) or a duration (30m, 2h, 7d).")
@click.option("--user", "user_ref", metavar="CLERK_ID|EMAIL|PAYMENT_ID", help="Only events about this user.")
@click.option("--event-id", help="Only the event with this provider event id (svix-id, Asaas evt_ id).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
def list_events(
    status: str | None,
    provider: str | None,
    event_type: str | None,
    since: dt.datetime | None,
    user_ref: str | None,
    event_id: str | None,
    limit: int,
) -> None:
    """List events, newest first (never prints payloads)."""
    from sqlalchemy.exc import OperationalError

    from models import inbox
    from models.db import transaction

    engine = _engine()
    try:
        with transaction(engine) as session:
            row_ids = None
            if user_ref is not None:
                from models.reports import user_report

                found = user_report.find_user(session, user_ref)
                if found is None:
                    fail(f"no user matches {user_ref!r} (tried Clerk id, e-mail, user id, Asaas payment id)", code=1)
                row_ids = [event.row_id for event in user_report.events_of(session, found, limit=100_000)]
            rows = inbox.find(
                session, status=status, provider=provider, event_type=event_type, since=since, limit=limit,
                event_id=event_id, row_ids=row_ids,
            )  # fmt: skip
            lines = [
                f"{row.id}  {row.receivedAt:%Y-%m-%d %H:%M:%S}  {row.provider:<6} {row.eventType:<28} "
                f"{row.status:<9} attempts={row.attempts}"
                + (f"  error={row.lastError}: {row.lastErrorDetail or ''}" if row.lastError else "")
                for row in rows
            ]
    except OperationalError as error:
        _database_unreachable(error)
        return
    id_width = max((len(line.split(" ", 1)[0]) for line in lines), default=2)
    click.echo(f"{'id':<{id_width}}  {'received (UTC)':<19}  {'source':<6} {'type':<28} {'status':<9} attempts")
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} event(s)" + (f" (the newest {limit}: --limit for more)" if len(lines) == limit else ""))


@events.command("show")
@click.argument("row_id")
def show_event(row_id: str) -> None:
    """One event: its fields, attempts, the reason of its last failed attempt and its payload."""
    from sqlalchemy.exc import OperationalError

    from models import inbox
    from models.db import transaction

    engine = _engine()
    try:
        with transaction(engine) as session:
            row = inbox.get(session, row_id)
            if row is None:
                fail(f"no event with id {row_id}", code=1)
                return
            fields = {
                "id": row.id,
                "provider": row.provider,
                "eventId": row.eventId,
                "eventType": row.eventType,
                "status": row.status,
                "attempts": row.attempts,
                "reason": _reason(row.lastError, row.lastErrorDetail),
                "receivedAt": row.receivedAt.isoformat(),
                "occurredAt": row.occurredAt.isoformat() if row.occurredAt else None,
                "processedAt": row.processedAt.isoformat() if row.processedAt else None,
                "updatedAt": row.updatedAt.isoformat(),
                "payload": row.payload,
            }
    except OperationalError as error:
        _database_unreachable(error)
        return
    click.echo(json.dumps(fields, indent=2, ensure_ascii=False))


@click.command()
@click.argument("row_ids", nargs=-1)
@click.option("--status", type=click.Choice(["failed", "dead"]), help="Replay every event in this status.")
@click.option("--since", callback=_since, help="With --status: received at or after (ISO time or 30m, 2h, 7d).")
@click.option("--type", "event_type", help="With --status: only this event type.")
def replay(row_ids: tuple[str, ...], status: str | None, since: dt.datetime | None, event_type: str | None) -> None:
    """Re-apply failed or dead events (by row id, provider event id (`evt_`, `msg_` ids), or Asaas payment id; or all
    in a status); processed events are left alone."""
    from sqlalchemy.exc import OperationalError

    from ingest.broker.replay import replay_ids, replay_matching

    if bool(row_ids) == bool(status):
        raise click.UsageError("give event ids or --status failed|dead (not both)")
    if row_ids and (since or event_type):
        raise click.UsageError("--since and --type only go with --status")
    _, engine, publisher = _engine_and_publisher(publishes=True)
    try:
        if row_ids:
            result = replay_ids(engine, publisher, list(dict.fromkeys(row_ids)))
        else:
            from models.status import EventStatus

            result = replay_matching(
                engine, publisher, status=EventStatus(cast(str, status)), since=since, event_type=event_type
            )
    except OperationalError as error:
        _database_unreachable(error)
        return
    for row_id, final in result.already_final.items():
        click.echo(f"{row_id}: already {final}, nothing to replay")
    for row_id in result.enqueued:
        click.echo(f"{row_id}: replay enqueued")
    for row_id in result.not_enqueued:
        click.echo(f"{row_id}: reset, but the broker is unreachable; the sweeper will enqueue it")
    for row_id in result.missing:
        click.echo(f"{row_id}: no such event", err=True)
    click.echo(
        f"replayed={len(result.enqueued)} pending={len(result.not_enqueued)} "
        f"already_done={len(result.already_final)} missing={len(result.missing)}"
    )
    if result.missing:
        raise SystemExit(1)


@click.command()
@click.option("--received-after", type=click.IntRange(0), help="Seconds; default SWEEP_RECEIVED_AFTER.")
@click.option("--stuck-after", type=click.IntRange(0), help="Seconds; default SWEEP_STUCK_AFTER.")
@click.option("--lost-after", type=click.IntRange(0), help="Seconds; default SWEEP_LOST_AFTER.")
def sweep(received_after: int | None, stuck_after: int | None, lost_after: int | None) -> None:
    """Re-enqueue stranded events (left `received`, `enqueued` but lost by the broker, or untouched too long)."""
    from sqlalchemy.exc import OperationalError

    from ingest.broker.inventory import BrokerInventory
    from workers.jobs.sweeper import sweep as run_sweep

    settings, engine, publisher = _engine_and_publisher(publishes=True)
    inventory = BrokerInventory(settings.celery_broker_url, settings.celery_queue)
    try:
        result = run_sweep(
            engine,
            publisher,
            received_after=settings.sweep_received_after if received_after is None else received_after,
            stuck_after=settings.sweep_stuck_after if stuck_after is None else stuck_after,
            batch=settings.sweep_batch,
            inventory=inventory,
            lost_after=settings.sweep_lost_after if lost_after is None else lost_after,
        )
    except OperationalError as error:
        _database_unreachable(error)
        return
    finally:
        inventory.close()
    click.echo(
        f"sweep: enqueued={result.enqueued} lost_by_broker={result.lost}"
        + (" (stopped: broker unreachable)" if result.broker_down else "")
    )
    if result.broker_down:
        raise SystemExit(1)


EVENT_COMMANDS = (events, replay, sweep)


def _reason(code: str | None, detail: str | None) -> dict[str, str | None] | None:
    """The code, what it means in general (`models.status.Failure`) and what this event's attempt said."""
    from models.status import reason_of

    return {"code": code, "meaning": reason_of(code), "sentence": detail} if code else None
