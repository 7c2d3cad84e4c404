"""The Asaas webhook queue as the queue watch last saw it, kept in Redis and rendered as gauges at scrape time.

One observation for the whole fleet (whichever worker ran the watch), so every `/metrics` — receiver or
worker — reports the same truth, and it expires when the watch stops running instead of going stale.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily, Metric

from ingest.broker.redis_client import redis_client

KEY = "pedro:asaas:queue_watch"


def save(client: redis.Redis, observation: dict[str, Any], ttl: float) -> None:
    """`observation`: interrupted, enabled, penalized (int), webhook_id."""
    client.set(KEY, json.dumps({**observation, "checked_at": time.time()}), ex=max(1, int(ttl)))


def load(client: redis.Redis) -> dict[str, Any] | None:
    raw = client.get(KEY)
    return json.loads(raw) if raw else None


def gauges(broker_url: str, timeout: float) -> Iterator[Metric]:
    """Nothing when no watch has run recently (no key configured, or the beat is down)."""
    client = redis_client(broker_url, timeout)
    try:
        seen = load(client)
    finally:
        client.close()
    if seen is None:
        return
    interrupted = int(seen["interrupted"])
    yield GaugeMetricFamily(
        "pedro_ingest_asaas_queue_interrupted", "1 when Asaas has paused our webhook queue.", interrupted
    )
    yield GaugeMetricFamily(
        "pedro_ingest_asaas_queue_penalized_requests",
        "Failed deliveries Asaas counts against our webhook (15 in a row pause the queue).",
        int(seen.get("penalized") or 0),
    )
    yield GaugeMetricFamily(
        "pedro_ingest_asaas_queue_checked_timestamp_seconds",
        "When the queue watch last read the webhook.",
        seen["checked_at"],
    )
