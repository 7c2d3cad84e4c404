"""Configuration from the environment, validated once at start.

Every process (receiver, worker, beat, CLI) reads the same `Settings`. A missing or malformed value
stops the process with one line naming the variable (`ConfigError`), never a traceback.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and is safe to print."""


def split_secrets(raw: SecretStr | None) -> list[str]:
    """Comma-separated secrets (several are valid during a rotation)."""
    if raw is None:
        return []
    return [part.strip() for part in raw.get_secret_value().split(",") if part.strip()]


class Settings(BaseSettings):
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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    # --- reliability (issue 4): the stranded-event sweeper -------------------------------------------------
    sweep_received_after: int = Field(
        default=60, ge=0, description="Re-enqueue rows still `received` (broker was down) after this many seconds."
    )
    sweep_stuck_after: int = Field(
        default=1800,
        ge=0,
        description="Re-enqueue rows `enqueued` but untouched this long (task lost or stuck); above RETRY_BACKOFF_MAX.",
    )
    sweep_batch: int = Field(default=500, ge=1, le=10_000, description="Rows claimed per sweep transaction.")

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
                if not base64.b64decode(key + "=" * (-len(key) % 4), validate=True):
                    raise ValueError
            except (binascii.Error, ValueError):
                raise ValueError("a secret is not valid base64 after whsec_") from None
        return value

    @model_validator(mode="after")
    def _retries_below_visibility_timeout(self) -> Settings:
        """A retry waiting longer than the visibility timeout would be redelivered while it still waits."""
        if self.retry_backoff_max >= self.visibility_timeout:
            raise ValueError("RETRY_BACKOFF_MAX must be below VISIBILITY_TIMEOUT")
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
