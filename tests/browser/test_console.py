"""The support console in a real browser against the real service on real Dapr: the inbox
updating without a reload, claims, approving with an edit, rejecting for a revision, an
operator terminating an instance (audited), a client refused, accessibility (axe-core), and
the terminal command printing the same history. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from app.workflows.contracts import TICKET_WORKFLOW_LATEST
from scripts.devstack import REPO
from tests.support.harness import TEST_TOKENS, ServicePorts, poll, wait_for_stage

BASE_PORT = 13000
SCREENSHOTS = REPO / "docs" / "screenshots"
DESCRIPTION = "Production checkout is down: the sidecar gets connection refused from the app on port 5000"


@pytest.fixture(scope="module")
def service(service_factory):
    infra = ServicePorts(BASE_PORT).infra
    return service_factory("console", BASE_PORT, app_env={
        "APPROVAL_TIMEOUT": "1h", "STUCK_AFTER": "5s",
        # CON-STUCK's triage never returns: a genuinely stuck instance for the operator to find.
        "FAULT_INJECTION": "triage_ticket@CON-STUCK:hang",
        "PLACEMENT_HEALTH_URL": f"http://127.0.0.1:{infra.placement_healthz}/healthz",
        "SCHEDULER_HEALTH_URL": f"http://127.0.0.1:{infra.scheduler_healthz}/healthz"})


@pytest.fixture(scope="module")
def engineer(service):
    with service.client("engineer") as client:
        yield client


def signed_in(browser, service, role: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{service.url}/console/inbox")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_label("Token").fill(TEST_TOKENS[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as tester-{role}")).to_be_visible()
    return page


def file_ticket(client, ticket_id: str, description: str = DESCRIPTION, customer_id: str = "CUST001") -> None:
    response = client.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": customer_id,
                                                    "description": description})
    assert response.status_code == 202, response.text


def waiting_in_read_model(client, ticket_id: str) -> None:
    poll(lambda: [t["ticket_id"] for t in client.get("/support/tickets", params={"awaiting_decision": "true",
                                                                                  "limit": 200}).json()["tickets"]],
         lambda ids: ticket_id in ids, 60, interval=0.05, message=f"{ticket_id} never waited for a decision")


def csrf_of(page: Page) -> str:
    return page.locator('meta[name="csrf-token"]').get_attribute("content")


def serious_violations(page: Page) -> list:
    results = Axe().run(page)
    return [(v["id"], v["impact"], [n["html"][:120] for n in v["nodes"][:3]])
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_sign_in_refuses_a_wrong_token_and_the_cookie_is_strict(browser, service):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{service.url}/console/login")
    page.get_by_label("Token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("Token").fill(TEST_TOKENS["engineer"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # A tampered cookie is no session.
    context.add_cookies([{**cookie, "value": cookie["value"][:-2] + ("AA" if not cookie["value"].endswith("AA") else "BB")}])
    page.goto(f"{service.url}/console/inbox")
    expect(page).to_have_url(re.compile(r"/console/login"))
    context.add_cookies([cookie])
    # A form post without the session's CSRF token is refused.
    response = page.request.post(f"{service.url}/console/logout", form={"csrf_token": "forged"})
    assert response.status == 403
    context.close()


def test_inbox_updates_live_then_claim_and_approve_with_an_edit(browser, service, engineer):
    page = signed_in(browser, service, "engineer")
    page.evaluate("window.__not_reloaded = true")
    file_ticket(engineer, "CON-APPROVE")
    waiting_in_read_model(engineer, "CON-APPROVE")
    # Server-sent events: the row shows up among the waiting ones within 2 s, without a reload.
    expect(page.locator("#waiting #row-CON-APPROVE")).to_be_visible(timeout=2000)
    assert page.evaluate("window.__not_reloaded === true")
    expect(page.locator("#row-CON-APPROVE")).to_contain_text("critical")
    expect(page.locator("#row-CON-APPROVE")).to_contain_text("enterprise")
    expect(page.locator("#row-CON-APPROVE .sla")).to_contain_text(re.compile(r"^in "))
    page.screenshot(path=str(SCREENSHOTS / "inbox.png"), full_page=True)

    page.get_by_role("link", name="CON-APPROVE").click()
    expect(page.get_by_role("heading", name="Ticket CON-APPROVE")).to_be_visible()
    page.get_by_role("button", name="Claim this ticket").click()
    expect(page.locator("#claim-holder")).to_have_text("tester-engineer")

    # Another user sees who holds it.
    operator = signed_in(browser, service, "operator")
    operator.goto(f"{service.url}/console/inbox")
    expect(operator.locator("#row-CON-APPROVE")).to_contain_text("tester-engineer")
    operator.context.close()

    # The ticket page: customer panel, triage with its signals, cited articles that open.
    expect(page.locator("#customer-h + dl")).to_contain_text("Acme Corporation")
    expect(page.get_by_role("heading", name="Why (signals)")).to_be_visible()
    article = page.locator("#revision-0 a[href^='/console/articles/']").first
    expect(article).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "ticket.png"), full_page=True)

    editor = page.get_by_label("Edited solution (sent to the customer)")
    expect(editor).to_have_value(re.compile(r"Steps:"))  # prefilled with the proposal
    edited = "EDITED BY CONSOLE TEST: set --app-port 5000 on the sidecar and restart the pod."
    editor.fill(edited)
    page.get_by_role("button", name="Approve with this text").click()
    expect(page.locator("#message")).to_contain_text("Approved")
    # The live region follows the workflow to its end, then shows the notification as sent.
    expect(page.locator("#stage")).to_have_text("completed", timeout=30000)
    expect(page.locator("#notification-resolved")).to_contain_text(edited, timeout=10000)
    expect(page.locator("#timeline")).to_contain_text("claimed")
    assert page.get_by_role("button", name="Approve the proposal").count() == 0
    page.context.close()


def test_a_second_decision_on_a_moved_on_ticket_is_shown_as_a_conflict(browser, service, engineer):
    file_ticket(engineer, "CON-CONFLICT")
    waiting_in_read_model(engineer, "CON-CONFLICT")
    page = signed_in(browser, service, "engineer")
    page.goto(f"{service.url}/console/tickets/CON-CONFLICT")
    expect(page.get_by_role("button", name="Approve the proposal")).to_be_visible()
    # Someone else approves meanwhile (over the API); this page still offers the old decision.
    assert engineer.post("/support/approve/CON-CONFLICT", json={"approved": True, "revision": 0}).status_code == 202
    response = page.request.post(f"{service.url}/console/tickets/CON-CONFLICT/decide", form={
        "csrf_token": csrf_of(page), "action": "reject", "revision": "0", "support_notes": "late"})
    assert response.status == 409
    assert "Conflict:" in response.text() and "<h1>Ticket CON-CONFLICT</h1>" in response.text()
    page.context.close()


def test_reject_with_notes_shows_revision_1(browser, service, engineer):
    file_ticket(engineer, "CON-REJECT")
    waiting_in_read_model(engineer, "CON-REJECT")
    page = signed_in(browser, service, "engineer")
    page.goto(f"{service.url}/console/tickets/CON-REJECT")
    notes = "Check the app port first; the customer runs on AKS."
    page.get_by_label("Notes for the revision").fill(notes)
    page.get_by_role("button", name="Reject and ask for a revision").click()
    expect(page.locator("#message")).to_contain_text("Rejected")
    expect(page.locator("#revision-1")).to_be_visible(timeout=30000)
    expect(page.locator("#revision-1")).to_contain_text(notes)
    expect(page.locator("#revision-0 .decision")).to_contain_text("rejected by tester-engineer")
    expect(page.get_by_role("button", name="Approve the proposal")).to_be_visible(timeout=10000)  # revision 1 waits
    assert serious_violations(page) == []
    page.context.close()


def test_an_operator_terminates_a_stuck_instance_audited_and_shown_everywhere(browser, service, engineer):
    file_ticket(engineer, "CON-WAIT")
    waiting_in_read_model(engineer, "CON-WAIT")
    file_ticket(engineer, "CON-STUCK")
    # Its triage hangs: no progress, so after STUCK_AFTER the runtime listing calls it stuck.
    with service.client("operator") as operator:
        poll(lambda: [r["instance_id"] for r in operator.get("/ops/instances", params={"stuck": "true"}).json()["instances"]],
             lambda ids: "CON-STUCK" in ids, 60, interval=0.5, message="CON-STUCK never listed as stuck")
    page = signed_in(browser, service, "operator")
    page.get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="Stuck", exact=True).click()
    row = page.locator("#instances tr").filter(has_text="CON-STUCK")
    expect(row).to_contain_text("STUCK")
    expect(page.locator("#instances")).not_to_contain_text("CON-WAIT")  # waiting on purpose is not stuck
    assert serious_violations(page) == []
    page.get_by_role("link", name="CON-STUCK", exact=True).click()
    expect(page.locator("#runtime-status")).to_have_text("RUNNING")
    expect(page.locator(".badge-danger")).to_have_text("STUCK")
    expect(page.locator("#history")).to_contain_text("activity triage_ticket scheduled")
    expect(page.locator("#history")).not_to_contain_text("activity triage_ticket completed")
    assert serious_violations(page) == []
    page.get_by_role("link", name="Terminate…").click()
    page.get_by_label("Reason (for the audit log)").fill("stuck drill")
    page.get_by_role("button", name="Confirm: terminate").click()
    expect(page.locator("#runtime-status")).to_have_text("TERMINATED", timeout=15000)
    audit = page.locator(".audit-entry").filter(has_text="terminate")
    expect(audit).to_contain_text("tester-operator")
    expect(audit).to_contain_text("stuck drill")
    expect(page.locator("#history")).to_contain_text("workflow terminated")
    page.screenshot(path=str(SCREENSHOTS / "instance-history.png"), full_page=False)

    # The ticket list agrees at once, and the ticket's timeline names the operator.
    listed = {t["ticket_id"]: t for t in engineer.get("/support/tickets", params={"limit": 200}).json()["tickets"]}
    assert listed["CON-STUCK"]["status"] == "terminated" and listed["CON-STUCK"]["stage"] == "cancelled"
    events = engineer.get("/support/tickets/CON-STUCK/timeline").json()["events"]
    assert any(e["kind"] == "operator_terminate" and e["actor"] == "tester-operator" for e in events)

    page.get_by_role("link", name="System").click()
    expect(page.locator("#sidecar-health")).to_contain_text("healthy")
    expect(page.locator("#placement-health")).to_contain_text("healthy")
    expect(page.locator("#scheduler-health")).to_contain_text("healthy")
    expect(page.locator("#components")).to_contain_text("workflow-state")
    expect(page.locator("#subscriptions")).to_contain_text("solution-ready")
    assert serious_violations(page) == []
    page.context.close()


def test_an_engineer_may_not_act_on_instances(browser, service, engineer):
    file_ticket(engineer, "CON-ENG")
    waiting_in_read_model(engineer, "CON-ENG")
    page = signed_in(browser, service, "engineer")
    page.goto(f"{service.url}/console/ops/instances/CON-ENG")
    expect(page.get_by_text("Actions need the operator role.")).to_be_visible()
    response = page.request.post(f"{service.url}/console/ops/instances/CON-ENG/actions/terminate",
                                 form={"csrf_token": csrf_of(page)})
    assert response.status == 403 and "needs operator" in response.text()
    with service.client("engineer") as api:
        assert api.post("/ops/instances/CON-ENG/terminate", json={}).status_code == 403
    assert engineer.get("/support/status/CON-ENG").json()["status"] == "running"
    page.context.close()


def test_a_client_sees_no_decide_button_and_is_refused_when_it_posts(browser, service):
    with service.client("client") as client:
        file_ticket(client, "CON-CLIENT")
        wait_for_stage(client, "CON-CLIENT", "awaiting_approval")
    page = signed_in(browser, service, "client")
    expect(page.get_by_role("alert")).to_contain_text("not the inbox")
    page.goto(f"{service.url}/console/tickets/CON-CLIENT")
    expect(page.get_by_role("heading", name="Ticket CON-CLIENT")).to_be_visible()
    assert page.get_by_role("button", name="Approve the proposal").count() == 0
    assert page.get_by_role("button", name="Approve with this text").count() == 0
    response = page.request.post(f"{service.url}/console/tickets/CON-CLIENT/decide", form={
        "csrf_token": csrf_of(page), "action": "approve", "revision": "0"})
    assert response.status == 403 and "may not approve" in response.text()
    with service.client("engineer") as api:
        assert api.get("/support/status/CON-CLIENT").json()["stage"] == "awaiting_approval"
    page.context.close()


def test_inbox_filters_and_search_are_in_the_url(browser, service, engineer):
    file_ticket(engineer, "CON-SEARCH", description="Our pubsub messages are delivered twice to the consumer in staging")
    waiting_in_read_model(engineer, "CON-SEARCH")
    page = signed_in(browser, service, "engineer")
    page.get_by_label("Search (id or words)").fill("delivered twice")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"q=delivered\+twice"))
    expect(page.locator("#row-CON-SEARCH")).to_be_visible()
    assert page.locator("#row-CON-APPROVE").count() == 0
    page.goto(f"{service.url}/console/inbox?plan=basic")
    assert page.locator("#row-CON-SEARCH").count() == 0
    assert serious_violations(page) == []
    page.context.close()


def ops_cli(service, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAPR_GRPC_PORT": str(service.ports.dapr_grpc),
           "DAPR_HTTP_PORT": str(service.ports.dapr_http), "READ_MODEL_URL": f"sqlite:///{service.read_model_path}",
           "API_TOKENS": "cli:operator:unused-cli-token", "DAPR_API_TOKEN": service.dapr_api_token}
    return subprocess.run([sys.executable, "-m", "app.ops", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)


def test_the_terminal_command_prints_the_history_and_acts_with_the_same_audit(service, engineer):
    file_ticket(engineer, "CON-CLI")
    waiting_in_read_model(engineer, "CON-CLI")
    listed = ops_cli(service, "list")
    assert listed.returncode == 0, listed.stderr
    latest = TICKET_WORKFLOW_LATEST
    assert re.search(rf"CON-CLI\s+ticket\s+{latest}\s+RUNNING\s+awaiting_approval", listed.stdout)
    assert re.search(rf"still running per workflow version: .*{latest} \d+", listed.stdout)
    history = ops_cli(service, "history", "CON-CLI")
    assert history.returncode == 0, history.stderr
    assert "activity propose_solution completed" in history.stdout
    assert "executionStarted" in history.stdout
    suspended = ops_cli(service, "suspend", "CON-CLI", "--reason", "cli drill")
    assert suspended.returncode == 0, suspended.stderr
    assert engineer.get("/support/status/CON-CLI").json()["status"] == "suspended"
    again = ops_cli(service, "suspend", "CON-CLI")
    assert again.returncode == 1 and "not running" in again.stderr
    assert ops_cli(service, "resume", "CON-CLI").returncode == 0
    raised = ops_cli(service, "raise-event", "CON-CLI", "solution_approved", '{"approved": true, "revision": 0}')
    assert raised.returncode == 0, raised.stderr
    wait_for_stage(engineer, "CON-CLI", "completed")
    user = ops_cli(service, "show", "CON-CLI")
    audit = json.loads(user.stdout)["audit"]
    assert [a["action"] for a in audit] == ["suspend", "resume", "raise_event"]
    assert all(a["actor"].startswith("cli:") for a in audit)
    purged = ops_cli(service, "purge", "CON-CLI")
    assert purged.returncode == 0, purged.stderr
    assert engineer.get("/support/status/CON-CLI").status_code == 404
    assert "CON-CLI" not in {t["ticket_id"] for t in engineer.get("/support/tickets", params={"limit": 200}).json()["tickets"]}


def test_rerun_from_an_event_starts_a_new_instance(service, engineer):
    file_ticket(engineer, "CON-RERUN", customer_id="CUST003")  # not entitled: finishes at once
    wait_for_stage(engineer, "CON-RERUN", "not_entitled")
    history = json.loads(ops_cli(service, "history", "CON-RERUN", "--json").stdout)
    notify = next(e for e in history if e["kind"] == "taskScheduled" and e["name"] == "notify_customer")
    with service.client("operator") as operator:
        response = operator.post("/ops/instances/CON-RERUN/rerun",
                                 json={"event_id": notify["event_id"], "new_instance_id": "CON-RERUN-2"})
        assert response.status_code == 200, response.text
        rerun = poll(lambda: operator.get("/ops/instances/CON-RERUN-2").json(),
                     lambda d: d.get("instance", {}).get("runtime_status") == "completed", 60)
        assert any(e["kind"] == "taskScheduled" and e.get("name") == "notify_customer" for e in rerun["history"])
        audit = operator.get("/ops/instances/CON-RERUN/audit").json()["audit"]
        assert audit[-1]["action"] == "rerun" and audit[-1]["actor"] == "tester-operator"
