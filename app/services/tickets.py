"""Ticket operations behind the REST routes: file, read status, deliver a decision, cancel.

The API decides nothing about a ticket's progress: it starts the workflow, reads what the
workflow recorded, and raises events. It writes only what is not the workflow's to decide: the
first decision per revision and an Idempotency-Key record.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from app.core.config import Settings
from app.domain.decision import DecisionAccepted, DecisionRequest
from app.domain.status import TicketStatus
from app.domain.stored import analysis_key, notification_key
from app.domain.ticket import TicketRequest
from app.readmodel.store import ReadModel
from app.readmodel.ticket_changes import TicketChanges, TicketWatch
from app.services.workflow_gateway import Instance, InstanceExists, WorkflowGateway, run_held_start
from app.store import StateStore
from app.workflows.contracts import (APPROVAL_EVENT, CANCEL_EVENT, FINAL_STAGES, TICKET_WORKFLOW,
                                     Proposal, TicketWorkflowInput)

if TYPE_CHECKING:  # admission imports this module's errors
    from app.services.admission import AdmissionGate

logger = logging.getLogger(__name__)


class TicketError(Exception):
    """A request the service refuses; `status_code` says how."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TicketNotFound(TicketError):
    status_code = 404


class TicketConflict(TicketError):
    status_code = 409


class UnknownCustomer(TicketError):
    """The customer the ticket names does not exist (404: data the schema cannot rule out)."""

    status_code = 404


class ServiceUnavailable(TicketError):
    status_code = 503


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def stage_of(instance: Instance) -> str:
    runtime = instance.runtime_status
    if runtime == "completed":
        return instance.output.get("stage", "completed")
    if runtime == "failed":
        return "failed"
    if runtime == "terminated":
        return "cancelled"
    return instance.custom_status.get("stage", "pending")


def to_status(instance: Instance, records: StateStore | None = None) -> TicketStatus:
    """The status from what the workflow recorded: its output once finished, else its custom
    status (plus, while it waits, the proposal its propose step stored)."""
    runtime, view = instance.runtime_status, instance.custom_status
    stage = stage_of(instance)
    if runtime == "completed":
        # The ticket the workflow ran for: an instance rerun from an event (ops) has an id of its own.
        output = with_stored_records(instance.output, instance.output.get("ticket_id") or instance.instance_id, records)
    elif runtime in ("failed", "terminated"):
        output = {"error": instance.failure or f"workflow {runtime}", "last_progress": view}
    else:
        output = dict(view)
        if view.get("sla_due"):
            output["sla"] = {"first_response_target": view.get("sla_target"), "first_response_due": view["sla_due"]}
        if stage == "awaiting_approval" and records is not None:
            stored = records.get_value(analysis_key(instance.instance_id, int(view.get("revision", 0))))
            if stored:
                output["proposal"] = stored["proposal"]
    triage = output.get("triage") or {}
    sla_due = view.get("sla_due") or (triage.get("sla") or {}).get("first_response_due")
    waiting = None
    awaiting = stage == "awaiting_approval" and runtime in ("running", "suspended")
    if awaiting and view.get("awaiting_since"):
        since = datetime.fromisoformat(view["awaiting_since"])
        waiting = round((datetime.now(timezone.utc) - since).total_seconds(), 3)
    decision = output.get("decision")
    return TicketStatus(ticket_id=instance.instance_id, instance_id=instance.instance_id, status=runtime,
                        stage=stage, version=output.get("version") or view.get("version"), output=output,
                        created_at=instance.created_at, last_updated_at=instance.last_updated_at,
                        sla_due=sla_due, waiting_seconds=waiting, awaiting_decision=awaiting,
                        revision=int(output.get("revision", view.get("revision", 0)) or 0),
                        confidence=view.get("confidence"), decision=decision,
                        escalations=output.get("escalations") or view.get("escalations") or [])


def with_stored_records(output: dict, ticket_id: str, records: StateStore | None) -> dict:
    """A v3 output names the proposal's and the notification's records instead of repeating
    them: the status shows them whole, as v1 and v2 outputs carry them, with the approved
    proposal's text as the final solution. A reference whose record cannot be read stays in the
    output as it is."""
    proposal_ref, notification_ref = output.get("proposal_ref"), output.get("notification_ref")
    if records is None or not (proposal_ref or notification_ref):
        return output
    keys = {"proposal_ref": analysis_key(ticket_id, int(proposal_ref["revision"])) if proposal_ref else None,
            "notification_ref": notification_key(ticket_id, notification_ref["kind"]) if notification_ref else None}
    stored = records.get_many([key for key in keys.values() if key])
    output = dict(output)
    analysis = stored.get(keys["proposal_ref"]) if proposal_ref else None
    if analysis and isinstance(analysis.get("proposal"), dict):
        del output["proposal_ref"]
        output["proposal"] = analysis["proposal"]
        if (output.get("decision") or {}).get("approved") and not output.get("final_solution"):
            output["final_solution"] = Proposal.model_validate(analysis["proposal"]).as_text()
    notification = stored.get(keys["notification_ref"]) if notification_ref else None
    if notification:
        del output["notification_ref"]
        output["notification"] = notification
    return output


def ticket_instance(workflows: WorkflowGateway, ticket_id: str) -> Instance:
    instance = workflows.get(ticket_id)
    if instance is None or instance.name != TICKET_WORKFLOW:
        raise TicketNotFound(f"no ticket {ticket_id!r}")
    return instance


def get_status(workflows: WorkflowGateway, records: StateStore, ticket_id: str,
               may_read: Callable[[str | None, str | None], bool] | None = None,
               read_model: ReadModel | None = None) -> TicketStatus:
    """The ticket's status; with may_read(customer_id, filed_by), only if that allows it (else
    unknown, as for a ticket that does not exist). `read_model` stands in for the custom status
    the runtime does not answer for a STALLED instance (recorded_view)."""
    instance = ticket_instance(workflows, ticket_id)
    if may_read is not None and not may_read(instance.input.get("customer_id"), instance.input.get("filed_by")):
        raise TicketNotFound(f"no ticket {ticket_id!r}")
    if instance.runtime_status == "stalled" and "stage" not in instance.custom_status and read_model is not None:
        instance.custom_status = recorded_view(read_model, ticket_id)
    return to_status(instance, records)


def recorded_view(read_model: ReadModel, ticket_id: str) -> dict:
    """What the workflow last recorded of a ticket (its progress records, in the read model), in
    the custom status's shape: the runtime answers no custom status for a STALLED instance (held
    for a version no replica runs), which would show as stage `pending`."""
    row = read_model.get(ticket_id)
    if row is None:
        return {}
    view = {"stage": row.get("stage"), "revision": row.get("revision") or 0, "version": row.get("workflow_version"),
            "sla_due": row.get("sla_due"), "escalations": row.get("escalations") or [],
            "confidence": row.get("confidence")}
    return {key: value for key, value in view.items() if value is not None}


# -- filing -------------------------------------------------------------------------------------
def file_ticket(workflows: WorkflowGateway, customers: StateStore, settings: Settings,
                request: TicketRequest, filed_by: str) -> tuple[bool, str]:
    """Starts the ticket's workflow; (created, instance_id). Filing the same ticket again is a
    no-op; the same id with other content is a conflict. A finished ticket is never restarted
    (Dapr would replace its history)."""
    existing = workflows.get(request.ticket_id)
    if existing is not None:
        if existing.runtime_status == "pending":
            _run_the_start(workflows, request.ticket_id)
        return False, _repeat_filing(existing, request)
    if customers.get_value(request.customer_id) is None:
        raise UnknownCustomer(f"unknown customer_id {request.customer_id!r}")
    workflow_input = TicketWorkflowInput(
        ticket_id=request.ticket_id, customer_id=request.customer_id, description=request.description,
        filed_at=_now(), approval_timeout_seconds=settings.approval_timeout,
        max_revisions=settings.max_revisions, filed_by=filed_by, use_agents=settings.llm_configured,
        agent_timeout_seconds=settings.agent_timeout)
    try:
        workflows.start(TICKET_WORKFLOW, request.ticket_id, workflow_input.model_dump(mode="json"))
    except InstanceExists:
        # Lost a race with a concurrent filing of the same id: answer as for a repeat.
        return False, _repeat_filing(workflows.get(request.ticket_id), request)
    return True, request.ticket_id


def _run_the_start(workflows: WorkflowGateway, ticket_id: str) -> None:
    """Filed again while its workflow has not begun: its start may be held with nothing to run it
    (`run_held_start`). A ticket that is only slow to begin gets one event more in its first turn."""
    try:
        run_held_start(workflows, ticket_id, {"reason": "filed again before its start ran"})
    except Exception as error:  # the answer stands; the next filing tries again
        logger.warning("filing: could not wake the instance", extra={
            "ticket_id": ticket_id, "error": f"{type(error).__name__}: {error}"[:300]})
    else:
        logger.info("filing: woke an instance whose start had not run", extra={"ticket_id": ticket_id})


def _repeat_filing(existing: Instance | None, request: TicketRequest) -> str:
    if existing is None or not existing.name or not existing.input:
        # The runtime answered for an instance it cannot describe yet (its start not run):
        # not a conflict, ask the caller to retry.
        logger.warning("filing: the instance exists without its start event", extra={
            "ticket_id": request.ticket_id, "runtime_status": existing.runtime_status if existing else None})
        raise ServiceUnavailable(f"ticket {request.ticket_id!r} is being created; retry shortly")
    filed = existing.input
    same = filed.get("customer_id") == request.customer_id and filed.get("description") == request.description
    if existing.name != TICKET_WORKFLOW or not same:
        raise TicketConflict(f"ticket {request.ticket_id!r} already exists with different content")
    return existing.instance_id


# -- decisions ----------------------------------------------------------------------------------
def submit_decision(workflows: WorkflowGateway, records: StateStore, settings: Settings, ticket_id: str,
                    body: DecisionRequest, approver: str, changes: TicketChanges, idempotency_key: str | None = None,
                    admission: AdmissionGate | None = None) -> DecisionAccepted:
    """Delivers an engineer's decision to the revision waiting for one, and answers with what the
    workflow made of it (accepted, or 409 with the workflow's reason).

    One decision per proposal revision: the first is recorded (insert-if-absent) and raised; a
    different one gets 409, so two engineers clicking at once cannot both decide. The same
    decision again (or the same Idempotency-Key) answers as the first did."""
    decision = body.model_dump(exclude={"revision"})
    if idempotency_key:
        earlier = records.get_value(f"idempotency:{ticket_id}:{idempotency_key}")
        if earlier is not None:
            if earlier["decision"] != decision:
                raise TicketConflict("this Idempotency-Key was used for a different decision")
            return _deliver(workflows, settings, ticket_id, earlier["event"], changes)

    instance = ticket_instance(workflows, ticket_id)
    stage = stage_of(instance)
    if instance.runtime_status == "stalled":
        raise held_stalled(ticket_id)
    # A suspended instance takes the decision when it is resumed.
    if instance.runtime_status not in ("running", "suspended") or stage != "awaiting_approval":
        raise TicketConflict(f"ticket {ticket_id!r} is not waiting for a decision (stage: {stage}, "
                             f"status: {instance.runtime_status})")
    revision = int(instance.custom_status.get("revision", 0))
    if body.revision is not None and body.revision != revision:
        raise TicketConflict(f"the decision is for revision {body.revision}, but revision {revision} "
                             f"is waiting: review it first")
    # Before anything is recorded: beyond capacity a decision costs nothing and is retried.
    if admission is not None:
        admission.admit(ticket_id, decided_revision=revision)
    accepted = False
    try:
        event = {**decision, "revision": revision, "approver": approver,
                 "decision_id": uuid.uuid4().hex, "decided_at": _now()}
        inserted, stored = records.insert_if_absent(f"decision:{ticket_id}:{revision}", event)
        if not inserted and any(stored.get(k) != v for k, v in decision.items()):
            raise TicketConflict(f"ticket {ticket_id!r} already has a decision for revision {revision}")
        if idempotency_key:
            records.insert_if_absent(f"idempotency:{ticket_id}:{idempotency_key}",
                                     {"decision": decision, "event": stored})
        answer = _deliver(workflows, settings, ticket_id, stored, changes)
        accepted = True
        return answer
    finally:
        if admission is not None and not accepted:
            admission.release(ticket_id)


# Waiting for the workflow's answer to a decision: the ticket's read-model change marker is watched
# (app/readmodel/ticket_changes.py: one local read for every waiter, no sidecar call). The
# workflow records the decision in the step that follows it, after the turn that answered it is
# committed, so the workflow is read again as soon as the marker moves, and otherwise after
# ACK_REREAD_FIRST s, doubling up to ACK_REREAD_MAX s (an instance suspended by an operator
# records nothing).
ACK_REREAD_FIRST = 0.25
ACK_REREAD_MAX = 1.0


def _deliver(workflows: WorkflowGateway, settings: Settings, ticket_id: str, event: dict,
             changes: TicketChanges) -> DecisionAccepted:
    """Raises the decision (again, when repeated: a crash may have come between the record and
    the raise; the workflow applies one decision per revision) and waits for its answer."""
    with changes.watch(ticket_id) as watch:  # from before the raise: no move is missed
        return _await_answer(workflows, settings, ticket_id, event, watch)


def _await_answer(workflows: WorkflowGateway, settings: Settings, ticket_id: str, event: dict,
                  watch: TicketWatch) -> DecisionAccepted:
    raised = False
    deadline = time.monotonic() + settings.decision_ack_timeout
    delay = ACK_REREAD_FIRST
    while True:
        instance = ticket_instance(workflows, ticket_id)
        acks = instance.custom_status.get("acks") or instance.output.get("acks") or []
        ack = next((a for a in acks if a.get("decision_id") == event["decision_id"]), None)
        if ack and ack["outcome"] == "applied":
            return DecisionAccepted(status="accepted", ticket_id=ticket_id, instance_id=instance.instance_id,
                                    revision=event["revision"], stage=ack.get("stage") or stage_of(instance))
        if ack:
            raise TicketConflict(f"the workflow refused the decision: {ack.get('reason')}")
        if instance.runtime_status == "stalled" and not raised:
            raise held_stalled(ticket_id)
        # Suspended or (once raised) stalled: the decision waits in its inbox until it runs again.
        if instance.runtime_status not in ("running", "suspended", "stalled"):
            raise TicketConflict(f"ticket {ticket_id!r} moved on before the decision reached it "
                                 f"(stage: {stage_of(instance)})")
        if not raised:
            # Stalled since the read above: InstanceStalled, answered 503 like held_stalled (app/api/errors.py).
            workflows.raise_event(ticket_id, APPROVAL_EVENT, event)
            raised = True
        if time.monotonic() >= deadline:
            return DecisionAccepted(status="delivered", ticket_id=ticket_id, instance_id=instance.instance_id,
                                    revision=event["revision"], stage=stage_of(instance))
        # The marker only hastens the next read: while the read model cannot be read (its
        # database restarting) the reads come on their timed schedule, and the answer still
        # comes from the workflow.
        watch.moved(min(delay, deadline - time.monotonic()))
        delay = min(delay * 2, ACK_REREAD_MAX)


def held_stalled(ticket_id: str) -> ServiceUnavailable:
    """The runtime holds the instance STALLED (its version is not on the replica that has it,
    mid-upgrade) and takes no event until a replica that knows it does: retry shortly."""
    return ServiceUnavailable(f"ticket {ticket_id!r} is held by the runtime until a replica with its workflow "
                              "version takes it (an upgrade is under way); retry shortly")


# -- cancel -------------------------------------------------------------------------------------
def cancel_ticket(workflows: WorkflowGateway, ticket_id: str, by: str, reason: str | None) -> TicketStatus:
    """Asks the workflow to end: it tells the customer and finishes as `cancelled`. Refused once
    the customer's final message is being written."""
    instance = ticket_instance(workflows, ticket_id)
    stage = stage_of(instance)
    if stage in FINAL_STAGES or instance.runtime_status not in ("running", "suspended", "pending"):
        raise TicketConflict(f"ticket {ticket_id!r} is already finished (stage: {stage})")
    if stage == "notifying":
        raise TicketConflict(f"ticket {ticket_id!r} is sending the customer's final message and can no "
                             "longer be cancelled")
    workflows.raise_event(ticket_id, CANCEL_EVENT, {"by": by, "reason": reason, "requested_at": _now()})
    return to_status(instance)
