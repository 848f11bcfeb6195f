"""An engineer's decision on a proposed solution."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DecisionRequest(BaseModel):
    """Body of POST /support/approve/{ticket_id}."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    approved: bool
    final_solution: str | None = Field(default=None, max_length=20_000)
    support_notes: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _consistent(self):
        if not self.approved and self.final_solution:
            raise ValueError("final_solution only applies to an approval")
        return self


class DecisionAccepted(BaseModel):
    status: str = "approval_sent"
    ticket_id: str
    instance_id: str
