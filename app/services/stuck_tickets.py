"""A ticket whose workflow stopped moving is escalated to a person.

A workflow that runs moves on its own: its steps finish, its timers fire (the approval timeout
and the SLA escalate a ticket that waits for a decision). One that the runtime has wedged (a turn
handed out and never answered, or one step recorded twice: docs/benchmarks.md, "Runtime problems
found") makes no further change and tells nobody. The sidecar watchdog restarts a sidecar when
calls for such a workflow time out (app/core/sidecar_watchdog.py); this is the backstop that
needs no call: the read model's sweep (app/readmodel/sync.py) hands every running ticket it
checks to `StuckTicketEscalation`, which escalates, reason `workflow_stuck`, one whose instance
has not changed for STUCK_AFTER (15 min), or, while it waits for a decision, for the approval
timeout and STUCK_AFTER, since its own approval timer should have fired by then. The same rule
as the operators' "stuck" (app/services/operations.py `is_stuck`, whose `idle_seconds` it uses),
with the wait for a decision read from the row instead of the instance's payloads, which the
sweep does not fetch. Published once per ticket.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from app.core.services import Services
from app.services.failed_tickets import publish_sweep_escalation
from app.services.operations import idle_seconds
from app.services.workflow_gateway import Instance

REASON = "workflow_stuck"


class StuckTicketEscalation:
    """Called by the sweep with a running ticket's row and instance (without payloads); True
    when it escalated it now. Raises when the escalation could not be published: the sweep logs
    it and asks again at the ticket's next check."""

    def __init__(self, services: Services, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 publish: Callable[[dict, str, str], bool] | None = None):
        self.settings, self._now = services.settings, now
        self._publish = publish or (lambda row, reason, detail: publish_sweep_escalation(services, row, reason, detail))
        # Told already, in this process: the sweep checks a waiting ticket every few seconds, and
        # publish_once would read the records store each time (it also guards other processes).
        self._told: set[str] = set()

    def __call__(self, row: dict, instance: Instance) -> bool:
        ticket_id = row["ticket_id"]
        if ticket_id in self._told or instance.runtime_status not in ("running", "pending"):
            return False
        settings = self.settings
        allowed = settings.stuck_after + (settings.approval_timeout if row.get("awaiting_decision") else 0)
        idle = idle_seconds(instance, self._now())
        if idle is None or idle <= allowed:
            return False
        published = self._publish(
            row, REASON,
            f"no change in the ticket's workflow for {round(idle)} s (stage {row.get('stage')}, "
            f"runtime status {instance.runtime_status}); allowed {round(allowed)} s")
        self._told.add(ticket_id)
        return published
