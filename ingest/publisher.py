"""Hands stored events to the workers through the Celery broker, failing fast when it is down.

A failed publish is not an error for the sender: the row is durable and the sweeper enqueues it later.
"""

from __future__ import annotations

import logging
from typing import Protocol

from celery import Celery

PROCESS_EVENT_TASK = "pedro_ingest.process_event"
PROCESS_EVENTS_TASK = "pedro_ingest.process_events"
log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Anything that can hand one inbox row id to the workers (the sweeper and replay use it)."""

    def publish(self, row_id: str) -> bool: ...


class CeleryPublisher:
    """Sends `process_event(row_id)` by name, so the receiver never imports worker code."""

    def __init__(self, broker_url: str, queue: str, *, timeout: float = 2.0) -> None:
        # Celery lets the CELERY_BROKER_URL variable win over `broker=`; it is also our setting's name,
        # so both always agree in a real process.
        self.queue = queue
        self._app = Celery("pedro_ingest_publisher", broker=broker_url, set_as_current=False)
        self._app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_connection_timeout=timeout,
            broker_connection_retry=False,
            broker_transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
        )

    def publish(self, row_id: str) -> bool:
        """True when the broker accepted the task; False (logged) when it could not be reached."""
        try:
            self._app.send_task(PROCESS_EVENT_TASK, args=[row_id], queue=self.queue, retry=False)
            return True
        except Exception as error:  # kombu/redis raise many connection error types; all mean "not sent"
            log.warning("enqueue failed; the sweeper will pick the event up", extra={"error": type(error).__name__})
            return False

    def publish_many(self, row_ids: list[str]) -> bool:
        """One task for a batch of ids (the receiver's group commit): the broker cost is paid once."""
        if len(row_ids) == 1:
            return self.publish(row_ids[0])
        try:
            self._app.send_task(PROCESS_EVENTS_TASK, args=[row_ids], queue=self.queue, retry=False)
            return True
        except Exception as error:
            log.warning("enqueue failed; the sweeper will pick the events up", extra={"error": type(error).__name__})
            return False
