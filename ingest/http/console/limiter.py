"""Wrong console passwords per client address, counted in Redis so every receiver process shares one count.

One Lua script increments the count and starts its window when the count is new, atomically: no
`EXPIRE … NX` (Redis 7 only), so it works on Redis 6.2, the oldest Redis the README supports (the one the
embedded `dev` stack runs). When Redis does not answer, this process counts on its own and says so in a
WARNING line: the limit then holds per process, not per fleet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

log = logging.getLogger("pedro_ingest.console")

# KEYS[1] the address's counter, ARGV[1] the window in seconds. Returns {count, seconds left}.
_RECORD = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class FailedLogins:
    """Wrong passwords per client address in a window of `window` seconds."""

    def __init__(self, redis_factory: Callable[[], redis.Redis], limit: int, namespace: str, window: int = 60) -> None:
        self.redis_factory = redis_factory
        self.namespace = namespace
        self.limit = limit
        self.window = window
        self._local: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _key(self, address: str) -> str:
        return f"pedro:console:{self.namespace}:failed-logins:{address}"

    def blocked_for(self, address: str) -> int:
        """Seconds until this address may try again; 0 when it is not blocked."""
        try:
            pipe = self.redis_factory().pipeline(transaction=False)
            pipe.get(self._key(address))
            pipe.ttl(self._key(address))
            count, ttl = pipe.execute()
        except redis.RedisError as error:
            self._warn(error)
            return self._local_blocked_for(address)
        if int(count or 0) < self.limit:
            return 0
        return max(int(ttl), 1) if int(ttl) > 0 else self.window

    def blocked(self, address: str) -> bool:
        return self.blocked_for(address) > 0

    def record(self, address: str) -> None:
        try:
            self.redis_factory().eval(_RECORD, 1, self._key(address), self.window)
        except redis.RedisError as error:
            self._warn(error)
            with self._lock:
                self._local.setdefault(address, []).append(time.monotonic())

    def _local_blocked_for(self, address: str) -> int:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._local.get(address, []) if t > now - self.window]
            self._local[address] = recent
        if len(recent) < self.limit:
            return 0
        return max(1, int(recent[0] + self.window - now + 0.999))

    @staticmethod
    def _warn(error: redis.RedisError) -> None:
        log.warning(
            "console wrong-password limit: Redis did not answer; counting in this process only",
            extra={"error_type": type(error).__name__},
        )
