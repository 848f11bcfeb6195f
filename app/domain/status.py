"""What GET /support/status/{ticket_id} answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Stage = Literal["pending", "triage", "expert_analysis", "awaiting_approval", "notifying",
                "completed", "not_entitled", "escalated", "cancelled", "failed"]
FINAL_STAGES = {"completed", "not_entitled", "escalated", "cancelled", "failed"}


class TicketStatus(BaseModel):
    ticket_id: str
    instance_id: str
    status: str = Field(description="workflow runtime status: running, completed, failed, ...")
    stage: Stage
    output: dict[str, Any] = Field(default_factory=dict,
                                   description="the workflow's result once finished, else its progress")
    created_at: str | None = None
    last_updated_at: str | None = None
    sla_due: str | None = Field(default=None, description="first-response deadline (triage rubric)")
    waiting_seconds: float | None = Field(default=None, description="time waiting for a decision")
    revision: int = Field(default=0, description="how many times the proposal was revised")
    decision: dict[str, Any] | None = None
    escalations: list[str] = Field(default_factory=list)
