"""Console pages: overview, events (filtered, paginated), one event with Replay, one user.

Views parse the query string, call the data access in `models` and render; nothing here decides what an
event means. Every page needs a signed-in operator; every action a CSRF token (see `auth`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

import flask
import redis
from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from ingest.broker import redis_client
from ingest.broker.replay import replay_ids
from ingest.broker.run_reports import last_reconcile
from ingest.http.console.auth import Operator
from ingest.http.console.context import Console
from models import inbox
from models.base import utcnow
from models.db import transaction
from models.inbox import browser as event_browser
from models.reports import user_report
from models.status import EventStatus, reason_of
from models.tables import WebhookEvent

log = logging.getLogger("pedro_ingest.console")
console = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
PAGE_SIZE = 50
STATUSES = [status.value for status in EventStatus]


def ctx() -> Console:
    return current_app.extensions["pedro_console"]


@console.before_request
def require_operator() -> ResponseReturnValue | None:
    g.csp_nonce = secrets.token_urlsafe(16)
    refuse_nul_bytes()
    if request.endpoint in ("console.login", "console.login_form"):
        return None
    operator = ctx().auth.operator(request)
    if operator is None:
        if request.authorization is not None or request.method != "GET":
            return Response("sign in first\n", 401, {"WWW-Authenticate": 'Basic realm="pedro-ingest console"'})
        return redirect(url_for("console.login_form", next=request.full_path))
    request.environ["pedro.operator"] = operator
    return None


@console.after_request
def no_caching(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    nonce = getattr(g, "csp_nonce", None)
    scripts = f"'nonce-{nonce}'" if nonce else "'none'"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; style-src 'unsafe-inline'; script-src {scripts}; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@console.errorhandler(HTTPException)
def http_error(error: HTTPException):
    return render_template("error.html", error=error), error.code or 500


@console.context_processor
def template_globals() -> dict[str, Any]:
    return {"csrf_token": ctx().auth.csrf_token, "statuses": STATUSES, "csp_nonce": getattr(g, "csp_nonce", "")}


@console.get("/login")
def login_form():
    return render_template("login.html", next=_safe_next(request.args.get("next")))


@console.post("/login")
def login():
    address = request.remote_addr or "unknown"
    wait = ctx().auth.failed_logins.blocked_for(address)  # before this attempt: the limit-th try is answered 401
    password = request.form.get("password", "")
    try:
        if not wait and ctx().auth.password_matches(password):
            current_app.session_interface.check()
    except redis.RedisError:
        message = "sign-in needs Redis (sessions are kept there) and it does not answer; HTTP Basic still works"
        return render_template("login.html", error=message, next=_safe_next(None)), 503
    signed_in = ctx().auth.sign_in(password, address)
    if signed_in:
        return redirect(_safe_next(request.form.get("next")))
    message = "wrong password"
    if wait:
        until = utcnow() + dt.timedelta(seconds=wait)
        message = f"too many wrong passwords from this address: try again in {wait} s (at {until:%H:%M:%S} UTC)"
    page = render_template("login.html", error=message, next=_safe_next(request.form.get("next")))
    response = Response(page, 429 if wait else 401)
    if wait:
        response.headers["Retry-After"] = str(wait)
    return response


@console.post("/logout")
def logout():
    _require_action()
    flask.session.clear()
    return redirect(url_for("console.login_form"))


@console.get("/")
def overview():
    c = ctx()
    now = utcnow()
    with transaction(c.engine) as db:
        stats = event_browser.overview(db, now)
    try:
        depth = redis_client.queue_depth(
            c.settings.celery_broker_url, c.settings.celery_queue, c.settings.ready_timeout
        )
    except Exception:  # the page still answers when the broker does not
        depth = None
    try:
        reconcile = last_reconcile(c.settings.celery_broker_url, c.settings.celery_queue, c.settings.ready_timeout)
    except Exception:
        reconcile = None
    since = {"hour": now - dt.timedelta(hours=1), "day": now - dt.timedelta(days=1)}
    return render_template("overview.html", stats=stats, depth=depth, reconcile=reconcile, since=since, now=now)


@console.get("/events")
def events():
    c = ctx()
    args = request.args
    try:
        since, until = _time(args.get("since")), _time(args.get("until"))
    except ValueError:
        abort(400, "since/until: use an ISO date or time, UTC (2026-12-01 or 2026-12-01T10:00)")
    user_ref, payment = args.get("user", "").strip(), args.get("payment", "").strip()
    with transaction(c.engine) as db:
        row_ids = None
        if user_ref:
            found = user_report.find_user(db, user_ref)
            row_ids = tuple(e.row_id for e in user_report.events_of(db, found)) if found else ()
        if payment:
            by_payment = event_browser.rows_naming_payment(db, payment)
            row_ids = by_payment if row_ids is None else tuple(set(row_ids) & set(by_payment))
        where = event_browser.EventFilter(
            provider=args.get("provider") or None,
            event_type=args.get("type") or None,
            status=args.get("status") or None,
            since=since,
            until=until,
            event_id=args.get("event_id", "").strip() or None,
            row_ids=row_ids,
        )
        try:
            page = event_browser.event_page(db, where, args.get("cursor"), PAGE_SIZE)
        except ValueError:
            abort(400, "the page cursor is malformed; start again from the first page")
        types = event_browser.event_types(db)
    next_args = {**args.to_dict(), "cursor": page.next_cursor} if page.next_cursor else None
    return render_template("events.html", page=page, args=args, types=types, next_args=next_args)


@console.get("/events/<row_id>")
def event_detail(row_id: str):
    c = ctx()
    with transaction(c.engine) as db:
        event = _event_or_404(db, row_id)
        effects = event_browser.effects(db, event)
        outcome = user_report.event_outcome(db, row_id)
        payload = json.dumps(event.payload, indent=2, ensure_ascii=False, sort_keys=True) if event.payload else None
    reason = reason_of(event.lastError)
    return render_template("event.html", event=event, effects=effects, outcome=outcome, payload=payload, reason=reason)


@console.get("/events/<row_id>/replay")
def replay_confirm(row_id: str):
    with transaction(ctx().engine) as db:
        event = _event_or_404(db, row_id)
    return render_template("replay.html", event=event)


@console.post("/events/<row_id>/replay")
def replay(row_id: str):
    operator = _require_action()
    c = ctx()
    result = replay_ids(c.engine, c.publisher, [row_id])
    if result.missing:
        abort(404, f"no event with id {row_id}")
    outcome = "enqueued" if result.enqueued else "pending" if result.not_enqueued else "already_final"
    log.info(
        "console replay",
        extra={"operator": operator.method, "client": operator.address, "event_row": row_id, "outcome": outcome},
    )
    messages = {
        "enqueued": "Replay enqueued: the worker applies it in a moment (refresh to see the new status).",
        "pending": "Reset for replay, but the broker did not answer: the sweeper enqueues it within a minute.",
        "already_final": "Nothing to replay: the event is already final (its effects happened once).",
    }
    flash(messages[outcome])
    return redirect(url_for("console.event_detail", row_id=row_id))


@console.get("/users")
def user_search():
    ref = request.args.get("ref", "").strip()
    if not ref:
        return render_template("user_search.html")
    return redirect(url_for("console.user_page", ref=ref))


@console.get("/users/<path:ref>")
def user_page(ref: str):
    with transaction(ctx().engine) as db:
        report = user_report.user_report(db, ref)
        if report is None:
            abort(404, f"no user matches {ref!r} (Clerk id, e-mail, user id or Asaas payment id)")
        subscriptions = event_browser.subscription_events(db, report.user.id, report.user.clerk_id)
    running, rows = 0, []
    for entry in report.ledger:
        running += entry.credits
        rows.append((entry, running))
    return render_template("user.html", report=report, ledger=rows, subscriptions=subscriptions)


def _event_or_404(db: Session, row_id: str) -> WebhookEvent:
    event = inbox.get(db, row_id)
    if event is None:
        abort(404, f"no event with id {row_id}")
    return event


def _require_action() -> Operator:
    operator: Operator = request.environ["pedro.operator"]
    if not ctx().auth.action_allowed(request, operator):
        abort(403, "missing or wrong CSRF token: reload the page and try again")
    return operator


def _safe_next(target: str | None) -> str:
    """Only a path inside the console (no open redirect to another site)."""
    default = url_for("console.overview")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/") or "\\" in target:
        return default
    return target


def _time(value: str | None) -> dt.datetime | None:
    """A naive UTC time; ValueError for text that is not one, or for a time outside what UTC can hold."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.strip())
    try:
        return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the year 1 in UTC
        raise ValueError("out of range") from None


def refuse_nul_bytes() -> None:
    """A NUL byte cannot be stored in or compared with PostgreSQL text: say so instead of failing (500)."""
    if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400, "a NUL byte is not allowed in a path or filter")
