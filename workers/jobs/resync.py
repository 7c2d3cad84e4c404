"""Clerk user resync: recover users whose webhooks never arrived (an outage longer than Svix retries).

Every user the Backend API lists goes through `apply_clerk_user`, the webhooks' own upsert, at version
`updated_at`: a snapshot older than what a webhook already applied (or than a deletion) changes nothing.
One short transaction per user, so the web app is never blocked and a failure loses at most one user.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import Engine

from ingest.config.database import default_engine
from ingest.config.settings import Settings, get_settings
from models.db import transaction
from workers.handlers.clerk_payloads import ClerkUser
from workers.handlers.clerk_users import apply_clerk_user
from workers.jobs.runner import Job, run_job
from workers.providers.clerk_api import ClerkApiError, ClerkUnauthorized, ClerkUsersApi

log = logging.getLogger(__name__)

JOB = Job("resync_users", "resync", log)


@dataclass
class ResyncReport:
    status: str = "done"  # done | skipped_no_key | skipped_locked | unauthorized | failed
    pages: int = 0
    seen: int = 0
    applied: int = 0
    stale: int = 0
    invalid: int = 0


def resync_users(
    *, settings: Settings | None = None, engine: Engine | None = None, api: ClerkUsersApi | None = None
) -> ResyncReport:
    """Page through Clerk's users and apply each; a run that stops early has applied what it read."""
    settings = settings or get_settings()
    report = ResyncReport()
    if api is None and settings.clerk_secret_key is not None:
        api = ClerkUsersApi(settings.clerk_api_url, settings.clerk_secret_key.get_secret_value())
    if api is None:
        return run_job(JOB, report, lambda: None, missing_key="CLERK_SECRET_KEY")
    clerk = api
    engine = engine or default_engine()
    return run_job(JOB, report, lambda: _run(engine, clerk, settings.signup_credits, report), engine=engine)


def _run(engine: Engine, api: ClerkUsersApi, signup_credits: int, report: ResyncReport) -> None:
    source = f"resync:{secrets.token_hex(6)}"
    try:
        for page in api.pages():
            report.pages += 1
            for raw in page:
                _apply_one(engine, raw, source, signup_credits, report)
    except ClerkUnauthorized as error:
        report.status = "unauthorized"
        log.error("resync stopped: %s", error)
    except ClerkApiError as error:
        report.status = "failed"
        log.error("resync stopped: %s", error)


def _apply_one(engine: Engine, raw: object, source: str, signup_credits: int, report: ResyncReport) -> None:
    report.seen += 1
    try:
        user = ClerkUser.model_validate(raw)
    except ValidationError:
        report.invalid += 1
        log.warning("resync: a user object failed validation; skipped")
        return
    version = user.updated_at or user.created_at
    if not version:
        report.invalid += 1
        log.warning("resync: user has no updated_at to order it by; skipped", extra={"clerk_user_id": user.id})
        return
    with transaction(engine) as session:
        applied = apply_clerk_user(session, user, version, source, signup_credits)
    if applied:
        report.applied += 1
    else:
        report.stale += 1
