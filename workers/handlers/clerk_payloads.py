"""Shapes of the Clerk payload fields pedro-ingest reads (extra fields are ignored)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ClerkModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ClerkEmailAddress(ClerkModel):
    id: str
    email_address: str


class ClerkUser(ClerkModel):
    """`data` of `user.created` / `user.updated` (and of a Backend API user)."""

    id: str = Field(min_length=1)
    email_addresses: list[ClerkEmailAddress] = []
    primary_email_address_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    banned: bool = False
    created_at: int | None = None
    updated_at: int | None = None

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

    id: str = Field(min_length=1)
    deleted: bool = True


class ClerkEnvelope(ClerkModel):
    type: str
    timestamp: int | None = None
    data: dict


# ---- Clerk Billing (beta: fields are optional where Clerk has changed them) ----


class ClerkPayer(ClerkModel):
    """`payer`: `user_id` for user payers (their `organization_id` is an empty string)."""

    user_id: str | None = None
    organization_id: str | None = None


class ClerkBillingPlan(ClerkModel):
    id: str | None = None
    slug: str | None = None
    amount: int | None = None
    is_default: bool = False


class ClerkSubscriptionItem(ClerkModel):
    id: str = Field(min_length=1)
    status: str | None = None
    period_start: int | None = None
    period_end: int | None = None
    plan: ClerkBillingPlan | None = None
    plan_id: str | None = None
    payer: ClerkPayer | None = None

    @property
    def plan_ids(self) -> tuple[str | None, str | None]:
        """(Clerk plan id, slug)."""
        return (self.plan.id if self.plan and self.plan.id else self.plan_id, self.plan.slug if self.plan else None)

    @property
    def free(self) -> bool:
        return self.plan is not None and (self.plan.amount == 0 or (self.plan.is_default and not self.plan.amount))


class ClerkSubscription(ClerkModel):
    id: str = Field(min_length=1)
    status: str | None = None
    payer_id: str | None = None
    payer: ClerkPayer | None = None
    items: list[ClerkSubscriptionItem] = []


class ClerkPaymentAttempt(ClerkModel):
    id: str = Field(min_length=1)
    status: str | None = None
    charge_type: str | None = None
    payer: ClerkPayer | None = None
    subscription_items: list[ClerkSubscriptionItem] = []
