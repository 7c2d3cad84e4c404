"""What became of an inbox event: its status, and when it did not apply, why (a failure code and its sentence).

One place for both, so the worker that records a failure, the CLI, the console and the user report read the
same codes and the same sentences. A row keeps the code in `lastError` (for filters, alerts and metrics) and
a per-event detail in `lastErrorDetail` (the code's sentence when the failure has nothing to add). Neither
ever carries payload values.
"""

from __future__ import annotations

import enum


class EventStatus(enum.StrEnum):
    """Life of an inbox row. `processed` and `ignored` are final; `failed` and `dead` are replayable."""

    RECEIVED = "received"
    ENQUEUED = "enqueued"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"
    DEAD = "dead"


FINAL_STATUSES = frozenset({EventStatus.PROCESSED, EventStatus.IGNORED})
REPLAYABLE_STATUSES = frozenset({EventStatus.FAILED, EventStatus.DEAD})
UNPROCESSED_STATUSES = frozenset({EventStatus.RECEIVED, EventStatus.ENQUEUED})
NOT_FINAL_STATUSES = (EventStatus.RECEIVED, EventStatus.ENQUEUED, EventStatus.FAILED, EventStatus.DEAD)


class Failure(enum.StrEnum):
    """Why an event did not apply (or was ignored by a policy): a stable code and what it means to a person."""

    sentence: str

    def __new__(cls, code: str, sentence: str) -> Failure:
        member = str.__new__(cls, code)
        member._value_ = code
        member.sentence = sentence
        return member

    @classmethod
    def of(cls, code: str) -> Failure:
        """The member for a stored code; ValueError for a code this version does not define."""
        for member in cls:
            if member.value == code:
                return member
        raise ValueError(f"unknown failure code {code!r}")

    # The event cannot apply as it is: `failed`, replayable once the cause is fixed.
    INVALID_PAYLOAD = "invalid_payload", "the provider's body failed validation or exceeds a bound (see the detail)"
    UNLINKED_PAYMENT = "unlinked_payment", "the payment names no known user (externalReference or subscription link)"
    UNLINKED_PLAN = (
        "unlinked_plan",
        "no Plan matches this payment or item (Plan.asaasId, '|plan:<id>' reference, Clerk plan id)",
    )
    UNSUPPORTED_PAYER = "unsupported_payer", "an organization paid; only user payers are credited"
    # Ignored on purpose, with this reason kept so the row can be found (and replayed, for a pending one).
    CHECKOUT_PENDING = (
        "checkout_pending",
        "an Asaas Checkout charge whose CHECKOUT_CREATED/PAID has not arrived; applied when it does",
    )
    CHECKOUT_NO_CREDITS = (
        "checkout_no_credits",
        "an Asaas Checkout event that moves no credits (created, canceled, expired): logged only",
    )
    RESERVED_EVENT = (
        "reserved_event",
        "the body claimed an event type or id that only pedro-ingest's own backfill may use",
    )
    # Expected to clear by itself: retried, `dead` (replayable) once the attempt budget is spent.
    PAYER_NOT_SYNCED = "payer_not_synced", "the payer's Clerk user was not synced yet (its user.created not applied)"
    PROVIDER_UNAVAILABLE = "provider_unavailable", "the provider's API did not answer a value this event needs"
    TRANSIENT_ERROR = "transient_error", "the database or broker kept failing until the retry budget was spent"
    TIME_LIMIT = "time_limit", "the event took longer than TASK_SOFT_TIME_LIMIT to apply; its changes were rolled back"
    LOCK_TIMEOUT = (
        "lock_timeout",
        "a row this event needs stayed locked by another transaction past DB_LOCK_TIMEOUT_MS",
    )
    STATEMENT_TIMEOUT = "statement_timeout", "a database statement ran longer than DB_STATEMENT_TIMEOUT_MS"
    SERIALIZATION_FAILURE = "serialization_failure", "a concurrent transaction changed the same rows"
    DEADLOCK = "deadlock", "the database broke a deadlock with another transaction"
    DATABASE_UNAVAILABLE = "database_unavailable", "the database could not be reached, or refused the connection"
    HANDLER_ERROR = "handler_error", "our handler failed unexpectedly (a bug); the worker log says where"
    WORKER_LOST = "worker_lost", "a delivery ended without finishing: the worker was killed or crashed"


def reason_of(code: str | None) -> str | None:
    """What a stored `lastError` code means, for a person; a code this version does not know is shown as it is."""
    if not code:
        return None
    try:
        return Failure.of(code).sentence
    except ValueError:
        return code
