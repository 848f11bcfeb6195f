"""The FastAPI app. Its lifespan waits for the sidecar, then builds the clients and stores once,
starts the workflow runtime (handing the activities the same clients) and the read model's
upkeep."""

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
    # Imported here: building the runtime imports every activity (and the knowledge base).
    from app.activities import deps
    from app.core.services import build_services
    from app.core.tracing import configure_grpc_tracing
    from app.readmodel.runtime_watch import RuntimeChangeWatch
    from app.readmodel.sync import PurgeCheck, ReadModelSync
    from app.services.admission import AdmissionGate
    from app.workflows.runtime import build_workflow_runtime

    configure_grpc_tracing(settings.tracing_enabled)  # before the first channel is opened
    services = build_services(settings)  # the client polls the sidecar's health before returning
    if services.faults:
        logger.warning("FAULT_INJECTION is set: activities will fail on purpose",
                       extra={"rules": [f"{a}@{p}:{m}" for a, p, m in services.faults.rules]})
    workflows = services.workflows
    app.state.services, app.state.workflows = services, workflows
    app.state.admission = AdmissionGate(settings.max_active_tickets, services.read_model)
    app.state.decision_admission = AdmissionGate(settings.max_active_decisions, services.read_model,
                                                 working_on="notification after a decision")
    deps.provide(services)
    watch = RuntimeChangeWatch()
    runtime = build_workflow_runtime(with_agents=settings.llm_configured,
                                     versions_module=settings.workflow_versions_module,
                                     activity_threads=settings.activity_threads, interceptors=[watch])
    runtime.start()
    sync = ReadModelSync(workflows, services.read_model, watch=watch, purge_check=PurgeCheck())
    app.state.read_model_sync = sync
    sync.start()
    logger.info("workflow runtime started", extra={"llm_mode": settings.effective_llm_provider})
    try:
        yield
    finally:
        services.faults.release()  # hung (injected) activities return, so the worker can stop
        sync.stop()
        runtime.shutdown()
        workflows.close()
        deps.provide(None)
        services.close()


def create_app() -> FastAPI:
    app = FastAPI(title="Support ticket workflow service", version="0.2.0", lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=get_settings().max_body_bytes)
    for module in (tickets, approvals, status, lifecycle, cases, health, inbox, ops, console, console_ops):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=CONSOLE_STATIC), name="console-static")
    return app


app = create_app()
