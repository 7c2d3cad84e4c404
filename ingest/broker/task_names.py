"""Celery task names on the wire, defined once: the receiver publishes them, workers register them, beat
schedules them. Renaming one strands every message already queued under the old name."""

from __future__ import annotations

PROCESS_EVENT = "pedro_ingest.process_event"
PROCESS_EVENTS = "pedro_ingest.process_events"
SWEEP_STRANDED = "pedro_ingest.sweep_stranded"
RECONCILE = "pedro_ingest.reconcile"
EXPIRE_CREDITS = "pedro_ingest.expire_credits"
RESYNC_USERS = "pedro_ingest.resync_users"
PRUNE_PAYLOADS = "pedro_ingest.prune_payloads"
RESYNC_PAYMENTS = "pedro_ingest.resync_payments"
WATCH_ASAAS_QUEUE = "pedro_ingest.watch_asaas_queue"

PERIODIC = (SWEEP_STRANDED, RECONCILE, EXPIRE_CREDITS, RESYNC_USERS, PRUNE_PAYLOADS, RESYNC_PAYMENTS, WATCH_ASAAS_QUEUE)
