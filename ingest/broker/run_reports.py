"""The last reconciliation's result, kept in Redis so that any receiver's `/metrics` reports it.

A run may happen in a worker's pool process or in a one-off `pedro-ingest reconcile`: neither is scraped
for long, and per-process gauges would carry a `pid` label. One small hash per queue (tests and several
deployments can share a Redis) holds what the last complete run found.
"""

from __future__ import annotations

import time

from redis.typing import EncodableT, FieldT

from ingest.broker.redis_client import redis_client

FIELDS = ("drifted_balances", "drift_credits", "finished_at")


def _key(queue: str) -> str:
    return f"{queue}:reconcile:last"


def record_reconcile(broker_url: str, queue: str, *, drifted_balances: int, drift_credits: int, timeout: float) -> None:
    """Store a complete run's unfixed drift; raises when the broker does not answer."""
    client = redis_client(broker_url, timeout)
    try:
        values: dict[FieldT, EncodableT] = {
            "drifted_balances": drifted_balances,
            "drift_credits": drift_credits,
            "finished_at": time.time(),
        }
        client.hset(_key(queue), mapping=values)
    finally:
        client.close()


def last_reconcile(broker_url: str, queue: str, timeout: float) -> dict[str, float] | None:
    """What the last complete run found, or None when none was recorded."""
    client = redis_client(broker_url, timeout)
    try:
        stored = client.hgetall(_key(queue))
    finally:
        client.close()
    if not stored:
        return None
    return {name: float(stored.get(name.encode(), 0)) for name in FIELDS}


def _expiry_key(queue: str) -> str:
    return f"{queue}:credit-expiry:total"


def record_expiry(broker_url: str, queue: str, *, lots: int, credits: int, timeout: float) -> None:
    """Add one run's expired lots and credits to the running totals; raises when the broker does not answer."""
    client = redis_client(broker_url, timeout)
    try:
        with client.pipeline() as pipe:
            pipe.hincrby(_expiry_key(queue), "lots", lots)
            pipe.hincrby(_expiry_key(queue), "credits", credits)
            pipe.execute()
    finally:
        client.close()


def expiry_totals(broker_url: str, queue: str, timeout: float) -> dict[str, int]:
    """Lots and credits expired so far by every run that reached this broker (zeros before the first)."""
    client = redis_client(broker_url, timeout)
    try:
        stored = client.hgetall(_expiry_key(queue))
    finally:
        client.close()
    return {name: int(stored.get(name.encode(), 0)) for name in ("lots", "credits")}
