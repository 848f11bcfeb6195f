"""The ticket as filed, and what the workflow carries about it."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

# Dapr workflow instance ids: letters, digits, '_' and '-'.
TICKET_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_TICKET_ID = re.compile(TICKET_ID_PATTERN)
NOT_BLANK = "[^\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"


def is_valid_ticket_id(value: str) -> bool:
    return bool(_TICKET_ID.match(value))


class TicketRequest(BaseModel):
    """Body of POST /support/ticket."""

    # Nothing is trimmed before validation: what the document's patterns accept is accepted.
    model_config = ConfigDict(extra="forbid")

    ticket_id: str = Field(pattern=TICKET_ID_PATTERN, examples=["TKT-1001"])
    customer_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", examples=["CUST001"])
    # At least one character that is not white space (the same class in JSON Schema and here).
    description: str = Field(min_length=1, max_length=10_000, pattern=NOT_BLANK,
                             examples=["Sidecar cannot reach my app on port 5000"])



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
    # How long an agent run may take before the ticket goes on without it (offline path).
    agent_timeout_seconds: float = 600.0
