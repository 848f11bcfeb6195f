"""FastAPI dependencies: settings and the clients built once at startup."""

from __future__ import annotations

from typing import Annotated

from dapr.clients import DaprClient
from dapr.ext.workflow import DaprWorkflowClient
from fastapi import Depends

from app.core import clients
from app.core.config import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]
DaprDep = Annotated[DaprClient, Depends(clients.dapr_client)]
WorkflowClientDep = Annotated[DaprWorkflowClient, Depends(clients.workflow_client)]
