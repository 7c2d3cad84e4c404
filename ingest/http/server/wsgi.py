"""WSGI entry point for gunicorn: `gunicorn -c python:ingest.http.server.gunicorn_conf ingest.http.server.wsgi:app`.

`app` answers webhooks on every port but OPS_PORT, and operations on OPS_PORT (`ingest.http.ports`).
"""

import gc

from ingest.http.server.gevent_db import cooperative_database_waits

cooperative_database_waits()  # before any connection exists

from ingest.config.settings import get_settings  # noqa: E402
from ingest.http.ports import create_server_app  # noqa: E402
from ingest.observability.logs import configure_logging  # noqa: E402

configure_logging(get_settings().log_level, get_settings().log_format)
app = create_server_app()

# The ~130,000 objects that exist once the app is loaded live as long as the process. Left to the
# collector, every full collection walks them all: 60–100 ms with the whole gevent hub stopped, which was
# the receiver's p99 (bench: 150–270 ms stalls a few seconds apart at half its max rate). Frozen, they are
# never scanned again; a full collection then takes 2–3 ms.
gc.collect()
gc.freeze()
