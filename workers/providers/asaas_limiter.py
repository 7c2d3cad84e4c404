"""One Asaas API limiter for every worker and CLI run, kept in Redis.

Asaas limits the *account*, not a process (docs.asaas.com "API limits"): 50 concurrent GETs, 25,000 requests
per 12 hours shared with the web app, and per-endpoint limits announced by `RateLimit-Remaining` /
`RateLimit-Reset`. So the counters live where every process sees them:

- slots: a sorted set of leases (token → expiry); a process takes a slot only while fewer than
  `concurrency` unexpired leases exist, so a crashed holder frees its slot when its lease expires;
- quota: one counter per fixed 12-hour window, capped at our share (`ASAAS_API_QUOTA`);
- pause: a "do not call before" timestamp set from a 429 or an exhausted `RateLimit-Remaining`, which
  every process waits for.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

PREFIX = "pedro:asaas:api"
QUOTA_WINDOW = 12 * 3600

_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
  return 1
end
return 0
"""
_PAUSE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', math.ceil(tonumber(ARGV[2])) + 1)
end
return 1
"""


class LimiterTimeout(Exception):
    """No slot, or the pause lasts longer than the caller is willing to wait."""


class QuotaExhausted(Exception):
    """Our share of the 12-hour request quota is spent; the next window starts over."""


class AsaasLimiter:
    """Shared by every process that calls the Asaas API with one account's key."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        concurrency: int,
        quota: int,
        lease_seconds: float = 120.0,
        prefix: str = PREFIX,
        poll: float = 0.05,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.concurrency = concurrency
        self.quota = quota
        self.lease_seconds = lease_seconds
        self.poll = poll
        self.clock = clock
        self.sleep = sleep
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)

    @contextmanager
    def slot(self, max_wait: float) -> Iterator[None]:
        """Hold one of the account's request slots for one request; counts the request against the quota."""
        deadline = self.clock() + max_wait
        self._wait_pause(deadline)
        token = secrets.token_hex(8)
        slots = f"{self.prefix}:slots"
        while not self._acquire(keys=[slots], args=[self.clock(), self.concurrency, self.lease_seconds, token]):
            if self.clock() >= deadline:
                raise LimiterTimeout("no Asaas API slot came free in time")
            self.sleep(self.poll)
        try:
            self._count()
            yield
        finally:
            self.redis.zrem(slots, token)

    def pause_for(self, seconds: float) -> None:
        """Every process waits `seconds` before its next request (a later pause never shortens an earlier one)."""
        if seconds > 0:
            self._pause(keys=[f"{self.prefix}:paused_until"], args=[self.clock() + seconds, seconds])

    def paused_for(self) -> float:
        until = float(self.redis.get(f"{self.prefix}:paused_until") or 0)
        return max(0.0, until - self.clock())

    def used_in_window(self) -> int:
        return int(self.redis.get(self._quota_key()) or 0)

    def _wait_pause(self, deadline: float) -> None:
        remaining = self.paused_for()
        if remaining <= 0:
            return
        if self.clock() + remaining > deadline:
            raise LimiterTimeout(f"the Asaas API asked us to wait {remaining:.0f}s")
        self.sleep(remaining)

    def _quota_key(self) -> str:
        return f"{self.prefix}:quota:{int(self.clock() // QUOTA_WINDOW)}"

    def _count(self) -> None:
        key = self._quota_key()
        used = self.redis.incr(key)
        if used == 1:
            self.redis.expire(key, QUOTA_WINDOW * 2)
        if used > self.quota:
            raise QuotaExhausted(f"our share of the Asaas quota ({self.quota} requests per 12 h) is spent")
