"""Which customer a tool call serves: the customer of the ticket that started the agent run,
never one the model names.

A tool only sees the arguments the model chose. It runs inside its run's `run_tool` activity,
where `TicketAgent` sets `calling_run` to that activity's workflow instance: the agent run the
ticket workflow started. That run's input (`AgentRunInput`) was written by the ticket workflow,
so the customer read from it is the ticket's own, whatever the ticket text or the model say.
"""

from __future__ import annotations

from contextvars import ContextVar

from app.agents.runs import AgentRunInput
from app.core import clients

# The agent run whose tool is executing; None outside a tool call.
calling_run: ContextVar[str | None] = ContextVar("calling_run", default=None)


class UnboundToolCall(RuntimeError):
    """A ticket tool ran without a ticket to serve."""


def ticket_customer_id() -> str:
    run_id = calling_run.get()
    if run_id is None:
        raise UnboundToolCall("ticket tools run only inside an agent run")
    state = clients.workflow_client().get_workflow_state(run_id, fetch_payloads=True)
    if state is None or not state.serialized_input:
        raise UnboundToolCall(f"agent run {run_id!r} has no recorded input")
    return AgentRunInput.model_validate_json(state.serialized_input).customer_id
