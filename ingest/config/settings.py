"""Configuration from the environment, validated once at start.

Every process (receiver, worker, beat, CLI) reads the same `Settings`. A missing or malformed value
stops the process with one line naming the variable (`ConfigError`), never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.config.asaas_api import AsaasApiSettings
from ingest.config.credit_lots import CreditLotSettings

MIN_CLERK_KEY_BYTES = 16  # Svix issues 24-byte keys
MIN_CONSOLE_PASSWORD_CHARS = 12
MIN_ASAAS_TOKEN_CHARS = 16


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and is safe to print."""


def parse_networks(raw: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated IPs or CIDRs; raises ValueError naming the bad entry."""
    networks = []
    for part in (item.strip() for item in raw.split(",")):
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or CIDR") from None
    return networks


def split_secrets(raw: SecretStr | None) -> list[str]:
    """Comma-separated secrets (several are valid during a rotation)."""
    if raw is None:
        return []
    return [part.strip() for part in raw.get_secret_value().split(",") if part.strip()]


class Settings(BaseSettings, AsaasApiSettings, CreditLotSettings):
    """All of pedro-ingest's settings. Field names are the environment variable names."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = Field(description="PostgreSQL URL of the web app's database (Prisma's DATABASE_URL works).")
    celery_broker_url: str = Field(default="redis://localhost:6379/0", description="Celery broker (Redis) URL.")
    celery_queue: str = Field(default="pedro-ingest", description="Queue that carries webhook events.")
    clerk_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Clerk (Svix) signing secret `whsec_…`; comma-separated during rotation. Unset: Clerk refused.",
    )
    asaas_webhook_token: SecretStr | None = Field(
        default=None,
        description="Asaas `asaas-access-token` value; comma-separated during rotation. Unset: Asaas refused.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest accepted webhook body.")
    signup_credits: int = Field(default=100, ge=0, description="Credits granted when a user is first created.")
    db_connect_timeout: int = Field(default=3, ge=1, le=60, description="Seconds to wait for PostgreSQL.")
    db_pool_size: int = Field(default=5, ge=1, le=100, description="Connections kept per process.")
    task_max_retries: int = Field(default=8, ge=0, le=50, description="Retries of a transient failure.")
    retry_backoff_max: int = Field(default=600, ge=1, description="Longest wait between two retries (s).")
    visibility_timeout: int = Field(
        default=3600, ge=60, description="Seconds before Redis redelivers an unacknowledged task."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level: DEBUG, INFO, WARNING or ERROR (any case)."
    )
    # --- operations: logs, metrics, readiness ---
    log_format: Literal["json", "text"] = Field(
        default="json", description="`json`: one JSON object per line (production); `text`: readable local logs."
    )
    worker_metrics_port: int = Field(
        default=9808, ge=0, le=65535, description="Port of each worker's Prometheus `/metrics` endpoint; 0 disables."
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="Interface of the worker's `/metrics` (`0.0.0.0` in containers)."
    )
    ready_timeout: float = Field(
        default=2.0, gt=0, le=30, description="Seconds `/readyz` waits for PostgreSQL and for the broker."
    )

    # --- receiver under load and attack: the operations port, deadlines and bounds ---
    ops_host: str = Field(
        default="127.0.0.1", description="Interface of the operations port (`/metrics`, `/readyz`, `/openapi.json`)."
    )
    ops_port: int = Field(
        default=8001, ge=1, le=65535, description="Operations port, served by `serve` beside the webhook port."
    )
    ops_cache_seconds: float = Field(
        default=1.0, ge=0, le=60, description="Seconds `/metrics` and `/readyz` reuse what they last read."
    )
    console_password: SecretStr | None = Field(
        default=None,
        description="Operator console at `/console/` on the operations port (user `admin`). Unset: no console (404).",
    )
    console_secret_key: SecretStr | None = Field(
        default=None,
        description="Names console sessions in Redis (same on every receiver). Unset: a random key kept in Redis.",
    )
    console_session_minutes: int = Field(default=480, ge=5, le=10_080, description="Minutes a console sign-in lasts.")
    console_login_attempts: int = Field(
        default=5, ge=1, le=100, description="Wrong console passwords allowed per client address per minute."
    )
    body_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds a client has to send its whole body; then 408, closed."
    )
    max_connections: int = Field(
        default=3000, ge=10, le=20_000, description="Open connections per receiver process and port; more wait."
    )
    max_body_bytes_in_flight: int = Field(
        default=33_554_432, ge=65_536, description="Body bytes a receiver process holds at once; beyond: 503."
    )

    # ---- billing (Asaas receiver, plan grants) ----
    asaas_allowed_ips: str = Field(
        default="", description="Comma-separated IPs/CIDRs allowed to call /webhooks/asaas; empty: no IP check."
    )
    asaas_trusted_proxies: str = Field(
        default="", description="Comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed; empty: none."
    )
    asaas_unlinked_payments: Literal["fail", "ignore"] = Field(
        default="ignore",
        description="Asaas payment linked to no user and with no externalReference of ours (another product on "
        "the account): `ignore` (listed as ignored with its reason, replayable) or `fail`. Ours but unlinked: failed.",
    )
    clerk_trial_credits: int = Field(
        default=0, ge=0, le=1_000_000, description="Credits a Clerk free trial grants, once per subscription item."
    )

    # ---- periodic jobs (beat): reconciliation, Clerk resync, payload retention -----------------------
    celery_periodic_queue: str | None = Field(
        default=None, description="Queue for periodic jobs (default: CELERY_QUEUE + '-periodic'), off the event queue."
    )
    reconcile_interval: float = Field(default=3600, ge=1, description="Seconds between two reconciliation runs.")
    reconcile_policy: Literal["report", "fix"] = Field(
        default="report", description="Scheduled reconciliation: only report drift, or also fix it with a ledger row."
    )
    reconcile_page_size: int = Field(default=1000, ge=1, le=10_000, description="Balances per reconciliation page.")
    clerk_secret_key: SecretStr | None = Field(
        default=None, description="Clerk Backend API secret key `sk_…` for the user resync. Unset: resync skipped."
    )
    clerk_api_url: str = Field(default="https://api.clerk.com", description="Clerk Backend API base URL.")
    resync_interval: float = Field(default=21600, ge=1, description="Seconds between two Clerk user resyncs.")
    payload_retention_days: float = Field(
        default=30, gt=0, description="Payloads of processed/ignored events older than this are dropped."
    )
    retention_interval: float = Field(default=86400, ge=1, description="Seconds between two retention runs.")

    # --- reliability: the stranded-event sweeper -------------------------------------------------
    sweep_received_after: int = Field(
        default=60, ge=0, description="Re-enqueue rows still `received` (broker was down) after this many seconds."
    )
    sweep_stuck_after: int = Field(
        default=1800,
        ge=0,
        description="Re-enqueue rows `enqueued` but untouched this long (task lost or stuck); above RETRY_BACKOFF_MAX.",
    )
    sweep_lost_after: int = Field(
        default=60,
        ge=0,
        description="Ask the broker about rows `enqueued` and untouched this long; re-enqueue those it holds no "
        "message for (lost in a Redis restart or failover).",
    )
    sweep_batch: int = Field(default=500, ge=1, le=10_000, description="Rows claimed per sweep transaction.")
    sweep_interval: float = Field(default=60, ge=1, description="Seconds between two sweeps (beat).")

    # --- reliability: no single event holds a worker for long -----------------------------------
    task_soft_time_limit: float = Field(
        default=60, gt=0, description="Seconds an event may run before it is rolled back and retried (`time_limit`)."
    )
    task_time_limit: float = Field(
        default=90, gt=0, description="Seconds before a stuck task's process is killed (counted as a lost attempt)."
    )
    db_lock_timeout_ms: int = Field(
        default=5000, ge=0, description="Longest wait for a row lock in a worker transaction (ms; 0: no limit)."
    )
    db_statement_timeout_ms: int = Field(
        default=30000, ge=0, description="Longest statement in a worker transaction (ms; 0: no limit)."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        """`debug` and `DEBUG` are the same level (logging and Celery spell it in capitals)."""
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if not value.startswith(("postgres://", "postgresql://", "postgresql+psycopg2://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("celery_broker_url")
    @classmethod
    def _redis_only(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "redis+socket://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("clerk_webhook_secret")
    @classmethod
    def _svix_secrets(cls, value: SecretStr | None) -> SecretStr | None:
        for secret in split_secrets(value):
            if not secret.startswith("whsec_"):
                raise ValueError("each secret must start with whsec_ (copy it from the Clerk dashboard)")
            try:
                key = secret[len("whsec_") :]
                decoded = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("a secret is not valid base64 after whsec_") from None
            if len(decoded) < MIN_CLERK_KEY_BYTES:
                raise ValueError(f"a secret is too short: at least {MIN_CLERK_KEY_BYTES} bytes of key after whsec_")
        return value

    @field_validator("asaas_webhook_token")
    @classmethod
    def _strong_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        """A short token can be guessed: refuse it at start rather than accept forged payments."""
        for token in split_secrets(value):
            if len(token) < MIN_ASAAS_TOKEN_CHARS or len(set(token)) < 6:
                raise ValueError(f"a token is too weak: use at least {MIN_ASAAS_TOKEN_CHARS} random characters")
        return value

    @field_validator("console_password")
    @classmethod
    def _strong_console_password(cls, value: SecretStr | None) -> SecretStr | None:
        """The console can replay events and shows personal data: no short passwords."""
        if value is not None and len(value.get_secret_value()) < MIN_CONSOLE_PASSWORD_CHARS:
            raise ValueError(f"use at least {MIN_CONSOLE_PASSWORD_CHARS} characters")
        return value

    @field_validator("asaas_allowed_ips", "asaas_trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _budget_holds_one_body(self) -> Settings:
        if self.max_body_bytes_in_flight < self.max_body_bytes:
            raise ValueError("MAX_BODY_BYTES_IN_FLIGHT must be at least MAX_BODY_BYTES")
        return self

    @property
    def periodic_queue(self) -> str:
        return self.celery_periodic_queue or f"{self.celery_queue}-periodic"

    @model_validator(mode="after")
    def _retries_below_visibility_timeout(self) -> Settings:
        """A retry waiting longer than the visibility timeout would be redelivered while it still waits."""
        if self.retry_backoff_max >= self.visibility_timeout:
            raise ValueError("RETRY_BACKOFF_MAX must be below VISIBILITY_TIMEOUT")
        if not self.task_soft_time_limit < self.task_time_limit < self.visibility_timeout:
            raise ValueError("TASK_SOFT_TIME_LIMIT < TASK_TIME_LIMIT < VISIBILITY_TIMEOUT must hold")
        return self

    @property
    def clerk_secrets(self) -> list[str]:
        return split_secrets(self.clerk_webhook_secret)

    @property
    def asaas_tokens(self) -> list[str]:
        return split_secrets(self.asaas_webhook_token)


def describe_validation_error(error: ValidationError) -> str:
    """One line that names each bad variable without echoing its value (it may be a secret)."""
    parts = []
    for item in error.errors():
        name = ".".join(str(loc) for loc in item["loc"]).upper() or "settings"
        reason = "is missing" if item["type"] == "missing" else item["msg"].removeprefix("Value error, ")
        parts.append(f"{name} {reason}")
    return "configuration error: " + "; ".join(parts)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, raising `ConfigError` with a printable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    return load_settings()
