"""The ticket as filed, and what the workflow carries about it."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Dapr workflow instance ids: letters, digits, '_' and '-'.
TICKET_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_TICKET_ID = re.compile(TICKET_ID_PATTERN)


def is_valid_ticket_id(value: str) -> bool:
    return bool(_TICKET_ID.match(value))


class TicketRequest(BaseModel):
    """Body of POST /support/ticket."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ticket_id: str = Field(pattern=TICKET_ID_PATTERN, examples=["TKT-1001"])
    customer_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", examples=["CUST001"])
    description: str = Field(min_length=1, max_length=10_000,
                             examples=["Sidecar cannot reach my app on port 5000"])

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:  # noqa: N805
        if not value.strip():
            raise ValueError("description must not be blank")
        return value


class TicketAccepted(BaseModel):
    instance_id: str
    ticket_id: str
    status: str = "workflow_started"


class TicketWorkflowInput(BaseModel):
    """The workflow's input: the ticket and the few settings the orchestration must decide on.

    Settings that shape the orchestration (timer lengths, revision limit) travel in the input so
    a replay sees the values the instance started with. Secrets never do.
    """

    ticket_id: str
    customer_id: str
    description: str
    filed_at: str  # ISO 8601, UTC
    approval_timeout_seconds: float
    max_revisions: int = 2
    filed_by: str | None = None  # the API client's name, for "clients read their own tickets"
    # LLM agents triage and analyse the ticket. Fixed at filing: configuring an LLM (or removing
    # it) later does not change an instance in flight.
    use_agents: bool = False
