"""The console's sign-in, CSRF protection and role checks through the real routes and templates,
with the project's own seams swapped (no sidecar): a tampered or missing session signs nobody
in, a form without the session's CSRF token changes nothing, a client may not decide."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from app.api import deps
from app.api.auth import token_registry
from app.console.session import safe_next
from app.core.config import Settings, get_settings
from app.main import create_app
from app.readmodel.store import ReadModel
from tests.api.fakes import FakeStore, FakeWorkflows, waiting

TOKENS = "eng:engineer:engineer-token-0001,cli:client:client-token-00001,op:operator:operator-token-0001"


@pytest.fixture
def console(tmp_path, monkeypatch):
    monkeypatch.setenv("API_TOKENS", TOKENS)
    get_settings.cache_clear()
    token_registry.cache_clear()
    app = create_app()
    workflows, records = FakeWorkflows(), FakeStore()
    read_model = ReadModel(f"sqlite:///{tmp_path}/rm.db")
    services = SimpleNamespace(records=records, customers=FakeStore(), systems=FakeStore())
    app.dependency_overrides.update({
        deps.get_workflows: lambda: workflows, deps.get_records: lambda: records,
        deps.get_services: lambda: services, deps.get_read_model: lambda: read_model,
        deps.get_ready_read_model: lambda: read_model,
    })
    yield TestClient(app, follow_redirects=False), workflows
    read_model.close()
    get_settings.cache_clear()
    token_registry.cache_clear()


def sign_in(client: TestClient, token: str) -> None:
    form = client.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text).group(1)
    response = client.post("/console/login", data={"token": token, "nonce": nonce, "next": "/console/inbox"})
    assert response.status_code == 303 and response.headers["location"] == "/console/inbox"


def csrf(page_html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]*)"', page_html).group(1)


def test_pages_need_a_session_and_a_bad_token_or_nonce_gets_none(console):
    client, _ = console
    assert client.get("/console/inbox").headers["location"].startswith("/console/login?next=")
    form = client.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text).group(1)
    wrong = client.post("/console/login", data={"token": "nope-nope-nope", "nonce": nonce})
    assert "error=invalid" in wrong.headers["location"]
    forged = client.post("/console/login", data={"token": "engineer-token-0001", "nonce": "made-up"})
    assert "error=expired" in forged.headers["location"] and "console_session" not in client.cookies
    sign_in(client, "engineer-token-0001")
    cookie = client.cookies["console_session"]
    assert client.get("/console/inbox").status_code == 200
    client.cookies.clear()
    client.cookies.set("console_session", cookie)
    assert client.get("/console/inbox").status_code == 200  # the same jar entry, untampered
    client.cookies.clear()
    client.cookies.set("console_session", cookie[:-3] + "xyz")
    assert client.get("/console/inbox").status_code == 303


def test_a_form_without_the_sessions_csrf_token_changes_nothing(console):
    client, workflows = console
    workflows.instances["T-1"] = waiting("T-1")
    sign_in(client, "engineer-token-0001")
    assert client.post("/console/tickets/T-1/claim", data={}).status_code == 403
    assert client.post("/console/tickets/T-1/claim", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/console/logout", data={"csrf_token": "forged"}).status_code == 403
    assert workflows.raised == []


def test_a_client_sees_no_decide_form_and_may_not_post_one(console):
    client, workflows = console
    workflows.instances["T-1"] = waiting("T-1", filed_by="cli")
    workflows.instances["T-2"] = waiting("T-2", filed_by="someone-else")
    sign_in(client, "client-token-00001")
    assert client.get("/console/inbox").status_code == 403
    page = client.get("/console/tickets/T-1")
    assert page.status_code == 200 and 'value="approve"' not in page.text
    assert client.get("/console/tickets/T-2").status_code == 404  # not its own
    refused = client.post("/console/tickets/T-1/decide", data={"csrf_token": csrf(page.text), "action": "approve",
                                                               "revision": "0"})
    assert refused.status_code == 403 and "may not approve" in refused.text
    assert workflows.raised == []


def test_operator_actions_are_refused_to_engineers(console):
    client, workflows = console
    workflows.instances["T-1"] = waiting("T-1")
    sign_in(client, "engineer-token-0001")
    page = client.get("/console/ops/instances/T-1")
    assert page.status_code == 200 and "Actions need the operator role." in page.text
    refused = client.post("/console/ops/instances/T-1/actions/terminate", data={"csrf_token": csrf(page.text)})
    assert refused.status_code == 403 and workflows.instances["T-1"].runtime_status == "running"


@pytest.mark.parametrize("target, expected", [
    ("/console/tickets/T-1", "/console/tickets/T-1"), ("https://evil.example/", "/console/inbox"),
    ("//evil.example/console", "/console/inbox"), (None, "/console/inbox"), ("/docs", "/console/inbox")])
def test_sign_in_returns_only_to_console_pages(target, expected):
    assert safe_next(target) == expected


def test_settings_parse_the_console_durations():
    settings = Settings(stuck_after="30m", console_session_max_age="2h")
    assert settings.stuck_after == 1800 and settings.console_session_max_age == 7200
