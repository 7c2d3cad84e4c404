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
