"""An engineer's decision on a proposed solution.

Strictly typed (`approved` is a JSON boolean, never 0/1 or "true"), and the one cross-field rule
(`final_solution` only with an approval) is part of the schema itself: a decision is either an
Approval or a Rejection, each closed to other fields, so the OpenAPI document states exactly
what the server accepts.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, RootModel, model_validator
from pydantic_core import PydanticCustomError

FINAL_SOLUTION_MAX = 20_000
SUPPORT_NOTES_MAX = 10_000


def _trimmed(value: str | None) -> str | None:
    """Surrounding blanks dropped after validation (so what is accepted is what the schema
    says); a blank text counts as none."""
    return (value.strip() or None) if isinstance(value, str) else value


def _json_boolean(value):
    """Only true or false: pydantic would take 0 and 1 for a boolean literal (0 == False)."""
    if not isinstance(value, bool):
        raise PydanticCustomError("bool_type", "approved must be true or false")
    return value


_Revision = Annotated[int | None, Field(default=None, ge=0, description=(
    "the proposal revision this decision was made on; 409 when another revision is waiting"))]

_Notes = Annotated[str | None, Field(default=None, max_length=SUPPORT_NOTES_MAX,
                                     description="why; with a rejection, guides the revised proposal"),
                   AfterValidator(_trimmed)]


class Approval(BaseModel):
    """Approve the proposal, or replace it with `final_solution`."""

    model_config = ConfigDict(extra="forbid", title="Approval")

    approved: Annotated[Literal[True], BeforeValidator(_json_boolean)]
    final_solution: Annotated[str | None, Field(max_length=FINAL_SOLUTION_MAX, description="sent instead of the proposal"),
                              AfterValidator(_trimmed)] = None
    support_notes: _Notes = None
    revision: _Revision = None


class Rejection(BaseModel):
    """Reject the proposal: the expert analysis runs again with the notes (or escalates)."""

    model_config = ConfigDict(extra="forbid", title="Rejection")

    approved: Annotated[Literal[False], BeforeValidator(_json_boolean)]
    final_solution: None = Field(default=None, description="always null: only an approval carries one")
    support_notes: _Notes = None
    revision: _Revision = None


class DecisionRequest(RootModel[Union[Approval, Rejection]]):
    """Body of POST /support/approve/{ticket_id}: an Approval or a Rejection."""

    @model_validator(mode="before")
    @classmethod
    def _say_why(cls, data):  # noqa: N805 - pydantic validator
        # The union's own errors ("Input should be True", "extra inputs") would not say it.
        if isinstance(data, dict) and data.get("approved") is False and data.get("final_solution") is not None:
            raise PydanticCustomError("final_solution_without_approval", "final_solution only applies to an approval")
        return data

    @property
    def approved(self) -> bool:
        return self.root.approved

    @property
    def revision(self) -> int | None:
        return self.root.revision

    def model_dump(self, **kwargs) -> dict:  # the decision's fields, as the workflow receives them
        return self.root.model_dump(**kwargs)


class DecisionAccepted(BaseModel):
    status: Literal["accepted", "delivered"] = Field(
        description="accepted: the workflow applied it; delivered: raised, not yet acknowledged")
    ticket_id: str
    instance_id: str
    revision: int
    stage: str | None = Field(default=None, description="the ticket's stage after the decision")
