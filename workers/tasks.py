"""Celery task wrappers: take an id, call the service, turn its answer into Celery's retry."""

from __future__ import annotations

from ingest.publisher import PROCESS_EVENT_TASK, PROCESS_EVENTS_TASK
from workers import processing
from workers.celery_app import app


@app.task(bind=True, name=PROCESS_EVENT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def process_event(self, row_id: str) -> str:
    outcome = processing.process_event(row_id, attempt=self.request.retries + 1)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    return outcome.status


@app.task(name=PROCESS_EVENTS_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def process_events(row_ids: list[str]) -> None:
    """A batch from the receiver's group commit: each event still gets its own transaction.

    An event that needs a retry continues as its own `process_event` task, so one slow or failing event
    never holds the others back.
    """
    for row_id in row_ids:
        outcome = processing.process_event(row_id, attempt=1)
        if outcome.retry_in is not None:
            process_event.apply_async(args=[row_id], countdown=outcome.retry_in, retries=1)
