"""Customer and system records as kept in customer-state and system-state."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Plan = Literal["enterprise", "professional", "basic"]


class Customer(BaseModel):
    customer_id: str
    name: str
    plan: Plan
    contact_email: str | None = None


class SystemInfo(BaseModel):
    customer_id: str
    dapr_version: str | None = None
    cloud: str | None = None
    platform: str | None = None
    applications: list[str] = Field(default_factory=list)
