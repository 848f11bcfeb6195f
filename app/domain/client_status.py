"""What a client sees of its ticket: where it is, when the first response is due, the solution
once approved and the notification once sent.

Built from the full status (app/domain/status.py) by taking named fields only, never by
removing some: the proposal before approval, engineers' notes, approvers, fallback and error
texts and the customer's system details never reach a client, whatever the full status grows.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.domain.status import Stage

# The final solution is in the output only after an engineer approved it.
_SOLUTION_STAGES = {"notifying", "completed"}


class ClientNotification(BaseModel):
    kind: str = Field(description="resolved, not_entitled, escalated or cancelled")
    subject: str
    body: str
    sent_at: str | None = None


class ClientTicketStatus(BaseModel):
    """GET /support/status/{ticket_id} for a client token."""

    view: Literal["client"] = "client"
    ticket_id: str
    stage: Stage
    sla_due: str | None = Field(default=None, description="first-response deadline")
    solution: str | None = Field(default=None, description="the approved solution, once approved")
    notification: ClientNotification | None = Field(default=None, description="the message sent to the customer")
    created_at: str | None = None
    last_updated_at: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def to_client_status(full_status: dict | BaseModel) -> ClientTicketStatus:
    """The client view of a full TicketStatus (a model or its model_dump())."""
    full = full_status.model_dump() if isinstance(full_status, BaseModel) else full_status
    output = full.get("output") if isinstance(full.get("output"), dict) else {}
    stage = full["stage"]
    notification = output.get("notification")
    sent = None
    if isinstance(notification, dict) and _text(notification.get("subject")) and _text(notification.get("body")):
        sent = ClientNotification(kind=_text(notification.get("kind")) or "", subject=notification["subject"],
                                  body=notification["body"], sent_at=_text(notification.get("created_at")))
    return ClientTicketStatus(
        ticket_id=full["ticket_id"], stage=stage, sla_due=_text(full.get("sla_due")),
        solution=_text(output.get("final_solution")) if stage in _SOLUTION_STAGES else None,
        notification=sent, created_at=_text(full.get("created_at")),
        last_updated_at=_text(full.get("last_updated_at")))
