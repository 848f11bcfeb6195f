"""The FastAPI app. Its lifespan waits for the sidecar, then starts the workflow runtime and the
clients once for the whole process."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.auth import token_registry
from app.api.errors import install_error_handlers
from app.api.routes import approvals, health, inbox, lifecycle, status, tickets
from app.core import clients
from app.core.config import get_settings
from app.core.logging import configure_logging

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(_: FastAPI):
    settings = get_settings()
    configure_logging(settings.log_level)
    token_registry()  # refuses to start without API_TOKENS (unless DEV_MODE)
    # Imported here: building the runtime imports every activity (and the knowledge base).
    from app.workflows.runtime import build_workflow_runtime

    clients.dapr_client()  # the client polls the sidecar's health (DAPR_HEALTH_TIMEOUT) before returning
    runtime = build_workflow_runtime(with_agents=settings.llm_configured)
    runtime.start()
    logger.info("workflow runtime started", extra={"llm_mode": settings.effective_llm_provider})
    try:
        yield
    finally:
        runtime.shutdown()
        clients.close_clients()


def create_app() -> FastAPI:
    app = FastAPI(title="Support ticket workflow service", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    for module in (tickets, approvals, status, lifecycle, health, inbox):
        app.include_router(module.router)
    return app


app = create_app()
