"""What the ticket workflow and the agents agree on: the agents' names and workflow names, each
run's instance id, and the input a run starts with."""

from __future__ import annotations


# Names and run ids are part of the workflow's contracts (app/workflows/contracts.py).
from app.workflows.contracts import (AgentRunInput,  # noqa: F401
                                     EXPERT_AGENT, EXPERT_AGENT_WORKFLOW as EXPERT_WORKFLOW,  # noqa: F401
                                     TRIAGE_AGENT, TRIAGE_AGENT_WORKFLOW as TRIAGE_WORKFLOW,
                                     agent_workflow_name, expert_run_id, triage_run_id)
