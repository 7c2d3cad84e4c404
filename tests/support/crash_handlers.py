"""Handlers loaded only into test workers (`pedro-ingest worker -I tests.support.crash_handlers`).

`("test", "crash")` kills its own process, as a segfaulting extension or an OOM kill would, until the
file named in the payload exists (the "fix").
"""

from __future__ import annotations

import os

from workers.handlers import HANDLERS


def crash_until_fixed(session, event, context) -> None:
    if not os.path.exists(event.payload["fixed_when"]):
        os._exit(1)


HANDLERS[("test", "crash")] = crash_until_fixed
