"""What the ticket workflow and the agents agree on: the agents' names and workflow names, each
run's instance id, and the input a run starts with."""

from __future__ import annotations

from pydantic import BaseModel

TRIAGE_AGENT = "ticket-triage"
EXPERT_AGENT = "ticket-expert"


def agent_workflow_name(agent: str) -> str:
    """The name dapr-agents registers an agent's workflow under (checked at registration)."""
    return f"dapr.agents.{agent}.workflow"


TRIAGE_WORKFLOW = agent_workflow_name(TRIAGE_AGENT)
EXPERT_WORKFLOW = agent_workflow_name(EXPERT_AGENT)


# Run ids join the ticket id with '.', which ticket ids never contain (TICKET_ID_PATTERN): no
# ticket can take a run's id, and no ticket route can address a run.
def triage_run_id(ticket_id: str) -> str:
    return f"{ticket_id}.triage"


def expert_run_id(ticket_id: str, revision: int) -> str:
    # One run per revision: a child workflow id is never reused within its parent.
    return f"{ticket_id}.expert-{revision}"


class AgentRunInput(BaseModel):
    """A run's input, written by the ticket workflow (never by the model). The agent reads
    `task`; the tools read `customer_id` to know whose data they may return."""

    task: str
    ticket_id: str
    customer_id: str
