"""The FastAPI app. Its lifespan waits for the sidecar, builds the clients and stores once, and
starts the workflow worker (app/workflows/worker.py: the runtime and the read model's upkeep) in a
process of its own, or in this one with WORKER_MODE=inline."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.api.auth import token_registry
from app.api.errors import install_error_handlers
from app.api.limits import BodySizeLimit
from app.api.routes import approvals, cases, health, inbox, lifecycle, ops, status, tickets
from app.api.sidecar_auth import SidecarTokenError, check_sidecar_tokens
from app.console import ops_pages as console_ops
from app.console import routes as console
from app.console.rendering import STATIC as CONSOLE_STATIC
from app.core.config import get_settings
from app.core.logging import configure_logging
from app.core.security import TokenConfigError

logger = logging.getLogger(__name__)
# How long the start waits for the worker process to connect to the sidecar before serving.
WORKER_CONNECT_TIMEOUT_S = 60.0


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    configure_logging(settings.log_level)
    # Refuses to start without API_TOKENS (unless DEV_MODE), with development tokens outside
    # DEV_MODE, or without the tokens daprd and the app authenticate each other with.
    try:
        principals = token_registry().principals
        check_sidecar_tokens(settings)
    except (TokenConfigError, SidecarTokenError) as error:
        logger.critical(f"refusing to start: {error}")
        raise
    logger.info("API principals", extra={"principals": [p.describe() for p in principals],
                                         "dev_mode": settings.dev_mode})
    if settings.dev_mode:
        logger.warning("DEV_MODE=true: the published development tokens are accepted; never in production")
    from app.core.services import build_services
    from app.core.tracing import configure_grpc_tracing
    from app.services.admission import AdmissionGate

    configure_grpc_tracing(settings.tracing_enabled)  # before the first channel is opened
    services = build_services(settings)  # the client polls the sidecar's health before returning
    app.state.services, app.state.workflows = services, services.workflows
    app.state.admission = AdmissionGate(settings.max_active_tickets, services.read_model)
    app.state.decision_admission = AdmissionGate(settings.max_active_decisions, services.read_model,
                                                 working_on="notification after a decision")
    worker = _start_worker(services)
    try:
        yield
    finally:
        worker.stop()
        services.close()


def _start_worker(services):
    """The workflow worker, started: its own process (WORKER_MODE=process), or in this one."""
    if services.settings.worker_mode == "inline":
        from app.workflows.worker import WorkflowWorker

        worker = WorkflowWorker(services)
        worker.start()
        return worker
    from app.core.sidecar_http import wait_for_workflow_worker
    from app.core.worker_process import WorkerProcess

    worker = WorkerProcess()
    worker.start()
    # Serve once the worker is connected, as the inline worker is: a ticket filed earlier would
    # wait for it anyway. Readiness (/health/ready) keeps saying so if it never connects.
    if not wait_for_workflow_worker(WORKER_CONNECT_TIMEOUT_S):
        logger.error("no workflow worker connected to the sidecar yet; serving anyway",
                     extra={"waited_s": WORKER_CONNECT_TIMEOUT_S, "worker_pid": worker.pid})
    return worker


def create_app() -> FastAPI:
    app = FastAPI(title="Support ticket workflow service", version="0.2.0", lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=get_settings().max_body_bytes)
    for module in (tickets, approvals, status, lifecycle, cases, health, inbox, ops, console, console_ops):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=CONSOLE_STATIC), name="console-static")
    return app


app = create_app()
