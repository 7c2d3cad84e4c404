"""Shapes of the Clerk payload fields pedro-ingest reads (extra fields are ignored).

Ids, emails and names carry the bounds of their columns, and every epoch time is normalized to
milliseconds (Clerk sends seconds in its examples, milliseconds live; see `ingest/formats/dates.py`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workers.handlers.bounds import Email, EpochMillis, Name, ProviderId, Text


class ClerkModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ClerkEmailAddress(ClerkModel):
    id: ProviderId
    email_address: Email


class ClerkUser(ClerkModel):
    """`data` of `user.created` / `user.updated` (and of a Backend API user)."""

    id: ProviderId
    email_addresses: list[ClerkEmailAddress] = Field(default=[], max_length=100)
    primary_email_address_id: ProviderId | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    banned: bool = False
    created_at: EpochMillis | None = None
    updated_at: EpochMillis | None = None

    @property
    def primary_email(self) -> str | None:
        for address in self.email_addresses:
            if address.id == self.primary_email_address_id:
                return address.email_address
        return None

    @property
    def full_name(self) -> str | None:
        return " ".join(part.strip() for part in (self.first_name, self.last_name) if part and part.strip()) or None


class ClerkDeletedObject(ClerkModel):
    """`data` of `user.deleted`."""

    id: ProviderId
    deleted: bool = True


class ClerkEnvelope(ClerkModel):
    type: Text
    timestamp: EpochMillis | None = None  # milliseconds, whatever unit Clerk sent
    data: dict[str, Any]


# ---- Clerk Billing (beta: fields are optional where Clerk has changed them) ----


class ClerkPayer(ClerkModel):
    """`payer`: `user_id` for user payers (their `organization_id` is an empty string)."""

    user_id: ProviderId | None = None
    organization_id: Text | None = None


class ClerkBillingPlan(ClerkModel):
    id: ProviderId | None = None
    slug: Text | None = None
    amount: int | None = None
    is_default: bool = False


class ClerkSubscriptionItem(ClerkModel):
    id: ProviderId
    status: Text | None = None
    is_free_trial: bool = False
    period_start: EpochMillis | None = None
    period_end: EpochMillis | None = None
    plan: ClerkBillingPlan | None = None
    plan_id: ProviderId | None = None
    payer: ClerkPayer | None = None

    @property
    def plan_ids(self) -> tuple[str | None, str | None]:
        """(Clerk plan id, slug)."""
        return (self.plan.id if self.plan and self.plan.id else self.plan_id, self.plan.slug if self.plan else None)

    @property
    def free(self) -> bool:
        return self.plan is not None and (self.plan.amount == 0 or (self.plan.is_default and not self.plan.amount))


class ClerkSubscription(ClerkModel):
    id: ProviderId
    status: Text | None = None
    payer_id: ProviderId | None = None
    payer: ClerkPayer | None = None
    items: list[ClerkSubscriptionItem] = []


class ClerkPaymentAttempt(ClerkModel):
    id: ProviderId
    status: Text | None = None
    charge_type: Text | None = None
    payer: ClerkPayer | None = None
    subscription_items: list[ClerkSubscriptionItem] = []
