"""Keeps the read model in agreement with the runtime.

- `rebuild`: recreates it from the workflows alone (ListInstanceIDs, then each instance's history:
  the inputs of its `record_progress` steps and (v2) the records its other steps carried are
  exactly what the read model applied), for when it is lost or new.
- `reconcile`: corrects rows for what a workflow cannot record itself: FAILED, TERMINATED,
  SUSPENDED (by an operator) and purged instances. Run by a background sweep (`ReadModelSync`),
  never by a read: a list page answers from the read model alone.
- `PurgeCheck`: a purge made around the API reaches no worker; the sweep lists the runtime's
  instances and looks up the rows it lacks. The same listing names the ticket instances that
  have no row: the runtime lost the turn that would have recorded the filing (seen in the
  replicated drill: "Ignoring complete task which no longer exists" for a first turn under a
  scheduler node's loss), or holds the start in its inbox with nothing to run it. `adopt` makes
  their row from the start's input, so the list shows them and the running checks (the idle
  wake, the stuck escalation) see them.

A ticket found FAILED is handed to `on_failed` (the worker's: app/services/failed_tickets.py, an
escalation to a person) before its row says so; when that raises, the row is left as it was and
the next turn that checks it tries again, so no failed ticket goes unannounced. Every ticket found
still running is handed to each of the `on_running` checks (the worker's: app/core/held_turns.py,
which restarts a sidecar that holds its turn, and app/services/stuck_tickets.py, which escalates
one whose workflow stopped moving); when one raises, the others still run and its next check asks
again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from app.readmodel.runtime_watch import RuntimeChangeWatch
from app.readmodel.store import PURGE_CHECK_META, ReadModel
from app.services.workflow_gateway import Instance, WorkflowGateway, run_held_start
from app.workflows.contracts import (PROGRESS_FIELD, TICKET_WORKFLOW, Activities, ProgressRecord,
                                     TicketWorkflowInput, carried_record, filing_progress)

logger = logging.getLogger(__name__)

# Runtime statuses the workflow cannot record itself, and the stage a list shows for each.
STAGE_FOR_STATUS = {"failed": "failed", "terminated": "cancelled"}
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="reconcile")
# Told of a ticket found FAILED (its read-model row, its instance with the failure message); raises
# when it could not act, and is called again on a later turn.
OnFailed = Callable[[dict, Instance], object]
# Told of a ticket found running (its row, its instance without payloads), at each check.
OnRunning = Callable[[dict, Instance], object]


def progress_records(history: list) -> list[ProgressRecord]:
    """The ProgressRecords an instance recorded: the inputs of its `record_progress` steps, and
    (v2) the records its other steps carried."""
    records = []
    for event in history:
        if not event.HasField("taskScheduled"):
            continue
        if event.taskScheduled.name == Activities.RECORD:
            records.append(ProgressRecord.model_validate_json(event.taskScheduled.input.value))
        elif PROGRESS_FIELD in event.taskScheduled.input.value:
            carried = carried_record(json.loads(event.taskScheduled.input.value))
            if carried is not None:
                records.append(carried)
    return records


def rebuild(workflows: WorkflowGateway, read_model: ReadModel, on_failed: OnFailed | None = None) -> int:
    """Re-creates every ticket's row and timeline from the workflows; returns the count."""
    read_model.clear()
    count = 0
    for instance_id in workflows.list_ids():
        instance = workflows.get(instance_id, payloads=False)
        if instance is None or instance.name != TICKET_WORKFLOW:
            continue  # agent child workflows and other instances are not tickets
        for record in progress_records(workflows.history(instance_id)):
            read_model.apply(record)
        if instance.runtime_status == "failed" and not _told_of_failure(workflows, read_model, instance_id, on_failed):
            continue  # the row stays as recorded; the sweep finds it failed and tries again
        _apply_runtime_status(read_model, instance_id, instance.runtime_status)
        count += 1
    read_model.set_meta("built_at", datetime.now(timezone.utc).isoformat())
    logger.info("read model rebuilt from the workflows", extra={"tickets": count})
    return count


def adopt(workflows: WorkflowGateway, read_model: ReadModel, instance_id: str) -> bool | None:
    """Makes the row of a ticket instance the runtime holds and the read model lacks, from its
    start's input as the workflow's first record would (at seq 0: that record, when it comes,
    replaces it). True when adopted; False when the instance is no ticket; None when it cannot
    be told yet (gone, a start the runtime does not describe, or a row by now).

    A pending instance the runtime does not describe holds its start in its inbox with nothing
    due to run it: it is woken (`run_held_start`), and the workflow records its filing itself."""
    instance = workflows.get(instance_id)
    if instance is None:
        return None
    if not instance.name:
        if instance.runtime_status == "pending":
            run_held_start(workflows, instance_id, {"reason": "pending without a row"})
            logger.warning("the runtime holds a start with nothing to run it: woke the instance, whose turn runs it",
                           extra={"ticket_id": instance_id})
        return None
    if instance.name != TICKET_WORKFLOW:
        return False  # an agent's child workflow
    try:
        ticket = TicketWorkflowInput.model_validate(instance.input)
    except ValueError:
        return False
    progress, events = filing_progress(ticket, version=None)
    if not read_model.apply(ProgressRecord(ticket_id=instance_id, seq=0, progress=progress, events=events)):
        return None
    logger.warning("a ticket the runtime holds had no row: its workflow never recorded its filing",
                   extra={"ticket_id": instance_id, "runtime_status": instance.runtime_status})
    return True


def _apply_runtime_status(read_model: ReadModel, ticket_id: str, runtime_status: str) -> None:
    if runtime_status in STAGE_FOR_STATUS:
        read_model.set_runtime_status(ticket_id, runtime_status, STAGE_FOR_STATUS[runtime_status])
    elif runtime_status in ("suspended", "running", "completed", "stalled"):
        read_model.set_runtime_status(ticket_id, runtime_status)


def _told_of_failure(workflows: WorkflowGateway, read_model: ReadModel, ticket_id: str,
                     on_failed: OnFailed | None) -> bool:
    """on_failed called for a ticket found FAILED (with its failure message, which a lookup
    without payloads lacks); False when it raised."""
    if on_failed is None:
        return True
    row = read_model.get(ticket_id) or {"ticket_id": ticket_id}
    try:
        instance = workflows.get(ticket_id)
        if instance is not None:
            on_failed(row, instance)
        return True
    except Exception as error:  # noqa: BLE001 - told again on the next turn that checks it
        logger.warning("a failed ticket was not escalated; the sweep tries again", extra={
            "ticket_id": ticket_id, "error": f"{type(error).__name__}: {error}"[:300]})
        return False


def reconcile(workflows: WorkflowGateway, read_model: ReadModel, rows: list[dict],
              on_failed: OnFailed | None = None, on_running: Sequence[OnRunning] = ()) -> list[dict]:
    """The rows, each corrected to what the runtime says of its instance now (purged ones
    dropped), checked in parallel. Finished rows are checked too: a finished instance can
    still be purged, or terminated by an operator just before it completed."""
    to_check = rows
    if not to_check:
        return rows
    found = dict(zip([r["ticket_id"] for r in to_check],
                     _pool.map(lambda r: workflows.get(r["ticket_id"], payloads=False), to_check)))
    result = []
    for row in rows:
        if row["ticket_id"] not in found:
            result.append(row)
            continue
        instance = found[row["ticket_id"]]
        if instance is None:
            read_model.forget(row["ticket_id"])
            continue
        status = instance.runtime_status
        if status == "running" and row.get("status") == "completed":
            # The workflow recorded its end and is returning: a lookup made before the runtime
            # committed that reads it still running must not undo the record.
            result.append(row)
            continue
        if status == "completed" and row.get("status") != "completed":
            # Finished since, and its last record is not in (still on its way, or it failed
            # after its retries): the row takes the final stage the workflow showed.
            row = {**row, "status": status, "awaiting_decision": False,
                   "stage": instance.custom_status.get("stage", row.get("stage"))}
            read_model.set_runtime_status(row["ticket_id"], status, row["stage"])
        if status == "failed" and row.get("status") != "failed" \
                and not _told_of_failure(workflows, read_model, row["ticket_id"], on_failed):
            result.append(row)
            continue
        if status in ("running", "pending"):
            _tell_running(on_running, row, instance)
        if status != row.get("status"):
            _apply_runtime_status(read_model, row["ticket_id"], status)
            row = {**row, "status": status, **({"stage": STAGE_FOR_STATUS[status], "awaiting_decision": False}
                                                 if status in STAGE_FOR_STATUS else {})}
        result.append(row)
    read_model.mark_checked(found)
    return result


def _tell_running(checks: Sequence[OnRunning], row: dict, instance: Instance) -> None:
    for check in checks:
        try:
            check(row, instance)
        except Exception as error:  # noqa: BLE001 - asked again at the ticket's next check
            logger.warning("a running ticket's check failed; the sweep asks again", extra={
                "ticket_id": row["ticket_id"], "check": type(check).__name__,
                "error": f"{type(error).__name__}: {error}"[:300]})


class RowlessInstances:
    """The instances the runtime lists that have no row, fed by each listing of the purge check:
    after ADOPT_AFTER_S without one (a ticket's first record normally lands within a second of
    its start) they are handed to `adopt`, at most ADOPT_PER_PASS a pass, each again only after
    another ADOPT_AFTER_S without a row. Those found to be no ticket are not named again."""

    ADOPT_AFTER_S = 30.0
    ADOPT_PER_PASS = 20

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._since: dict[str, float] = {}  # listed instance without a row -> first seen
        self._not_tickets: set[str] = set()
        self._due: list[str] = []

    def listed(self, rowless: set[str], at: float) -> None:
        """What one listing found without a row, at `at` (the clock's reading)."""
        self._since = {t: self._since.get(t, at) for t in rowless - self._not_tickets}
        self._due = [t for t, since in self._since.items() if at - since >= self.ADOPT_AFTER_S][:self.ADOPT_PER_PASS]

    def take(self) -> list[str]:
        taken, self._due = self._due, []
        now = self._clock()
        for instance_id in taken:
            self._since[instance_id] = now
        return taken

    def not_a_ticket(self, instance_id: str) -> None:
        self._not_tickets.add(instance_id)
        self._since.pop(instance_id, None)


class PurgeCheck:
    """Names the rows whose instance the runtime no longer lists: purged around the API (an
    operator's `dapr workflow purge` goes to the sidecar, and no work item tells the worker).
    A listing (ListInstanceIDs) scans the keys of the runtime's state store, so its cost grows
    with every instance kept: passes are spaced so that listing takes at most `share` of the
    time, at least `min_interval` apart (a pass over a few hundred instances takes milliseconds;
    `last_pass_s` says what it took). A named row is only a suspect: the sweep looks it up and
    drops it only if the runtime answers that the instance does not exist. The same listing
    feeds `rowless`: instances the runtime holds that no row shows."""

    # Rows filed within this margin before a listing began may be missing from it for no other
    # reason than clocks (a replica's filed_at against this one's); the next pass covers them.
    CLOCK_MARGIN = timedelta(seconds=5)
    RETRY_AFTER_FAILURE_S = 60.0

    def __init__(self, min_interval: float = 0.5, share: float = 0.05, clock: Callable[[], float] = time.monotonic):
        self.min_interval, self.share = min_interval, share
        self.last_pass_s: float | None = None
        self.passes = 0
        self.last_listed = 0
        self.spacing_s = min_interval  # between the starts of two passes, from the last one's cost
        self._next = 0.0
        self._clock = clock
        self.rowless = RowlessInstances(clock)

    def suspects(self, workflows: WorkflowGateway, read_model: ReadModel) -> list[str]:
        started = self._clock()
        if started < self._next:
            return []
        listing_began = (datetime.now(timezone.utc) - self.CLOCK_MARGIN).isoformat()
        try:
            listed = set(workflows.list_ids())
        except Exception as error:  # noqa: BLE001 - the rest of the sweep's turn goes on
            # A store that cannot list keys, or a sidecar restarting: try again a minute later.
            self._next = started + self.RETRY_AFTER_FAILURE_S
            logger.warning("listing the runtime's instances for purges failed",
                           extra={"error": f"{type(error).__name__}: {error}"[:300]})
            return []
        missing = [t for t in read_model.filed_before(listing_began) if t not in listed]
        self.rowless.listed(listed - read_model.ticket_ids(), started)
        self.last_pass_s = self._clock() - started
        self.passes += 1
        self.spacing_s = max(self.min_interval, self.last_pass_s / self.share)
        self._next = started + self.spacing_s
        self.last_listed = len(listed)
        return missing

    def describe(self) -> dict:
        """What the last pass cost and how far apart passes are now (operators' system view)."""
        if self.last_pass_s is None:
            return {"passes": "none yet"}
        return {"instances_listed": self.last_listed, "last_pass_s": round(self.last_pass_s, 3),
                "seconds_between_passes": round(self.spacing_s, 2)}


class ReadModelSync:
    """Background upkeep: a rebuild when the read model is new, then a sweep that reconciles
    the rows still thought running, least recently checked first."""

    # At most `batch` rows a turn (every `interval` s), each at most once per `min_age` s: with
    # up to `batch` rows running, a change made around the API (an operator's CLI) shows under a
    # status filter within about a second (benchmarks/view_lag.py); with more, the cost stays
    # `batch / interval` lookups a second and each row waits its turn. Rows with a step in flight
    # come first (up to `in_flight` a turn): a workflow fails while it runs, so a FAILED ticket
    # shows within about a second while at most `in_flight` are in flight (admission control
    # keeps them few), however many wait for a decision. Before both come the instances the
    # runtime changed outside their workflow's code (`watch`, an operator's CLI terminate,
    # suspend or resume, noticed in the worker's work items: app/readmodel/runtime_watch.py). The
    # waiting rows share the rest of the turn: the service's own operations update the row at
    # once, and the watch names those an operator changes, so the waiting rows' turns are the
    # backstop. A purge reaches no worker: the purge check names those rows, first of all.
    def __init__(self, workflows: WorkflowGateway, read_model: ReadModel, interval: float = 0.5,
                 batch: int = 15, min_age: float = 0.5, in_flight: int = 10,
                 watch: RuntimeChangeWatch | None = None, purge_check: PurgeCheck | None = None,
                 on_failed: OnFailed | None = None, on_running: Sequence[OnRunning] = ()):
        self.workflows, self.read_model, self.watch = workflows, read_model, watch
        self.on_failed, self.on_running = on_failed, on_running
        self.purge_check = purge_check
        self.interval, self.batch, self.min_age, self.in_flight = interval, batch, min_age, in_flight
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-model-sync", daemon=True)
        self._passes_shown = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.read_model.get_meta("built_at") is None:
                    rebuild(self.workflows, self.read_model, self.on_failed)
                self.turn()
            except Exception as error:  # noqa: BLE001 - the sweep retries at its next turn
                logger.warning("read model sync failed", extra={"error": f"{type(error).__name__}: {error}"[:300]})
            self._stop.wait(self.interval)

    def turn(self) -> list[str]:
        """One turn of the sweep: reconciles the rows the purge check suspects, the instances
        the watch noticed, then the rows in flight, then waiting ones; returns the ids it checked."""
        cutoff = (datetime.now(timezone.utc) - timedelta(seconds=self.min_age)).isoformat()
        ids = self.purge_check.suspects(self.workflows, self.read_model) if self.purge_check else []
        if self.purge_check is not None and self.purge_check.passes != self._passes_shown:
            # For the operators' system view, which the API's process answers.
            self.read_model.set_meta(PURGE_CHECK_META, json.dumps(self.purge_check.describe()))
            self._passes_shown = self.purge_check.passes
        for instance_id in self.purge_check.rowless.take() if self.purge_check else []:
            try:
                adopted = adopt(self.workflows, self.read_model, instance_id)
            except Exception as error:  # noqa: BLE001 - still rowless: the next pass names it again
                logger.warning("a ticket without a row was not adopted; the sweep tries again", extra={
                    "ticket_id": instance_id, "error": f"{type(error).__name__}: {error}"[:300]})
                continue
            if adopted is False:
                self.purge_check.rowless.not_a_ticket(instance_id)
            elif adopted:
                ids.append(instance_id)
        ids += self.watch.due() if self.watch else []
        ids += self.read_model.running(self.in_flight, cutoff, waiting=False)
        if (room := self.batch - len(ids)) > 0:
            ids += self.read_model.running(room, cutoff, waiting=True)
        ids = list(dict.fromkeys(ids))
        rows = [row for row in map(self.read_model.get, ids) if row]
        if rows:
            reconcile(self.workflows, self.read_model, rows, self.on_failed, self.on_running)
        return ids
