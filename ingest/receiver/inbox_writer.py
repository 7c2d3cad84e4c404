"""Group commit for the receiver: concurrent requests share one INSERT, one commit and one publish.

A single-row insert + commit + Celery publish costs a request about a millisecond of round trips and
fsync, which caps a receiver far below what Flask itself can serve. Here each request thread hands its
verified event to the process's writer thread and waits; the writer takes everything that queued up
meanwhile, stores it with one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`, commits once,
publishes one task carrying the new ids, and answers every waiting request. Nothing is acknowledged
before its batch has committed. At low load a batch is one event and the latency is the same as before.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ingest.observability.error_origin import error_origin
from ingest.receiver.errors import UnstorableBody, WebhookRejected
from models import inbox
from models.inbox import NewEvent
from models.status import EventStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

DATABASE_RETRY_AFTER = 30
WAIT_SECONDS = 25.0  # below gunicorn's 30 s worker timeout
IDLE_RELEASE_SECONDS = 1.0  # the writer's connection goes back to the pool after this long without events


class BatchPublisher(Protocol):
    def publish_many(self, row_ids: list[str]) -> bool: ...


@dataclass(frozen=True)
class Accepted:
    """A stored (or already stored) event: what the 200 response reports."""

    row_id: str | None
    duplicate: bool
    enqueued: bool
    event: NewEvent


def database_unavailable() -> WebhookRejected:
    return WebhookRejected(
        503, "database_unavailable", "the event store is unavailable; retry later", retry_after=DATABASE_RETRY_AFTER
    )


class InboxWriter:
    """One writer thread per process (started lazily, and again after a fork)."""

    def __init__(
        self,
        engine: Engine,
        publisher: BatchPublisher,
        *,
        max_batch: int = 256,
        idle_release_seconds: float = IDLE_RELEASE_SECONDS,
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.max_batch = max_batch
        self.idle_release_seconds = idle_release_seconds
        self._queue: queue.SimpleQueue[tuple[NewEvent, Future[Accepted]]] = queue.SimpleQueue()
        self._pid: int | None = None
        self._start_lock = threading.Lock()
        self._connection: Connection | None = None  # the writer thread's own; only it touches it
        self.on_batch: Callable[[list[Accepted]], None] | None = None  # told every stored batch (metrics)

    def submit(self, event: NewEvent) -> Accepted:
        """Store (and enqueue) one event; raises `WebhookRejected` when it could not be made durable."""
        self._ensure_thread()
        future: Future[Accepted] = Future()
        self._queue.put((event, future))
        try:
            return future.result(timeout=WAIT_SECONDS)
        except TimeoutError:
            # Not known to be durable: the sender must retry (a duplicate is harmless).
            raise database_unavailable() from None

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._connection = None  # a parent's connection must never be used in a child
                threading.Thread(target=self._run, name="inbox-writer", daemon=True).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=self.idle_release_seconds)]
            except queue.Empty:
                self._release_connection()
                continue
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._flush(batch)
            except Exception as error:  # never let the writer thread die: answer the batch with an error
                origin = error_origin(error)  # type and place only: a message could quote a body
                log.error(
                    "inbox writer failed a batch", extra={"error_type": origin.error_type, "error_at": origin.location}
                )
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)

    def _flush(self, batch: list[tuple[NewEvent, Future[Accepted]]]) -> None:
        # Rows to be published are stored as `enqueued` right away, which saves a second commit per batch;
        # if the publish then fails they are put back to `received`, where the sweeper looks for them.
        try:
            stored = self._store([_as_enqueued(event) for event, _ in batch])
        except Exception as error:
            self._refuse(batch, error)
            return

        # A delivery repeated inside one batch has one row: its id goes in the message once.
        new_ids = list(
            dict.fromkeys(
                stored[event.key] for event, _ in batch if event.status is EventStatus.RECEIVED and event.key in stored
            )
        )
        enqueued = bool(new_ids) and self.publisher.publish_many(new_ids)
        if new_ids and not enqueued:
            self._mark_received(new_ids)
        queued = set(new_ids) if enqueued else set()
        answers = []
        for event, _ in batch:
            row_id = stored.pop(event.key, None)
            answers.append(Accepted(row_id=row_id, duplicate=row_id is None, enqueued=row_id in queued, event=event))
        if self.on_batch is not None:  # before the answers: a metric read after a 200 includes its event
            try:
                self.on_batch(answers)
            except Exception:  # counting must never fail a stored batch
                log.exception("counting a stored batch failed")
        for (_, future), answer in zip(batch, answers, strict=True):
            future.set_result(answer)

    def _refuse(self, batch: list[tuple[NewEvent, Future[Accepted]]], error: Exception) -> None:
        """The batch statement failed: 503 for all when the database is the problem, else isolate the culprit.

        Validation before the batch catches what we know PostgreSQL refuses; anything else that is about the
        data (a data exception, a limit) is found here by storing each event of the batch on its own, so
        only the event PostgreSQL refuses is answered with an error.
        """
        if isinstance(error, DBAPIError) and not _about_the_row(error):
            log.warning("inbox unavailable; the batch is answered 503", extra=_error_fields(error))
            for _, future in batch:
                future.set_exception(database_unavailable())
            return
        if len(batch) > 1:
            for item in batch:
                self._flush([item])
            return
        event, future = batch[0]
        fields = {**_error_fields(error), "provider": event.provider, "event_id": event.event_id[:200]}
        log.warning("inbox refused one event", extra=fields)
        future.set_exception(UnstorableBody() if isinstance(error, DBAPIError) else error)

    def _store(self, events: list[NewEvent]) -> dict[tuple[str, str], str]:
        """Store the batch, retrying once on a fresh connection when the pooled one was dead.

        After a PostgreSQL restart every pooled connection is stale and its first use fails as a disconnect
        (SQLAlchemy then invalidates the pool). Retrying is safe: the INSERT is `ON CONFLICT DO NOTHING`, and
        should the lost connection have committed after all, the retry sees the rows as duplicates, which
        are not enqueued again: the sweeper re-enqueues them once they count as stuck (SWEEP_STUCK_AFTER).
        """
        try:
            return self._store_once(events)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            log.warning("stale database connection; retrying the batch once on a fresh one")
            return self._store_once(events)

    def _store_once(self, events: list[NewEvent]) -> dict[tuple[str, str], str]:
        return self._one_statement(lambda connection: inbox.store_many(connection, events))

    def _mark_received(self, row_ids: list[str]) -> None:
        """The broker refused the batch: `received` again, so the sweeper enqueues it within a minute."""
        try:
            self._one_statement(lambda connection: inbox.mark_received_many(connection, row_ids))
        except DBAPIError:
            log.warning("could not mark an unpublished batch received; the sweeper finds it as stuck later")

    def _one_statement(self, work: Callable[[Connection], T]) -> T:
        """Run `work` (exactly one SQL statement) on the writer's own autocommit connection.

        One statement is its own transaction, so a batch costs one round trip instead of three (BEGIN,
        INSERT, COMMIT), and keeping the connection saves a pool checkout and return per batch. After a
        database error the connection goes back to the pool (invalidated if it was lost) and the next
        batch takes a fresh one.
        """
        connection = self._connection or self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._connection = connection
        try:
            return work(connection)
        except DBAPIError:
            self._release_connection()
            raise

    def _release_connection(self) -> None:
        """Back to the pool: after a database error, and when no event came for `idle_release_seconds`.

        Kept while events keep coming: a checkout and check-in cost round trips (isolation level set, then
        reset), which at a steady moderate rate, where each batch finds the queue empty, every batch paid.
        Released when idle, so an idle process, or a discarded app in tests, holds no connection."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


ROW_PROBLEM_CLASSES = ("22", "23", "54")  # SQLSTATE classes: data exception, integrity, program limit


def _about_the_row(error: DBAPIError) -> bool:
    """True when PostgreSQL refused the data (not the connection, a timeout or an overload)."""
    code = getattr(error.orig, "pgcode", None) or ""
    return not error.connection_invalidated and code[:2] in ROW_PROBLEM_CLASSES


def _error_fields(error: Exception) -> dict[str, object]:
    """Type, place and SQLSTATE only: a driver message could quote the body."""
    origin = error_origin(error)
    fields: dict[str, object] = {"error_type": origin.error_type, "error_at": origin.location}
    code = getattr(getattr(error, "orig", None), "pgcode", None)
    if code:
        fields["sqlstate"] = code
    return fields


def _as_enqueued(event: NewEvent) -> NewEvent:
    """Events to publish are stored as `enqueued`; events stored `failed` on receipt keep their status."""
    if event.status is EventStatus.RECEIVED:
        return replace(event, status=EventStatus.ENQUEUED)
    return event
