"""The app's WorkflowRuntime, with every workflow and activity registered."""

from __future__ import annotations

import functools
import logging

from dapr.ext.workflow import WorkflowRuntime

from app.activities.escalation import escalate_ticket
from app.activities.kb_search import search_knowledge_base
from app.activities.notification import notify_customer
from app.activities.solution import propose_solution
from app.activities.triage import triage_ticket
from app.core.logging import sdk_logger_options
from app.workflows.ticket_workflow import ticket_workflow

ACTIVITIES = (triage_ticket, search_knowledge_base, propose_solution, escalate_ticket, notify_customer)


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


def build_workflow_runtime() -> WorkflowRuntime:
    runtime = WorkflowRuntime(logger_options=sdk_logger_options())
    runtime.register_workflow(ticket_workflow)
    for activity in ACTIVITIES:
        runtime.register_activity(logged(activity), name=activity.__name__)
    return runtime
