"""What triage decides about a ticket."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Priority = Literal["critical", "high", "medium", "low"]


class Sla(BaseModel):
    first_response_target: str  # as the rubric says it, e.g. "4 h", "1 business day"
    first_response_due: str  # ISO 8601 UTC deadline counted from filing


class TriageResult(BaseModel):
    ticket_id: str
    customer_id: str
    customer_name: str | None
    plan: str | None
    entitled: bool
    entitlement_reason: str
    sla: Sla | None
    category: str
    priority: Priority
    summary: str
    system_info: dict | None
    kb_queries: list[str]
    generated_by: Literal["offline", "llm"] = "offline"
    # Why: the signals that set priority and category, for the engineer reading the triage.
    signals: list[str] = Field(default_factory=list)
    # Whether the ticket is about running Dapr applications that the knowledge base covers; a
    # ticket that is not goes to a person (escalated, reason out_of_scope).
    in_scope: bool = True
    scope_score: float | None = None
    scope_reason: str | None = None
    llm_fallback_reason: str | None = None
