"""Which ticket, and so which customer, a tool call serves: the one whose workflow started the
agent run, never one the model names.

A tool only sees the arguments the model chose. It runs inside its run's `run_tool` activity;
there `TicketAgent` reads the run's input (`AgentRunInput`, written by the ticket workflow,
never by the model) and puts it in `ticket_scope` for the tools.
"""

from __future__ import annotations

from contextvars import ContextVar

from app.agents.runs import AgentRunInput
from app.activities import deps

# The ticket the executing tool call serves; None outside a tool call.
ticket_scope: ContextVar[AgentRunInput | None] = ContextVar("ticket_scope", default=None)


class UnboundToolCall(RuntimeError):
    """A ticket tool ran without a ticket to serve."""


def run_scope(run_id: str) -> AgentRunInput:
    """The input the ticket workflow started agent run `run_id` with."""
    run = deps.current().workflows.get(run_id)
    if run is None or not run.input:
        raise UnboundToolCall(f"agent run {run_id!r} has no recorded input")
    return AgentRunInput.model_validate(run.input)


def ticket_customer_id() -> str:
    scope = ticket_scope.get()
    if scope is None:
        raise UnboundToolCall("ticket tools run only inside an agent run")
    return scope.customer_id
