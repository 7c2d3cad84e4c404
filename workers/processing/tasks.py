"""Celery task wrappers: take an id, call the service, turn its answer into Celery's retry."""

from __future__ import annotations

from ingest.broker import task_names
from ingest.broker.inventory import BrokerInventory
from ingest.broker.publisher import publisher_for
from ingest.config.database import default_engine
from ingest.config.settings import get_settings
from workers.celery_app import app
from workers.jobs import sweeper
from workers.processing import apply as processing


@app.task(bind=True, name=task_names.PROCESS_EVENT, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def process_event(self, row_id: str) -> str:
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    outcome = processing.process_event(row_id, attempt=self.request.retries + 1, redelivered=redelivered)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    return outcome.status


@app.task(bind=True, name=task_names.PROCESS_EVENTS, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def process_events(self, row_ids: list[str]) -> None:
    """A batch from the receiver's group commit: each event still gets its own transaction.

    An event that needs a retry continues as its own `process_event` task, so one slow or failing event
    never holds the others back, and one that hits the batch's soft time limit hands the rest on as tasks of
    their own. A *redelivered* batch (its worker died mid-way) is split into one task
    per event: the lost-attempt count then falls on the event that kills workers, not on its neighbours.
    """
    if (self.request.delivery_info or {}).get("redelivered"):
        for row_id in row_ids:
            process_event.apply_async(args=(row_id,))
        return
    for index, row_id in enumerate(row_ids):
        outcome = processing.process_event(row_id, attempt=1)
        if outcome.retry_in is not None:
            # `retries` is a message option Celery passes on (the retry count); celery-types does not list it
            process_event.apply_async(args=(row_id,), countdown=outcome.retry_in, retries=1)  # type: ignore[call-arg]
        if outcome.timed_out:  # the batch's time is spent: the others continue as tasks of their own
            for rest in row_ids[index + 1 :]:
                process_event.apply_async(args=(rest,))
            return


@app.task(name=task_names.SWEEP_STRANDED, ignore_result=True)
def sweep_stranded() -> int:
    """Periodic (beat) and on-demand: re-enqueue stranded inbox rows; returns how many were enqueued."""
    settings = get_settings()
    inventory = BrokerInventory(settings.celery_broker_url, settings.celery_queue)
    try:
        result = sweeper.sweep(
            default_engine(),
            publisher_for(settings),
            received_after=settings.sweep_received_after,
            stuck_after=settings.sweep_stuck_after,
            batch=settings.sweep_batch,
            inventory=inventory,
            lost_after=settings.sweep_lost_after,
        )
    finally:
        inventory.close()
    return result.enqueued
