"""The workflow worker: the runtime that runs the ticket workflows and their activities, and the
read model's upkeep that follows them (a rebuild when it is new, then the sweep).

It runs in a process of its own (`python -m app.workflows.worker`, started and watched by the
API's process: app/core/worker_process.py), so that the REST handlers share neither the GIL nor
their CPU share with the steps' work; or, with WORKER_MODE=inline, inside the API's process.
Both reach the same sidecar over gRPC and share the read model's database.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from functools import partial

from app.core.config import Settings, get_settings
from app.core.services import Services

logger = logging.getLogger(__name__)


class WorkflowWorker:
    """The runtime and the read model's sync, started and stopped together."""

    def __init__(self, services: Services):
        # Imported here: building the runtime imports every activity (and the knowledge base).
        from app.core.held_turns import HeldTurns, WedgedTurnCheck
        from app.core.idle_workflow_wake import IdleWorkflowWake
        from app.readmodel.runtime_watch import RuntimeChangeWatch
        from app.readmodel.sync import PurgeCheck, ReadModelSync
        from app.services.failed_tickets import FailedTicketEscalation
        from app.services.stuck_tickets import StuckTicketEscalation
        from app.workflows.replay import unrecorded_commands
        from app.workflows.runtime import build_workflow_runtime

        settings = services.settings
        self.services = services
        watch, turns = RuntimeChangeWatch(), HeldTurns()
        self.runtime = build_workflow_runtime(with_agents=settings.llm_configured,
                                              versions_module=settings.workflow_versions_module,
                                              activity_threads=settings.activity_threads,
                                              interceptors=[watch, turns])
        # Each running ticket the sweep checks: a turn the runtime holds on this replica's sidecar
        # restarts it (when the watchdog is on); one whose last answer the runtime lost is woken;
        # one stuck past STUCK_AFTER goes to a person.
        running_checks = [IdleWorkflowWake(services.workflows, partial(unrecorded_commands, self.runtime),
                                           after_s=settings.sidecar_watchdog_after),
                          StuckTicketEscalation(services)]
        if services.watchdog is not None:
            running_checks.insert(0, WedgedTurnCheck(turns, services.watchdog, services.workflows))
        self.sync = ReadModelSync(services.workflows, services.read_model, watch=watch, purge_check=PurgeCheck(),
                                  on_failed=FailedTicketEscalation(services),
                                  on_running=running_checks)

    def start(self) -> None:
        from app.activities import deps

        if self.services.faults:
            logger.warning("FAULT_INJECTION is set: activities will fail on purpose",
                           extra={"rules": [str(rule) for rule in self.services.faults.rules]})
        deps.provide(self.services)
        self.runtime.start()
        self.sync.start()
        logger.info("workflow runtime started", extra={"llm_mode": self.services.settings.effective_llm_provider,
                                                       "pid": os.getpid()})

    def stop(self) -> None:
        from app.activities import deps

        self.services.faults.release()  # hung (injected) activities return, so the worker can stop
        self.sync.stop()
        self.runtime.shutdown()
        deps.provide(None)


def run_worker_process(settings: Settings) -> None:
    """The worker as a process of its own: runs until SIGTERM or SIGINT."""
    from app.core.logging import configure_logging
    from app.core.services import build_services
    from app.core.tracing import configure_grpc_tracing
    from app.core.worker_process import die_with_parent

    die_with_parent()
    # First, so that every thread started afterwards (gRPC's, the activities') inherits it.
    os.nice(settings.worker_nice)
    configure_logging(settings.log_level)
    configure_grpc_tracing(settings.tracing_enabled)  # before the first channel is opened
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    services = build_services(settings)  # the client polls the sidecar's health before returning
    worker = WorkflowWorker(services)
    worker.start()
    try:
        while not stopping.wait(1.0):  # a timed wait lets the signal handler run promptly
            pass
    finally:
        logger.info("workflow worker stopping", extra={"pid": os.getpid()})
        worker.stop()
        services.close()


if __name__ == "__main__":
    run_worker_process(get_settings())
