"""FastAPI dependencies: the settings and the clients the lifespan built once (app.state), so
tests swap any of them with `app.dependency_overrides`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings, get_settings
from app.core.services import Services
from app.readmodel.store import ReadModel
from app.readmodel.ticket_changes import TicketChanges
from app.services.admission import AdmissionGate
from app.services.tickets import ServiceUnavailable
from app.services.workflow_gateway import WorkflowGateway
from app.store import StateStore


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_workflows(request: Request) -> WorkflowGateway:
    return request.app.state.workflows


def get_read_model(services: Annotated[Services, Depends(get_services)]) -> ReadModel:
    return services.read_model


def get_ready_read_model(services: Annotated[Services, Depends(get_services)]) -> ReadModel:
    """The read model once it is built (the worker rebuilds it from the workflows when new or lost)."""
    if not services.read_model.wait_built(timeout=10):
        raise ServiceUnavailable("the ticket list is being rebuilt from the workflows; retry shortly")
    return services.read_model


def get_ticket_changes(request: Request, read_model: Annotated[ReadModel, Depends(get_read_model)]) -> TicketChanges:
    """One watcher of the read model's change markers per app and read model (built on first use)."""
    changes = getattr(request.app.state, "ticket_changes", None)
    if changes is None or changes.source is not read_model:
        changes = request.app.state.ticket_changes = TicketChanges(lambda ids: read_model.change_markers(ids),
                                                                   source=read_model)
    return changes


def get_admission(request: Request) -> AdmissionGate:
    return request.app.state.admission


def get_decision_admission(request: Request) -> AdmissionGate:
    return request.app.state.decision_admission


def get_records(services: Annotated[Services, Depends(get_services)]) -> StateStore:
    return services.records


def get_customers(services: Annotated[Services, Depends(get_services)]) -> StateStore:
    return services.customers


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
WorkflowsDep = Annotated[WorkflowGateway, Depends(get_workflows)]
ReadModelDep = Annotated[ReadModel, Depends(get_read_model)]
ReadyReadModelDep = Annotated[ReadModel, Depends(get_ready_read_model)]
RecordsDep = Annotated[StateStore, Depends(get_records)]
TicketChangesDep = Annotated[TicketChanges, Depends(get_ticket_changes)]
CustomersDep = Annotated[StateStore, Depends(get_customers)]
AdmissionDep = Annotated[AdmissionGate, Depends(get_admission)]
DecisionAdmissionDep = Annotated[AdmissionGate, Depends(get_decision_admission)]
