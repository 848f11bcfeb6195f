"""The app's WorkflowRuntime: the ticket workflow (each named version) and every activity
registered by its contract name (and, in LLM mode, the agents)."""

from __future__ import annotations

import importlib
import inspect
import logging
import time
import typing

from dapr.ext.workflow import WorkflowRuntime

from app.activities import deps
from app.activities.agent_runs import stop_agent_runs
from app.activities.cases import index_resolved_case
from app.activities.delivery import deliver_notification
from app.activities.escalation import escalate_ticket
from app.activities.kb_search import search_knowledge_base
from app.activities.notification import notify_customer
from app.activities.record_progress import record_progress
from app.activities.solution import propose_solution
from app.activities.triage import triage_ticket
from app.agents.structured import structure_expert, structure_triage
from app.core.logging import sdk_logger_options
from app.core.unreachable import DependencyUnavailable, unreachable
from app.workflows import contracts as c
from app.workflows import sdk_patches
from app.workflows.ticket_workflow import ticket_workflow_v1, ticket_workflow_v2, ticket_workflow_v3, ticket_workflow_v4

ACTIVITIES = {
    c.Activities.TRIAGE: triage_ticket,
    c.Activities.SEARCH: search_knowledge_base,
    c.Activities.PROPOSE: propose_solution,
    c.Activities.ESCALATE: escalate_ticket,
    c.Activities.NOTIFY: notify_customer,
    c.Activities.RECORD: record_progress,
    c.Activities.STOP_AGENT_RUNS: stop_agent_runs,
    c.Activities.DELIVER: deliver_notification,
    c.Activities.INDEX_CASE: index_resolved_case,
    c.Activities.STRUCTURE_TRIAGE: structure_triage,
    c.Activities.STRUCTURE_EXPERT: structure_expert,
}
# Every version of the ticket workflow that may still have instances running, newest last.
TICKET_WORKFLOW_VERSIONS = {c.TICKET_WORKFLOW_V1: ticket_workflow_v1, c.TICKET_WORKFLOW_V2: ticket_workflow_v2,
                            c.TICKET_WORKFLOW_V3: ticket_workflow_v3, c.TICKET_WORKFLOW_V4: ticket_workflow_v4}

logger = logging.getLogger("app.activities")


def typed_activity(name: str, activity):
    """The activity as the worker calls it: the progress record its input carries (v2) applied
    first, its input validated into the model it declares, its output dumped to JSON, a
    FAULT_INJECTION rule applied, and a failure logged with the ticket id before it is re-raised
    (the workflow's retry policy decides what happens next)."""
    hints = typing.get_type_hints(activity)
    params = list(inspect.signature(activity).parameters)
    input_model = hints.get(params[1]) if len(params) > 1 else None

    def run(ctx, payload=None):
        carried = c.carried_record(payload)
        if carried is not None:
            payload = {k: v for k, v in payload.items() if k != c.PROGRESS_FIELD}
            apply_carried_record(carried)
        request = input_model.model_validate(payload) if input_model is not None and payload is not None else payload
        ticket_id = _ticket_id(request)
        try:
            deps.current().faults.check(name, ticket_id)
            result = activity(ctx, request)
        except Exception as error:
            logger.warning("activity failed", extra={"ticket_id": ticket_id, "activity": name,
                                                     "error": f"{type(error).__name__}: {error}"[:500]})
            if unreachable(error) and not isinstance(error, DependencyUnavailable):
                # Named so the workflow waits the outage out instead of failing the step.
                raise DependencyUnavailable(f"{type(error).__name__}: {error}"[:1000]) from error
            raise
        return result.model_dump(mode="json") if hasattr(result, "model_dump") else result

    run.__name__ = name
    return run


def apply_carried_record(record: c.ProgressRecord, attempts: int = 3) -> None:
    """Applies a record that rode on a step's input. Like a `record_progress` step's, its
    failure is logged and never the step's: the record stays in the workflow's history, which a
    read-model rebuild reads (app/readmodel/sync.py)."""
    for attempt in range(1, attempts + 1):
        try:
            deps.current().read_model.apply(record)
            return
        except Exception as error:  # noqa: BLE001 - a read model that is down must not hold the ticket
            if attempt == attempts:
                logger.warning("progress not recorded: a read-model rebuild restores it from the workflow's history",
                               extra={"ticket_id": record.ticket_id, "seq": record.seq,
                                      "error": f"{type(error).__name__}: {error}"[:300]})
                return
            time.sleep(0.2 * attempt)


def _ticket_id(request) -> str | None:
    for path in (("ticket_id",), ("ticket", "ticket_id"), ("subject", "ticket_id")):
        value = request
        for part in path:
            value = getattr(value, part, None)
        if isinstance(value, str):
            return value
    return None


def register_ticket_workflows(runtime: WorkflowRuntime, versions: dict | None = None,
                              latest: str = c.TICKET_WORKFLOW_LATEST) -> None:
    for version, workflow in (versions or TICKET_WORKFLOW_VERSIONS).items():
        # A fresh function per registration: the SDK marks a function registered once per process
        # (replay checks build several runtimes).
        def registered(ctx, payload, _workflow=workflow):
            return _workflow(ctx, payload)

        registered.__name__ = f"{c.TICKET_WORKFLOW}_{version}"
        runtime.register_versioned_workflow(registered, name=c.TICKET_WORKFLOW, version_name=version,
                                            is_latest=version == latest)


def extra_versions(module_name: str | None) -> tuple[dict, str]:
    """Versions beside the released ones, from WORKFLOW_VERSIONS_MODULE (upgrade drills and
    tests: a module with VERSIONS = {name: workflow} and LATEST = name)."""
    if not module_name:
        return dict(TICKET_WORKFLOW_VERSIONS), c.TICKET_WORKFLOW_LATEST
    module = importlib.import_module(module_name)
    return {**TICKET_WORKFLOW_VERSIONS, **module.VERSIONS}, module.LATEST


def build_workflow_runtime(with_agents: bool = False, versions_module: str | None = None,
                           activity_threads: int | None = None, interceptors=None) -> WorkflowRuntime:
    """With agents, call it once the sidecar is up: building a DurableAgent reads its metadata.
    `activity_threads` sizes the pool the SDK runs activities on (ACTIVITY_THREADS);
    `interceptors` observe the worker's calls to the sidecar (the read model's runtime watch)."""
    sdk_patches.apply()
    runtime = WorkflowRuntime(logger_options=sdk_logger_options(), maximum_thread_pool_workers=activity_threads,
                              interceptors=interceptors)
    versions, latest = extra_versions(versions_module)
    register_ticket_workflows(runtime, versions, latest)
    if with_agents:
        # Imported here: dapr_agents takes seconds to import and only LLM mode needs it.
        from app.agents.registry import register_agents

        register_agents(runtime)
    for name, activity in ACTIVITIES.items():
        runtime.register_activity(typed_activity(name, activity), name=name)
    return runtime
