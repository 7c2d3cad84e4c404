"""Event types and ids that belong to pedro-ingest itself, never to a provider's wire.

The Asaas backfill stores a payment's state read from the API as an inbox row of provider `asaas-sync`,
type `PAYMENT_SYNC`, id `payment-sync:<payment>:<state>` (deletion keys embed that id). A body on the
Asaas webhook that claims that type or id prefix is stored `ignored` (`reserved_event`) and answered 200
(Asaas counts only 200): it cannot run the backfill's handler, nor take an id the backfill will use.
"""

from __future__ import annotations

from models.status import Failure

SYNC_PROVIDER = "asaas-sync"
SYNC_EVENT_TYPE = "PAYMENT_SYNC"
SYNC_ID_PREFIX = "payment-sync:"
RESERVED_EVENT = Failure.RESERVED_EVENT


def reserved_on_the_wire(event_type: str, event_id: str) -> bool:
    return event_type == SYNC_EVENT_TYPE or event_id.startswith(SYNC_ID_PREFIX)
