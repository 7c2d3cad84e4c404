"""Celery task wrappers: take an id, call the service, turn its answer into Celery's retry."""

from __future__ import annotations

from ingest.publisher import PROCESS_EVENT_TASK
from workers import processing
from workers.celery_app import app


@app.task(bind=True, name=PROCESS_EVENT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def process_event(self, row_id: str) -> str:
    outcome = processing.process_event(row_id, attempt=self.request.retries + 1)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    return outcome.status
