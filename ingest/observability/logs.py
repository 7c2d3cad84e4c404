"""Process-wide logging: one JSON object per line (or readable text for local runs).

Every process (receiver, worker, beat, CLI) calls `configure_logging` once. A filter drops any record
attribute whose name says it could carry a secret or a payload, so a careless `extra=` cannot leak one.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

# Attribute names that must never reach a log line, whatever a caller passes in `extra=`.
FORBIDDEN_FIELDS = frozenset(
    {"payload", "body", "data", "headers", "signature", "secret", "token", "password", "authorization"}
)
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"


class DropSensitiveFields(logging.Filter):
    """Removes attributes named like secrets or bodies from every record (defence in depth)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in FORBIDDEN_FIELDS.intersection(record.__dict__):
            delattr(record, name)
        return True


# Attributes every LogRecord has; anything else came from `extra=` and is shown as key=value in text.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class TextFormatter(logging.Formatter):
    """Readable local lines, with the structured fields appended as `key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD and v is not None)
        return f"{line} {extras}" if extras else line


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "text":
        return TextFormatter(TEXT_FORMAT)
    return JsonFormatter(
        JSON_FIELDS,
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        json_ensure_ascii=False,
    )


def configure_logging(level: str = "INFO", log_format: str = "json") -> None:
    """Send every logger's records to stderr in the chosen format (replaces earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(DropSensitiveFields())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that would otherwise log connection URLs or request bodies at INFO/DEBUG.
    for noisy in ("urllib3", "kombu", "amqp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
