"""Builds both agents at startup and registers their workflows (each a named version:
app/agents/versions.py) and activities on the app's WorkflowRuntime. Call it once the sidecar
is up: a DurableAgent reads the sidecar's metadata when it is built (and blocks for a minute,
then fails, when there is none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dapr.ext.workflow import WorkflowRuntime

from app.agents.runs import EXPERT_WORKFLOW, TRIAGE_WORKFLOW
from app.core.config import get_settings

if TYPE_CHECKING:
    from app.agents.ticket_agent import TicketAgent


@dataclass(frozen=True)
class TicketAgents:
    triage: "TicketAgent"
    expert: "TicketAgent"


_agents: TicketAgents | None = None


def register_agents(runtime: WorkflowRuntime) -> TicketAgents:
    # Imported here: dapr_agents takes seconds to import and only LLM mode needs it.
    from app.agents.chat_client import chat_client
    from app.agents.expert_agent import build_expert_agent
    from app.agents.triage_agent import build_triage_agent

    global _agents
    store = get_settings().agent_state_store
    agents = TicketAgents(triage=build_triage_agent(chat_client(), store),
                          expert=build_expert_agent(chat_client(), store))
    for agent, workflow_name in ((agents.triage, TRIAGE_WORKFLOW), (agents.expert, EXPERT_WORKFLOW)):
        # The ticket workflow calls the agents by these names without importing dapr_agents.
        if agent.agent_workflow_name != workflow_name:
            raise RuntimeError(f"agent {agent.name!r} registers as {agent.agent_workflow_name!r}, "
                               f"not {workflow_name!r}")
        agent.register(runtime)
    _agents = agents
    return agents


def registered_agents() -> TicketAgents:
    if _agents is None:
        raise RuntimeError("the agents are not registered (LLM mode off, or startup not done)")
    return _agents
