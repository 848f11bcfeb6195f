"""The clients and stores the service uses, built once at startup (the FastAPI lifespan) and
passed to the routes (app/api/deps.py) and to the activities (app/activities/deps.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dapr.clients import DaprClient

from app.core.config import Settings
from app.core.faults import FaultPlan
from app.core.sidecar_deadline import sidecar_deadline
from app.core.sidecar_watchdog import SidecarWatchdog
from app.delivery.sent_log import MailpitSentLog, SentLog
from app.readmodel.store import ReadModel
from app.services.workflow_gateway import DaprWorkflows, WorkflowGateway
from app.domain.stored import WRITE_ONCE_PREFIXES
from app.store import StateStore, WriteOnceCache


@dataclass
class Services:
    settings: Settings
    dapr: DaprClient
    # The workflow API, for the routes and for the activities that read or stop agent runs.
    workflows: WorkflowGateway
    read_model: ReadModel
    faults: FaultPlan = field(default_factory=FaultPlan)
    # The mail server's log, asked when a delivery's outcome is unknown (None: not configured).
    sent_log: SentLog | None = None
    # Copies of the records store's write-once records, shared by the routes and the steps.
    write_once: WriteOnceCache = field(default_factory=lambda: WriteOnceCache(WRITE_ONCE_PREFIXES))
    # Restarts the sidecar when the runtime wedged a workflow on it (None: SIDECAR_WATCHDOG off).
    watchdog: SidecarWatchdog | None = None

    def store(self, name: str) -> StateStore:
        return StateStore(self.dapr, name)

    @property
    def customers(self) -> StateStore:
        return self.store(self.settings.customer_store)

    @property
    def systems(self) -> StateStore:
        return self.store(self.settings.system_store)

    @property
    def records(self) -> StateStore:
        """analysis-state: proposals, notifications, decisions, publish markers, the inbox."""
        return StateStore(self.dapr, self.settings.analysis_store, write_once=self.write_once)

    def close(self) -> None:
        for closeable in (self.dapr, self.workflows, self.read_model, self.sent_log):
            try:
                if closeable is not None:
                    closeable.close()
            except Exception:  # noqa: BLE001 - closing at shutdown must not mask the cause
                pass


def build_services(settings: Settings) -> Services:
    """Blocks until the sidecar answers (the client polls its health first)."""
    deadline = sidecar_deadline(settings.sidecar_timeout, settings.llm_timeout)
    watchdog = SidecarWatchdog(after_s=settings.sidecar_watchdog_after, cooldown_s=settings.sidecar_watchdog_cooldown) \
        if settings.sidecar_watchdog else None
    return Services(settings=settings, dapr=DaprClient(interceptors=[deadline]),
                    workflows=DaprWorkflows(timeout=settings.sidecar_timeout, watchdog=watchdog), watchdog=watchdog,
                    read_model=ReadModel(settings.read_model_url),
                    faults=FaultPlan.parse(settings.fault_injection),
                    sent_log=MailpitSentLog(settings.email_sent_log_url) if settings.email_sent_log_url else None)
