"""GET /support/cases and POST /support/cases/{id}/retract: the real routes over an in-memory
state store (the project's own seam)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api import deps
from app.api.auth import current_principal
from app.core.security import Principal
from app.knowledge.case_store import CaseStore, ResolvedCase
from app.main import create_app
from tests.unit.memory_state_store import MemoryStateStore

ENGINEER = Principal(name="eng-1", role="engineer")


@pytest.fixture
def world():
    app = create_app()
    records = MemoryStateStore()
    principal = {"value": ENGINEER}
    app.dependency_overrides.update({deps.get_records: lambda: records,
                                     current_principal: lambda: principal["value"]})
    store = CaseStore(records)
    for n in range(5):
        store.add(ResolvedCase(ticket_id=f"T-{n}", text=f"fix {n}", category="connectivity",
                               cited_articles=["app-port-mismatch"], approver="eng-0",
                               resolved_at="2026-11-23T12:00:00+00:00"))
    yield TestClient(app), store, principal


def test_cases_are_listed_by_ticket_id_in_pages(world):
    client, _, _ = world
    first = client.get("/support/cases", params={"limit": 2})
    assert first.status_code == 200, first.text
    assert [c["ticket_id"] for c in first.json()["cases"]] == ["T-0", "T-1"]
    assert first.json()["next_after"] == "T-1"
    rest = client.get("/support/cases", params={"limit": 10, "after": "T-1"}).json()
    assert [c["ticket_id"] for c in rest["cases"]] == ["T-2", "T-3", "T-4"] and rest["next_after"] is None


def test_an_engineer_retracts_a_case_once_and_it_can_be_listed_apart(world):
    client, store, _ = world
    response = client.post("/support/cases/T-2/retract", json={"reason": "superseded by a better fix"})
    assert response.status_code == 200, response.text
    assert response.json()["retracted"] is True and response.json()["retracted_by"] == "eng-1"
    assert store.get("T-2").retraction_reason == "superseded by a better fix"
    again = client.post("/support/cases/T-2/retract")
    assert again.status_code == 200 and again.json()["retraction_reason"] == "superseded by a better fix"
    active = client.get("/support/cases", params={"include_retracted": "false"}).json()["cases"]
    assert [c["ticket_id"] for c in active] == ["T-0", "T-1", "T-3", "T-4"]


def test_retracting_a_ticket_without_a_case_is_404_and_bad_input_is_422(world):
    client, _, _ = world
    missing = client.post("/support/cases/T-99/retract")
    assert missing.status_code == 404 and "no resolved case" in missing.json()["detail"]
    assert client.post("/support/cases/bad%20id/retract").status_code == 422
    assert client.post("/support/cases/T-1/retract", json={"reason": "x" * 501}).status_code == 422
    assert client.post("/support/cases/T-1/retract", json={"other": 1}).status_code == 422
    assert client.get("/support/cases", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize("role,path,method,allowed", [
    ("client", "/support/cases", "get", False), ("operator", "/support/cases", "get", True),
    ("operator", "/support/cases/T-1/retract", "post", False), ("client", "/support/cases/T-1/retract", "post", False)])
def test_roles(world, role, path, method, allowed):
    client, _, principal = world
    principal["value"] = Principal(name=f"{role}-1", role=role)
    response = getattr(client, method)(path)
    assert (response.status_code == 200) is allowed and (allowed or response.status_code == 403), response.text
