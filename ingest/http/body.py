"""Reading a webhook body as a hostile client might send it: slowly, endlessly, or many at once.

Three bounds, each answered before a byte more is buffered: the size (`MAX_BODY_BYTES`, also for chunked
bodies, which declare no length: 413), the time to send it (`BODY_TIMEOUT` from the first body byte
asked for: 408 and the connection is closed) and the bytes all of a process's requests may hold while
their bodies arrive (`MAX_BODY_BYTES_IN_FLIGHT`: 503 with `Retry-After`, so a provider retries later).
Without them, a few thousand connections each sending one byte a minute hold every slot, and a few
hundred almost complete 1 MiB bodies hold hundreds of MiB.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from gunicorn.http.errors import NoMoreData, ParseException

from ingest.http.server.gevent_db import gevent_active
from ingest.receiver.errors import WebhookRejected

CHUNK = 65_536
# gunicorn's parse errors, raised while the app reads a chunked body, and its "the client went away"
_MALFORMED: tuple[type[BaseException], ...] = (ParseException, NoMoreData)


class BodyTimeout(WebhookRejected):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, "body_timeout", f"the body was not received within {seconds:g} s")


def too_large(limit: int) -> WebhookRejected:
    return WebhookRejected(413, "body_too_large", f"body exceeds {limit} bytes")


class BodyBudget:
    """Bytes this process may hold for bodies still arriving; `take` refuses beyond the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if self.held + size > self.limit:
                return False
            self.held += size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self.held -= size


class BodyReader:
    """One per app: the limits, the budget and how to impose a deadline in this server."""

    def __init__(self, limit: int, timeout: float, budget: BodyBudget) -> None:
        self.limit = limit
        self.timeout = timeout
        self.budget = budget
        self._cooperative = gevent_active()

    def read(self, environ: dict[str, Any]) -> bytes:
        declared = _content_length(environ)
        if declared is not None and declared > self.limit:
            stop_reading(environ)  # else the server would read (and drop) all of it before the next request
            raise too_large(self.limit)
        if declared is None and not environ.get("wsgi.input_terminated"):
            return b""  # neither a length nor a server that knows where the body ends (WSGI: no body)
        stream = environ["wsgi.input"]
        reserved = 0
        chunks: list[bytes] = []
        received = 0
        try:
            with self._deadline(environ):
                while True:
                    want = min(CHUNK, self.limit + 1) if declared is None else declared - received
                    if want <= 0:
                        break
                    if not self.budget.take(want):
                        stop_reading(environ)  # else gunicorn would read (and drop) the whole body anyway
                        raise WebhookRejected(
                            503, "server_busy", "too many bodies in flight; retry later", retry_after=1
                        )
                    reserved += want
                    data = _read(stream, want, environ)
                    if not data:
                        break
                    chunks.append(data)
                    received += len(data)
                    if received > self.limit:  # only a chunked body gets here
                        stop_reading(environ)
                        raise too_large(self.limit)
        finally:
            self.budget.give(reserved)
        if declared is not None and received < declared:  # the client closed early: never a shorter body
            raise WebhookRejected(400, "malformed_body", "the body ended before its declared length")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @contextlib.contextmanager
    def _deadline(self, environ: dict[str, Any]) -> Iterator[None]:
        if not self._cooperative:  # the development server and test clients: no deadline
            yield
            return
        import gevent

        try:
            with gevent.Timeout(self.timeout, BodyTimeout(self.timeout)):
                yield
        except BodyTimeout:
            stop_reading(environ)
            raise


def _read(stream: Any, size: int, environ: dict[str, Any]) -> bytes:
    """One read; a body the server cannot parse (a chunk size such as `0x10`, `-1` or `zz`, a missing chunk
    terminator) or that ends before its declared length is the client's mistake: 400, never a 500."""
    try:
        return bytes(stream.read(size))
    except _MALFORMED as error:
        stop_reading(environ)
        detail = "the body ended before its declared length" if isinstance(error, OSError) else "malformed body framing"
        raise WebhookRejected(400, "malformed_body", f"{detail} ({type(error).__name__})") from None


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    if not raw:
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        raise WebhookRejected(400, "invalid_header", "Content-Length is not a number") from None


def stop_reading(environ: dict[str, Any]) -> None:
    """Nothing more is read from this client: the response goes out, then the connection closes.

    gunicorn would otherwise drain the rest of the body before its next request (for up to its keep-alive
    timeout, and without yielding to other requests while data keeps arriving); shut for reading, the
    socket reports end of data at once and gunicorn closes it.
    """
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
