"""WSGI entry point for gunicorn: `gunicorn -c python:ingest.gunicorn_conf ingest.wsgi:app`."""

from ingest.green import cooperative_database_waits

cooperative_database_waits()  # before any connection exists

from ingest.app import create_app  # noqa: E402
from ingest.logs import configure_logging  # noqa: E402
from ingest.settings import get_settings  # noqa: E402

configure_logging(get_settings().log_level, get_settings().log_format)
app = create_app()
