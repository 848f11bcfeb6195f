"""Operators' view of the workflow runtime and their actions on its instances, shared by the
`/ops` routes, the console and the terminal command (`python -m app.ops`), so all three list,
show and act alike and leave the same audit.

- Reads: every instance (tickets and their agent child runs) with its runtime status, stage,
  times and whether it is stuck; one instance with its full history from the runtime
  (`GetInstanceHistory`); the system (sidecar metadata, placement and scheduler health, the read
  model's lag).
- Actions: raise an event, suspend, resume, terminate, purge (one, or every finished instance
  older than N days), rerun from an event. Each is written to the instance's audit log before it
  is performed (so nothing is done unrecorded) and the read model's row is corrected at once
  (the workflow cannot record what is done to it from outside).
- Claims: an engineer holding a ticket, stored with first-write/ETag so two cannot both hold it.

The audit log of an instance is a sequence of analysis-state keys `audit:{instance}:{n}`, each
written insert-if-absent: two writers racing for the same `n` cannot overwrite each other, the
loser takes the next one. Reading stops at the first missing `n`.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import httpx

from app.core.config import Settings
from app.readmodel.store import PURGE_CHECK_META, ReadModel
from app.services.tickets import TicketConflict, TicketError, TicketNotFound, stage_of
from app.services.workflow_gateway import Instance, WorkflowGateway
from app.store import ETagConflict, StateStore
from app.workflows.contracts import TICKET_WORKFLOW

RUNTIME_STATUSES = ("running", "pending", "suspended", "completed", "failed", "terminated", "stalled")
FINISHED = frozenset({"completed", "failed", "terminated"})
# The read model's stage for a ticket ended from outside (as app/readmodel/sync.py shows it).
_STAGE_AFTER = {"terminated": "cancelled", "failed": "failed"}
# Bounds what one listing reads from the runtime (one GetInstance per instance).
MAX_LISTED = 2000
_AUDIT_PAGE = 20
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ops")


class InstanceNotFound(TicketNotFound):
    pass


class OpsConflict(TicketConflict):
    """The instance is not in a state the action applies to."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a principal's name and role, or `cli:<os user>` for the terminal command."""

    name: str
    role: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(at: str | None) -> datetime | None:
    if not at:
        return None
    value = datetime.fromisoformat(at)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# -- audit --------------------------------------------------------------------------------------
def audit_key(instance_id: str, n: int) -> str:
    return f"audit:{instance_id}:{n}"


def read_audit(records: StateStore, instance_id: str) -> list[dict]:
    """The instance's audit entries, oldest first."""
    entries: list[dict] = []
    start = 0
    while True:
        keys = [audit_key(instance_id, n) for n in range(start, start + _AUDIT_PAGE)]
        found = records.get_many(keys)
        for key in keys:
            if key not in found:
                return entries
            entries.append(found[key])
        start += _AUDIT_PAGE


def append_audit(records: StateStore, instance_id: str, action: str, actor: Actor,
                 details: dict | None = None, outcome: str = "requested") -> dict:
    entry = {"id": uuid.uuid4().hex, "instance_id": instance_id, "action": action, "actor": actor.name,
             "role": actor.role, "at": _now().isoformat(), "outcome": outcome, "details": details or {}}
    n = len(read_audit(records, instance_id))
    for _ in range(100):
        inserted, stored = records.insert_if_absent(audit_key(instance_id, n), entry)
        if inserted or stored.get("id") == entry["id"]:
            return entry
        n += 1  # another writer took this slot
    raise ETagConflict(audit_key(instance_id, n))


def audit_timeline_events(records: StateStore, ticket_id: str) -> list[dict]:
    """The ticket's audit entries (operator actions, claims) as timeline events."""
    events = []
    for entry in read_audit(records, ticket_id):
        kind = entry["action"] if entry["action"] in ("claimed", "unclaimed") else f"operator_{entry['action']}"
        if entry.get("outcome") == "failed":
            kind += "_failed"
        events.append({"key": f"audit:{entry['id']}", "kind": kind, "actor": entry["actor"], "at": entry["at"],
                       "details": {**entry.get("details", {}), "role": entry.get("role")}})
    return events


def merge_timeline(events: list[dict], extra: Iterable[dict]) -> list[dict]:
    """One timeline, by time; an event without a time stays last (the sort is stable)."""
    latest = datetime.max.replace(tzinfo=timezone.utc)
    return sorted([*events, *extra], key=lambda e: parse_time(e.get("at")) or latest)


# -- claims -------------------------------------------------------------------------------------
def claim_key(ticket_id: str) -> str:
    return f"claim:{ticket_id}"


def claims_of(records: StateStore, ticket_ids: list[str]) -> dict[str, dict]:
    """{ticket: claim} for the tickets someone holds."""
    found = records.get_many([claim_key(t) for t in ticket_ids])
    return {t: found[claim_key(t)] for t in ticket_ids if (found.get(claim_key(t)) or {}).get("holder")}


def claim(records: StateStore, ticket_id: str, actor: Actor) -> dict:
    """Takes the ticket for the actor; 409 when someone else holds it."""
    key = claim_key(ticket_id)
    value = {"ticket_id": ticket_id, "holder": actor.name, "claimed_at": _now().isoformat()}
    inserted, current = records.insert_if_absent(key, value)
    if not inserted:
        current, etag = records.get(key)
        holder = (current or {}).get("holder")
        if holder == actor.name:
            return current
        if holder:
            raise TicketConflict(f"{holder} holds ticket {ticket_id!r} (since {current.get('claimed_at')})")
        try:
            records.save(key, value, etag=etag)
        except ETagConflict:
            raise TicketConflict(f"someone claimed ticket {ticket_id!r} at the same moment; reload") from None
    append_audit(records, ticket_id, "claimed", actor, outcome="done")
    return value


def unclaim(records: StateStore, ticket_id: str, actor: Actor) -> None:
    """Releases the actor's claim; 409 when someone else holds the ticket."""
    key = claim_key(ticket_id)
    current, etag = records.get(key)
    holder = (current or {}).get("holder")
    if not holder:
        return
    if holder != actor.name:
        raise TicketConflict(f"{holder} holds ticket {ticket_id!r}, not you")
    try:
        records.save(key, {"ticket_id": ticket_id, "holder": None, "released_by": actor.name,
                           "released_at": _now().isoformat()}, etag=etag)
    except ETagConflict:
        raise TicketConflict(f"the claim on {ticket_id!r} changed meanwhile; reload") from None
    append_audit(records, ticket_id, "unclaimed", actor, outcome="done")


# -- listing ------------------------------------------------------------------------------------
@dataclass
class InstanceRow:
    instance_id: str
    name: str
    kind: str  # ticket, agent run, other
    runtime_status: str
    stage: str | None
    created_at: str | None
    last_updated_at: str | None
    idle_seconds: float | None
    stuck: bool
    parent_id: str | None = None
    version: str | None = None  # the ticket workflow's named version
    stalled_reason: str | None = None  # why the runtime holds it STALLED (its history says)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class InstanceListing:
    rows: list[InstanceRow]
    total: int  # instances the runtime listed
    by_status: dict[str, int] = field(default_factory=dict)
    by_stage: dict[str, int] = field(default_factory=dict)
    # Tickets per workflow version, and those still running: an old version stays registered
    # while any of its instances runs.
    by_version: dict[str, int] = field(default_factory=dict)
    running_by_version: dict[str, int] = field(default_factory=dict)
    stuck: int = 0
    truncated: bool = False

    def as_dict(self) -> dict:
        return {"instances": [r.as_dict() for r in self.rows], "total": self.total, "by_status": self.by_status,
                "by_stage": self.by_stage, "by_version": self.by_version,
                "running_by_version": self.running_by_version, "stuck": self.stuck, "truncated": self.truncated}


def kind_of(instance: Instance) -> str:
    if instance.name == TICKET_WORKFLOW:
        return "ticket"
    if "." in instance.instance_id:
        return "agent run"  # run ids are `{ticket}.triage` / `{ticket}.expert-{n}`
    return "other"


def idle_seconds(instance: Instance, now: datetime) -> float | None:
    """Seconds since the runtime last changed the instance, or since it was created (None: the
    runtime gave neither time)."""
    updated = parse_time(instance.last_updated_at) or parse_time(instance.created_at)
    return None if updated is None else (now - updated).total_seconds()


def is_stuck(instance: Instance, stuck_after: float, now: datetime) -> bool:
    """Running with no progress for `stuck_after`. A ticket waiting for a decision waits on
    purpose (its SLA and approval timeout cover it), so it is stuck only once its approval
    timer should also have fired."""
    if instance.runtime_status not in ("running", "pending"):
        return False
    idle = idle_seconds(instance, now)
    if idle is None:
        return False
    if instance.name == TICKET_WORKFLOW and instance.custom_status.get("stage") == "awaiting_approval":
        return idle > float(instance.input.get("approval_timeout_seconds") or 0) + stuck_after
    return idle > stuck_after


def version_of(instance: Instance) -> str | None:
    """The ticket workflow version an instance runs: what it shows (custom status) or returned."""
    version = instance.custom_status.get("version") or instance.output.get("version")
    return version if isinstance(version, str) else None


def stalled_reason(history: list) -> tuple[str | None, str | None]:
    """(reason, version) from the history of a STALLED instance: the runtime's own description
    of why, and the version the instance recorded."""
    reason = version = None
    for event in history:
        kind = event.WhichOneof("eventType")
        if kind == "executionStalled":
            body = event.executionStalled
            code = body.DESCRIPTOR.fields_by_name["reason"].enum_type.values_by_number.get(body.reason)
            reason = body.description or (code.name if code else "stalled")
        elif kind == "workflowStarted" and event.workflowStarted.HasField("version"):
            version = event.workflowStarted.version.name or version
    return reason, version


def to_row(instance: Instance, stuck_after: float, now: datetime) -> InstanceRow:
    updated = parse_time(instance.last_updated_at)
    kind = kind_of(instance)
    return InstanceRow(
        version=version_of(instance) if kind == "ticket" else None,
        instance_id=instance.instance_id, name=instance.name, kind=kind, runtime_status=instance.runtime_status,
        stage=stage_of(instance) if kind == "ticket" else instance.custom_status.get("stage"),
        created_at=instance.created_at, last_updated_at=instance.last_updated_at,
        idle_seconds=round((now - updated).total_seconds(), 1) if updated else None,
        stuck=is_stuck(instance, stuck_after, now),
        parent_id=instance.instance_id.split(".", 1)[0] if kind == "agent run" else None)


def list_instances(workflows: WorkflowGateway, settings: Settings, status: str | None = None,
                   older_than: float | None = None, newer_than: float | None = None,
                   stuck_only: bool = False, version: str | None = None,
                   now: datetime | None = None) -> InstanceListing:
    """Every instance the runtime lists (up to MAX_LISTED), newest first, with counts per status,
    stage and version over all of them; the filters (status, created more/less than N seconds
    ago, stuck, workflow version) select the rows. A STALLED row says why (from its history)."""
    now = now or _now()
    ids = []
    for instance_id in workflows.list_ids():
        ids.append(instance_id)
        if len(ids) > MAX_LISTED:
            break
    truncated = len(ids) > MAX_LISTED
    ids = ids[:MAX_LISTED]
    instances = [i for i in _pool.map(lambda i: workflows.get(i), ids) if i is not None]
    rows = [to_row(i, settings.stuck_after, now) for i in instances]
    for row in rows:
        if row.runtime_status == "stalled":  # rare: read its history for the reason
            reason, recorded = stalled_reason(workflows.history(row.instance_id))
            row.stalled_reason, row.version = reason, row.version or recorded
    listing = InstanceListing(rows=[], total=len(rows), truncated=truncated)
    for row in rows:
        if row.version:
            listing.by_version[row.version] = listing.by_version.get(row.version, 0) + 1
            if row.runtime_status in ("running", "pending", "suspended", "stalled"):
                listing.running_by_version[row.version] = listing.running_by_version.get(row.version, 0) + 1
        listing.by_status[row.runtime_status] = listing.by_status.get(row.runtime_status, 0) + 1
        if row.stage:
            listing.by_stage[row.stage] = listing.by_stage.get(row.stage, 0) + 1
        listing.stuck += row.stuck

    def selected(row: InstanceRow) -> bool:
        created = parse_time(row.created_at)
        age = (now - created).total_seconds() if created else None
        return ((status is None or row.runtime_status == status)
                and (older_than is None or (age is not None and age >= older_than))
                and (newer_than is None or (age is not None and age <= newer_than))
                and (not stuck_only or row.stuck)
                and (version is None or row.version == version))

    listing.rows = sorted(filter(selected, rows), key=lambda r: (r.created_at or "", r.instance_id), reverse=True)
    return listing


# -- one instance and its history ---------------------------------------------------------------
def _payload(value) -> Any:
    """A protobuf StringValue's JSON, decoded (the text itself when it is not JSON)."""
    raw = value.value if value is not None and value.ByteSize() else None
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _failure(details) -> dict | None:
    if details is None or not details.ByteSize():
        return None
    failure = {"type": details.errorType, "message": details.errorMessage,
               "non_retriable": details.isNonRetriable}
    if details.stackTrace.value:
        failure["stack_trace"] = details.stackTrace.value
    if details.HasField("innerFailure"):
        failure["inner"] = _failure(details.innerFailure)
    return failure


def render_history(events: list) -> list[dict]:
    """Each HistoryEvent as {index, event_id, kind, at, summary, ...}: activity names with their
    inputs and outputs (completions and failures name the activity they answer), timers with
    what set them (a retry, an external event's timeout), events raised and sent, child
    workflows, failures with their details, suspensions and terminations."""
    scheduled: dict[int, str] = {}
    timers: dict[int, str] = {}
    rendered = []
    for index, event in enumerate(events):
        kind = event.WhichOneof("eventType") or "unknown"
        item: dict[str, Any] = {"index": index, "event_id": event.eventId, "kind": kind,
                                "at": event.timestamp.ToDatetime(tzinfo=timezone.utc).isoformat()
                                if event.HasField("timestamp") else None}
        body = getattr(event, kind, None)
        if kind == "executionStarted":
            item.update(name=body.name, input=_payload(body.input), summary=f"workflow {body.name} started")
            if body.HasField("parentInstance") and body.parentInstance.workflowInstance.instanceId:
                item["parent_id"] = body.parentInstance.workflowInstance.instanceId
        elif kind == "executionCompleted":
            status = _status_name(body.workflowStatus)
            item.update(status=status, output=_payload(body.result), failure=_failure(body.failureDetails),
                        summary=f"workflow finished: {status}")
        elif kind == "executionTerminated":
            item.update(input=_payload(body.input), summary="workflow terminated")
        elif kind in ("executionSuspended", "executionResumed"):
            item.update(input=_payload(body.input), summary=kind.removeprefix("execution").lower())
        elif kind == "executionStalled":
            item.update(summary=f"stalled: {body.description}")
        elif kind == "taskScheduled":
            scheduled[event.eventId] = body.name
            item.update(name=body.name, input=_payload(body.input), summary=f"activity {body.name} scheduled")
        elif kind == "taskCompleted":
            name = scheduled.get(body.taskScheduledId, "?")
            item.update(name=name, scheduled_id=body.taskScheduledId, output=_payload(body.result),
                        summary=f"activity {name} completed")
        elif kind == "taskFailed":
            name = scheduled.get(body.taskScheduledId, "?")
            item.update(name=name, scheduled_id=body.taskScheduledId, failure=_failure(body.failureDetails),
                        summary=f"activity {name} failed: {body.failureDetails.errorMessage}"[:300])
        elif kind == "childWorkflowInstanceCreated":
            scheduled[event.eventId] = body.name
            item.update(name=body.name, child_id=body.instanceId, input=_payload(body.input),
                        summary=f"child workflow {body.instanceId} ({body.name}) started")
        elif kind == "childWorkflowInstanceCompleted":
            name = scheduled.get(body.taskScheduledId, "?")
            item.update(name=name, scheduled_id=body.taskScheduledId, output=_payload(body.result),
                        summary=f"child workflow {name} completed")
        elif kind == "childWorkflowInstanceFailed":
            name = scheduled.get(body.taskScheduledId, "?")
            item.update(name=name, scheduled_id=body.taskScheduledId, failure=_failure(body.failureDetails),
                        summary=f"child workflow {name} failed")
        elif kind == "timerCreated":
            origin = body.WhichOneof("origin")
            purpose = {"activityRetry": "retry of a failed activity", "childWorkflowRetry": "retry of a child workflow",
                       "externalEvent": f"timeout of the wait for event {body.externalEvent.name}",
                       "createTimer": "timer"}.get(origin or "", "timer")
            fire_at = body.fireAt.ToDatetime(tzinfo=timezone.utc).isoformat()
            timers[event.eventId] = purpose
            # A wait without a timeout is a timer at the end of time.
            when = "never fires (no timeout)" if fire_at.startswith("9999-") else f"fires at {fire_at}"
            item.update(fire_at=fire_at, purpose=purpose, summary=f"{purpose}, {when}")
        elif kind == "timerFired":
            purpose = timers.get(body.timerId, "timer")
            item.update(timer_id=body.timerId, summary=f"{purpose} fired")
        elif kind == "eventRaised":
            item.update(name=body.name, input=_payload(body.input), summary=f"event {body.name} received")
        elif kind == "eventSent":
            item.update(name=body.name, target_id=body.instanceId, input=_payload(body.input),
                        summary=f"event {body.name} sent to {body.instanceId}")
        elif kind == "workflowStarted":
            version = body.version.name if body.HasField("version") else ""
            patches = list(body.version.patches) if body.HasField("version") else []
            item.update(summary="workflow step started" + (f" (version {version})" if version else "")
                        + (f", patches recorded: {', '.join(patches)}" if patches else ""),
                        **({"patches": patches} if patches else {}))
            if version:
                item["version"] = version
        elif kind == "workflowCompleted":
            item.update(summary="workflow step done")
        elif kind == "continueAsNew":
            item.update(input=_payload(body.input), summary="continued as new")
        else:
            item.update(summary=kind)
        rendered.append(item)
    return rendered


def _status_name(value: int) -> str:
    from app.workflows.replay import pb

    return pb.OrchestrationStatus.Name(value).removeprefix("ORCHESTRATION_STATUS_").lower()


def get_instance(workflows: WorkflowGateway, instance_id: str) -> Instance:
    instance = workflows.get(instance_id)
    if instance is None:
        raise InstanceNotFound(f"no workflow instance {instance_id!r}")
    return instance


def instance_detail(workflows: WorkflowGateway, records: StateStore, settings: Settings, instance_id: str,
                    now: datetime | None = None) -> dict:
    """The instance (input, output, custom status), its history, parent and child workflows,
    and its audit log."""
    instance = get_instance(workflows, instance_id)
    history = render_history(workflows.history(instance_id))
    started = next((e for e in history if e["kind"] == "executionStarted"), {})
    children = [{"instance_id": e["child_id"], "name": e["name"], "event_index": e["index"]}
                for e in history if e["kind"] == "childWorkflowInstanceCreated"]
    row = to_row(instance, settings.stuck_after, now or _now())
    running = instance.runtime_status == "running"
    twice = step_recorded_twice(history) if instance.runtime_status in ("running", "failed") else None
    fault = None
    if twice:
        # Since sdk_patches skips such a copy, a replay no longer fails on it; these are the
        # instances the runtime broke before that, or in a way the correction does not reach.
        fault = (f"the runtime recorded activity {twice!r} as scheduled twice, from two turns with no result "
                 "between (daprd 1.18.1 after a turn it cancelled mid-way was answered twice; "
                 "docs/benchmarks.md): " + ("no step can run" if running else "its replay failed the instance"))
    return {"instance": {**asdict(instance), "kind": row.kind, "stage": row.stage,
                         "stuck": row.stuck or (running and bool(fault)),
                         "idle_seconds": row.idle_seconds, "runtime_fault": fault},
            "parent_id": started.get("parent_id") or row.parent_id, "children": children,
            "history": history, "audit": read_audit(records, instance_id)}


def step_recorded_twice(history: list[dict]) -> str | None:
    """The activity a rendered history shows scheduled twice, from two turns with no result
    between, else None. A workflow's code never does that (a retry follows the failure); the
    runtime did (docs/benchmarks.md, "Runtime problems found")."""
    waiting: dict[str, bool] = {}  # scheduled and not answered -> a turn began since
    for event in history:
        kind, name = event["kind"], event.get("name")
        if kind == "workflowStarted":
            waiting = dict.fromkeys(waiting, True)
        elif kind == "taskScheduled":
            if waiting.get(name):
                return name
            waiting.setdefault(name, False)
        elif kind in ("taskCompleted", "taskFailed"):
            waiting.pop(name, None)
    return None


# -- actions ------------------------------------------------------------------------------------
def _audited(records: StateStore, instance_id: str, action: str, actor: Actor, details: dict, perform):
    """Records the action, performs it, and records its failure if it fails."""
    entry = append_audit(records, instance_id, action, actor, details)
    try:
        return perform()
    except Exception as error:
        append_audit(records, instance_id, action, actor,
                     {**details, "error": f"{type(error).__name__}: {error}"[:500], "request": entry["id"]},
                     outcome="failed")
        raise


def _is_ticket(instance: Instance) -> bool:
    return instance.name == TICKET_WORKFLOW


def raise_event(workflows: WorkflowGateway, records: StateStore, actor: Actor, instance_id: str,
                event: str, data: Any) -> dict:
    instance = get_instance(workflows, instance_id)
    if instance.runtime_status in FINISHED:
        raise OpsConflict(f"instance {instance_id!r} is {instance.runtime_status}: it receives no more events")
    if not event or len(event) > 200:
        raise TicketError("an event name of 1-200 characters is required")
    _audited(records, instance_id, "raise_event", actor, {"event": event, "data": data},
             lambda: workflows.raise_event(instance_id, event, data))
    return {"instance_id": instance_id, "event": event, "raised": True}


def suspend(workflows: WorkflowGateway, records: StateStore, read_model: ReadModel | None, actor: Actor,
            instance_id: str, reason: str | None = None) -> dict:
    instance = get_instance(workflows, instance_id)
    if instance.runtime_status not in ("running", "pending"):
        raise OpsConflict(f"instance {instance_id!r} is {instance.runtime_status}, not running: it cannot be suspended")
    _audited(records, instance_id, "suspend", actor, {"reason": reason},
             lambda: workflows.suspend(instance_id, reason))
    if read_model is not None and _is_ticket(instance):
        read_model.set_runtime_status(instance_id, "suspended")
    return {"instance_id": instance_id, "runtime_status": "suspended"}


def resume(workflows: WorkflowGateway, records: StateStore, read_model: ReadModel | None, actor: Actor,
           instance_id: str, reason: str | None = None) -> dict:
    instance = get_instance(workflows, instance_id)
    if instance.runtime_status != "suspended":
        raise OpsConflict(f"instance {instance_id!r} is {instance.runtime_status}, not suspended: nothing to resume")
    _audited(records, instance_id, "resume", actor, {"reason": reason},
             lambda: workflows.resume(instance_id, reason))
    if read_model is not None and _is_ticket(instance):
        read_model.set_runtime_status(instance_id, "running")
    return {"instance_id": instance_id, "runtime_status": "running"}


def terminate(workflows: WorkflowGateway, records: StateStore, read_model: ReadModel | None, actor: Actor,
              instance_id: str, reason: str | None = None) -> dict:
    """Ends the instance (and its child workflows) at once. Unlike a ticket's cancel, the
    customer is not told: the workflow runs no more code."""
    instance = get_instance(workflows, instance_id)
    if instance.runtime_status in FINISHED:
        raise OpsConflict(f"instance {instance_id!r} is already {instance.runtime_status}")
    output = {"terminated_by": actor.name, "reason": reason}
    _audited(records, instance_id, "terminate", actor, {"reason": reason},
             lambda: workflows.terminate(instance_id, output))
    if read_model is not None and _is_ticket(instance):
        read_model.set_runtime_status(instance_id, "terminated", _STAGE_AFTER["terminated"])
    return {"instance_id": instance_id, "runtime_status": "terminated"}


def purge(workflows: WorkflowGateway, records: StateStore, read_model: ReadModel | None, actor: Actor,
          instance_id: str) -> dict:
    """Deletes a finished instance's state and history (and its child workflows'). Its audit
    log stays, with the purge in it."""
    instance = get_instance(workflows, instance_id)
    if instance.runtime_status not in FINISHED:
        raise OpsConflict(f"instance {instance_id!r} is {instance.runtime_status}: only a finished instance "
                          "(completed, failed, terminated) can be purged; terminate it first")
    _audited(records, instance_id, "purge", actor, {"name": instance.name, "status": instance.runtime_status},
             lambda: workflows.purge(instance_id))
    if read_model is not None and _is_ticket(instance):
        read_model.forget(instance_id)
    return {"instance_id": instance_id, "purged": True}


def purge_finished(workflows: WorkflowGateway, records: StateStore, read_model: ReadModel | None, actor: Actor,
                   older_than_days: float, now: datetime | None = None) -> dict:
    """Purges every finished instance last updated more than `older_than_days` ago."""
    if not 0 <= older_than_days <= 36500:
        raise TicketError("older_than_days must be between 0 and 36500")
    cutoff = (now or _now()) - timedelta(days=older_than_days)
    purged, failed = [], {}
    for instance_id in list(workflows.list_ids()):
        instance = workflows.get(instance_id, payloads=False)
        if instance is None or instance.runtime_status not in FINISHED:
            continue
        updated = parse_time(instance.last_updated_at) or parse_time(instance.created_at)
        if updated is None or updated > cutoff:
            continue
        if "." in instance_id and workflows.get(instance_id.split(".", 1)[0], payloads=False) is not None:
            continue  # an agent run goes with its ticket (purges are recursive)
        try:
            purge(workflows, records, read_model, actor, instance_id)
            purged.append(instance_id)
        except TicketError as error:  # purged meanwhile, or restarted: report, go on
            failed[instance_id] = error.message
    return {"purged": purged, "failed": failed, "older_than_days": older_than_days, "cutoff": cutoff.isoformat()}


def sidecar_rerun(instance_id: str, event_id: int, new_instance_id: str | None) -> str:
    """The sidecar's RerunWorkflowFromEvent (the SDK 1.18.3 does not wrap it); the new id."""
    import grpc
    from dapr.conf import settings as dapr_settings
    from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as service_pb
    from dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc import TaskHubSidecarServiceStub
    from dapr.ext.workflow.util import getAddress

    token = dapr_settings.DAPR_API_TOKEN
    with grpc.insecure_channel(getAddress()) as channel:
        request = service_pb.RerunWorkflowFromEventRequest(sourceInstanceID=instance_id, eventID=event_id,
                                                           newInstanceID=new_instance_id or "")
        response = TaskHubSidecarServiceStub(channel).RerunWorkflowFromEvent(
            request, metadata=[("dapr-api-token", token)] if token else None, timeout=10)
    return response.newInstanceID


def rerun_from_event(workflows: WorkflowGateway, records: StateStore, actor: Actor, instance_id: str,
                     event_id: int, new_instance_id: str | None = None, rerun=sidecar_rerun) -> dict:
    """Starts a new instance that replays this one's history up to the activity scheduled as
    event `event_id`, which runs again (the runtime's RerunWorkflowFromEvent)."""
    instance = get_instance(workflows, instance_id)
    if instance.runtime_status not in FINISHED:
        raise OpsConflict(f"instance {instance_id!r} is {instance.runtime_status}: the runtime reruns only a "
                          "finished instance")
    details = {"event_id": event_id, "new_instance_id": new_instance_id}
    new_id = _audited(records, instance_id, "rerun", actor, details,
                      lambda: rerun(instance_id, event_id, new_instance_id))
    return {"instance_id": instance_id, "new_instance_id": new_id}


# -- system -------------------------------------------------------------------------------------
def _get_json(url: str, timeout: float = 3.0) -> tuple[int | None, Any, str | None]:
    from dapr.conf import settings as dapr_settings

    token = dapr_settings.DAPR_API_TOKEN  # daprd's API answers 401 without it
    try:
        response = httpx.get(url, timeout=timeout, headers={"dapr-api-token": token} if token else None)
    except httpx.HTTPError as error:
        return None, None, f"{type(error).__name__}: {error}"[:300]
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = response.text[:300]
    return response.status_code, body, None


def _health(url: str) -> dict:
    code, _body, error = _get_json(url)
    return {"url": url, "healthy": code is not None and 200 <= code < 300, "status_code": code, "error": error}


def sidecar_http_url() -> str:
    from dapr.conf import settings as dapr_settings

    return (dapr_settings.DAPR_HTTP_ENDPOINT
            or f"http://{dapr_settings.DAPR_RUNTIME_HOST}:{dapr_settings.DAPR_HTTP_PORT}").rstrip("/")


def sidecar_overview(base_url: str | None = None) -> dict:
    """The sidecar's health and metadata (HTTP metadata API: the gRPC one the SDK wraps omits
    subscriptions)."""
    base = base_url or sidecar_http_url()
    health = _health(f"{base}/v1.0/healthz")
    code, metadata, error = _get_json(f"{base}/v1.0/metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    return {
        "health": health, "metadata_error": error if code is None else (None if code == 200 else f"HTTP {code}"),
        "app_id": metadata.get("id"), "runtime_version": metadata.get("runtimeVersion"),
        "enabled_features": metadata.get("enabledFeatures") or [],
        "components": [{"name": c.get("name"), "type": c.get("type"), "version": c.get("version"),
                        "capabilities": c.get("capabilities") or []} for c in metadata.get("components") or []],
        "actors": [{"type": a.get("type"), "count": a.get("count")}
                   for a in metadata.get("actors") or metadata.get("actorRuntime", {}).get("activeActors") or []],
        "actor_runtime": metadata.get("actorRuntime") or {},
        "subscriptions": [{"pubsub": s.get("pubsubname"), "topic": s.get("topic"),
                           "routes": s.get("rules") or [], "dead_letter_topic": s.get("deadLetterTopic"),
                           "type": s.get("type")} for s in metadata.get("subscriptions") or []],
        "app_connection": metadata.get("appConnectionProperties") or {},
    }


def read_model_lag(workflows: WorkflowGateway, read_model: ReadModel, sample: int = 20,
                   now: datetime | None = None) -> dict:
    """Compares the newest `sample` read-model rows with what the runtime says of them now: the
    rows that disagree, and how long the runtime has been ahead of each."""
    now = now or _now()
    rows, _ = read_model.list({}, sample)
    instances = list(_pool.map(lambda r: workflows.get(r["ticket_id"]), rows))
    behind = []
    for row, instance in zip(rows, instances):
        if instance is None:
            behind.append({"ticket_id": row["ticket_id"], "read_model": row.get("status"), "runtime": "purged",
                           "behind_seconds": None})
            continue
        runtime_status, runtime_stage = instance.runtime_status, stage_of(instance)
        if runtime_status != row.get("status") or runtime_stage != row.get("stage"):
            updated = parse_time(instance.last_updated_at)
            behind.append({"ticket_id": row["ticket_id"],
                           "read_model": f"{row.get('status')}/{row.get('stage')}",
                           "runtime": f"{runtime_status}/{runtime_stage}",
                           "behind_seconds": round((now - updated).total_seconds(), 1) if updated else None})
    lags = [b["behind_seconds"] for b in behind if b["behind_seconds"] is not None]
    purge_check = read_model.get_meta(PURGE_CHECK_META)
    return {"rows": read_model.count(), "built_at": read_model.get_meta("built_at"), "sampled": len(rows),
            "disagreeing": behind, "max_behind_seconds": max(lags) if lags else 0.0,
            "purge_check": json.loads(purge_check) if purge_check else {"passes": "none yet"}}


def system_overview(workflows: WorkflowGateway, read_model: ReadModel, settings: Settings,
                    sidecar_url: str | None = None) -> dict:
    return {"sidecar": sidecar_overview(sidecar_url),
            "placement": _health(settings.placement_health_url),
            "scheduler": _health(settings.scheduler_health_url),
            "read_model": read_model_lag(workflows, read_model),
            "stuck_after_seconds": settings.stuck_after,
            "checked_at": _now().isoformat()}
