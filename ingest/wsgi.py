"""WSGI entry point for gunicorn: `gunicorn -c python:ingest.gunicorn_conf ingest.wsgi:app`."""

from ingest.app import create_app
from ingest.logs import configure_logging
from ingest.settings import get_settings

configure_logging(get_settings().log_level, get_settings().log_format)
app = create_app()
