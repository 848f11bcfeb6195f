"""The app's WorkflowRuntime, with every workflow and activity registered."""

from __future__ import annotations

from dapr.ext.workflow import WorkflowRuntime

from app.activities.escalation import escalate_ticket
from app.activities.kb_search import search_knowledge_base
from app.activities.notification import notify_customer
from app.activities.solution import propose_solution
from app.activities.triage import triage_ticket
from app.workflows.ticket_workflow import ticket_workflow

ACTIVITIES = (triage_ticket, search_knowledge_base, propose_solution, escalate_ticket, notify_customer)


def build_workflow_runtime() -> WorkflowRuntime:
    runtime = WorkflowRuntime()
    runtime.register_workflow(ticket_workflow)
    for activity in ACTIVITIES:
        runtime.register_activity(activity)
    return runtime
