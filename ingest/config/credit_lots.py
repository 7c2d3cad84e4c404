"""Settings of credit lots: plan periods' grace, rollover at renewal, the expiry job.

A mixin of `ingest.config.settings.Settings` (one environment, one table in README). `CREDIT_GRANT_POLICY`
stays an alias: `add` = rollover `all`, `reset` = rollover `none`; setting it and `PLAN_CREDITS_ROLLOVER`
both is a start-up error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator


class CreditLotSettings(BaseModel):
    credit_grant_policy: Literal["add", "reset"] = Field(
        default="add", description="Alias: `add` = rollover `all`, `reset` = `none`."
    )
    plan_credits_rollover: str | None = Field(
        default=None,
        description="Renewal carries over `none` (unset), `all` or N credits.",
    )
    plan_credits_grace: int = Field(default=259200, ge=0, description="Grace (s) after a plan period.")
    credit_expiry_interval: float = Field(default=300, ge=1, description="Seconds between expiry runs.")
    reversal_shortfall: Literal["debt", "forgive"] = Field(
        default="debt", description="Reversal shortfall: `debt` or `forgive`."
    )

    @field_validator("plan_credits_rollover")
    @classmethod
    def _rollover(cls, value: str | None) -> str | None:
        if value is not None and value not in ("none", "all") and not (value.isdigit() and int(value) >= 0):
            raise ValueError("must be none, all or a number of credits")
        return value

    @model_validator(mode="after")
    def _one_rollover_setting(self) -> CreditLotSettings:
        self.plan_rollover  # noqa: B018  (raises when both are set)
        return self

    @property
    def plan_rollover(self) -> int | None:
        """Credits a renewal carries over: 0, a cap, or None for all."""
        explicit = "credit_grant_policy" in self.model_fields_set
        return rollover_cap(self.plan_credits_rollover, self.credit_grant_policy if explicit else None)


def rollover_cap(rollover: str | None, grant_policy: str | None) -> int | None:
    """Credits carried at renewal: 0 (none), a cap, or None (all); `grant_policy` only when set explicitly."""
    if rollover is not None and grant_policy is not None:
        raise ValueError("set PLAN_CREDITS_ROLLOVER or CREDIT_GRANT_POLICY (its alias), not both")
    chosen = rollover or {"add": "all", "reset": "none", None: "none"}[grant_policy]
    return None if chosen == "all" else 0 if chosen == "none" else int(chosen)
