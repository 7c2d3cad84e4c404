"""Settings of the Asaas API client: the payment backfill, the webhook queue watch, installment totals.

A mixin of `ingest.config.settings.Settings` (one environment, one table in README); kept apart because
it is one concern with many knobs.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class AsaasApiSettings(BaseModel):
    asaas_api_key: SecretStr | None = Field(
        default=None,
        description="Asaas API key (`$aact_…`): payment backfill, queue watch, installment totals. Unset: skipped.",
    )
    asaas_api_url: str = Field(
        default="https://api.asaas.com/v3",
        description="Asaas API base URL; the sandbox is `https://api-sandbox.asaas.com/v3`.",
    )
    asaas_api_concurrency: int = Field(
        default=4, ge=1, le=50, description="Requests in flight to the Asaas API across all workers (Asaas allows 50)."
    )
    asaas_api_quota: int = Field(
        default=5000,
        ge=1,
        le=25_000,
        description="Our share of the account's 25,000 requests per 12 h (the web app uses the rest).",
    )
    asaas_api_budget: int = Field(default=1000, ge=1, description="Most Asaas API requests one backfill run makes.")
    payment_sync_interval: float = Field(default=21600, ge=60, description="Seconds between two payment backfills.")
    payment_sync_lookback_days: int = Field(
        default=3, ge=1, le=400, description="Days a backfill covers when no earlier run says where to start."
    )
    payment_sync_status_lookback_days: int = Field(
        default=120,
        ge=1,
        le=400,
        description="Days of charges re-read by status (confirmed, refunded, charged back) in every backfill.",
    )
    asaas_webhook_id: str | None = Field(
        default=None, description="Our Asaas webhook's id for the queue watch (else found by ASAAS_WEBHOOK_URL)."
    )
    asaas_webhook_url: str | None = Field(
        default=None, description="Our receiver's public Asaas URL as configured in Asaas (to find our webhook)."
    )
    asaas_resume_queue: bool = Field(
        default=False, description="Resume a paused Asaas webhook queue when our receiver is ready, then backfill."
    )
    receiver_ready_url: str | None = Field(
        default=None,
        description="The receiver's operations-port `/readyz` (`http://127.0.0.1:8001/readyz`), checked first.",
    )
    asaas_queue_watch_interval: float = Field(
        default=300, ge=30, description="Seconds between two checks of the Asaas webhook queue."
    )
