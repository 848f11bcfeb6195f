"""The app's WorkflowRuntime, with every workflow and activity registered (and, in LLM mode,
the agents)."""

from __future__ import annotations

import functools
import logging

from dapr.ext.workflow import WorkflowRuntime

from app.activities.agent_runs import stop_agent_runs
from app.activities.escalation import escalate_ticket
from app.activities.kb_search import search_knowledge_base
from app.activities.notification import notify_customer
from app.activities.solution import propose_solution
from app.activities.triage import triage_ticket
from app.agents.structured import structure_expert, structure_triage
from app.core.logging import sdk_logger_options
from app.workflows.ticket_workflow import ticket_workflow

ACTIVITIES = (triage_ticket, search_knowledge_base, propose_solution, escalate_ticket, notify_customer,
              structure_triage, structure_expert, stop_agent_runs)


logger = logging.getLogger("app.activities")


def logged(activity):
    """Logs an activity's failure with the ticket id (the workflow's retry policy decides what
    happens next), then re-raises."""

    @functools.wraps(activity)
    def run(ctx, request):
        try:
            return activity(ctx, request)
        except Exception as error:
            ticket_id = request.get("ticket_id") or request.get("ticket", {}).get("ticket_id")
            logger.warning("activity failed", extra={"ticket_id": ticket_id, "activity": activity.__name__,
                                                     "error": f"{type(error).__name__}: {error}"})
            raise

    return run


def build_workflow_runtime(with_agents: bool = False) -> WorkflowRuntime:
    """With agents, call it once the sidecar is up: building a DurableAgent reads its metadata."""
    runtime = WorkflowRuntime(logger_options=sdk_logger_options())
    runtime.register_workflow(ticket_workflow)
    for activity in ACTIVITIES:
        runtime.register_activity(logged(activity), name=activity.__name__)
    if with_agents:
        # Imported here: dapr_agents takes seconds to import and only LLM mode needs it.
        from app.agents.registry import register_agents

        register_agents(runtime)
    return runtime
