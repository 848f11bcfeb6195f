"""What GET /support/status/{ticket_id} answers to support staff."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.workflows.contracts import FINAL_STAGES, Stage

__all__ = ["FINAL_STAGES", "Stage", "TicketStatus"]


class TicketStatus(BaseModel):
    view: Literal["staff"] = "staff"
    ticket_id: str
    instance_id: str
    status: str = Field(description="workflow runtime status: running, completed, failed, terminated, suspended")
    stage: Stage
    version: str | None = Field(default=None, description="the ticket workflow's version this ticket runs on")
    output: dict[str, Any] = Field(default_factory=dict,
                                   description="the workflow's result once finished, else its progress "
                                               "(with the proposal waiting for a decision)")
    created_at: str | None = None
    last_updated_at: str | None = None
    sla_due: str | None = Field(default=None, description="first-response deadline (triage rubric)")
    waiting_seconds: float | None = Field(default=None, description="time waiting for a decision")
    awaiting_decision: bool = False
    revision: int = Field(default=0, description="the proposal revision (waiting, or the last one)")
    confidence: float | None = Field(default=None, description="the proposal's confidence, 0..1")
    decision: dict[str, Any] | None = None
    escalations: list[str] = Field(default_factory=list)
