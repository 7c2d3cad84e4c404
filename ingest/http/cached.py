"""A value read at most once per interval, whoever asks: what `/metrics` and `/readyz` answer from.

Both read PostgreSQL and Redis (and `/metrics` every process's sample files). Asked by a thousand clients
in a loop, they did that work a thousand times over and slowed webhook acknowledgements by seconds. Now
each interval pays for one reading; callers meanwhile get the last one, and callers arriving while it is
being made wait for it instead of starting their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Cached(Generic[T]):
    def __init__(self, seconds: float, read: Callable[[], T]) -> None:
        self.seconds = seconds
        self.read = read
        self._value: tuple[T] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def _fresh(self) -> tuple[T] | None:
        if self._value is not None and time.monotonic() - self._read_at < self.seconds:
            return self._value
        return None

    def get(self) -> T:
        value = self._fresh()
        if value is not None:
            return value[0]
        with self._lock:
            value = self._fresh()
            if value is None:
                value = (self.read(),)
                self._value, self._read_at = value, time.monotonic()
            return value[0]
