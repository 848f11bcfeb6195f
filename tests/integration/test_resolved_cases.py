"""Approved answers feed the knowledge base, through the real service: a CUST001 ticket approved
with an edited solution that names the customer becomes a resolved case; a CUST002 ticket on the
same problem cites it as a past resolution without any of CUST001's data; once an engineer
retracts the case it is never cited again."""

from __future__ import annotations

import json

import pytest

from app.knowledge.articles import load_articles
from setup_sample_data import CUSTOMERS, SYSTEMS
from tests.support.harness import poll, status_of, wait_for_stage

ACME_TICKET, TECHSTART_TICKET = "CASE-001", "CASE-002"  # ids that name no customer
ACME_DESCRIPTION = ("Our production checkout service on AKS is completely down: every call through the sidecar "
                    "fails with connection refused to the app on port 5000 since the deploy this morning.")
ACME_EDIT = ("Acme Corporation (CUST001): your checkout app listens on 8080 while the sidecar was started with "
             "--app-port 5000, so every call through the sidecar fails with connection refused to the app. Set "
             "the dapr.io/app-port annotation to 8080 on the checkout deployment in your kubernetes (AKS) cluster "
             "running Dapr 1.14.4, redeploy, and confirm the connection refused errors stop.")
TECHSTART_DESCRIPTION = ("The sidecar of our order-processor gets connection refused from the app on port 5000 "
                         "after the deploy; the app itself says it listens on 3000.")


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("cases", 16000)


def secrets_of_cust001() -> list[str]:
    values = [CUSTOMERS["CUST001"]["name"], "Acme", "CUST001", CUSTOMERS["CUST001"]["contact_email"],
              ACME_DESCRIPTION, ACME_DESCRIPTION[:60]]
    for key, value in SYSTEMS["CUST001"].items():
        if key != "customer_id":
            values += value if isinstance(value, list) else [value]
    return values


def test_an_edited_approval_becomes_a_case_that_another_customer_sees_scrubbed(service):
    with service.client("engineer") as api:
        filed = api.post("/support/ticket", json={"ticket_id": ACME_TICKET, "customer_id": "CUST001",
                                                  "description": ACME_DESCRIPTION})
        assert filed.status_code == 202, filed.text
        wait_for_stage(api, ACME_TICKET, "awaiting_approval")
        decided = api.post(f"/support/approve/{ACME_TICKET}", json={"approved": True, "revision": 0,
                                                                    "final_solution": ACME_EDIT})
        assert decided.status_code == 202, decided.text
        wait_for_stage(api, ACME_TICKET, "completed")

        # The case: the edited solution, scrubbed; listed; its indexing in the timeline.
        case = service.state("analysis-state", f"case:{ACME_TICKET}")
        assert case is not None and case["edited"] is True and case["retracted"] is False
        assert case["approver"] == "tester-engineer"  # the deciding principal
        assert "app-port-mismatch" in case["cited_articles"] and case["category"] == "connectivity"
        for secret in secrets_of_cust001():
            assert secret.lower() not in case["text"].lower(), secret
        assert "dapr.io/app-port annotation to 8080" in case["text"]
        listed = api.get("/support/cases").json()["cases"]
        assert [c["ticket_id"] for c in listed] == [ACME_TICKET]
        events = api.get(f"/support/tickets/{ACME_TICKET}/timeline").json()["events"]
        [indexed] = [e for e in events if e["kind"] == "case_indexed"]
        assert indexed["details"]["created"] is True and indexed["details"]["redactions"] >= 5

        # CUST002, same problem: the case is cited next to the articles, with its provenance.
        filed = api.post("/support/ticket", json={"ticket_id": TECHSTART_TICKET, "customer_id": "CUST002",
                                                  "description": TECHSTART_DESCRIPTION})
        assert filed.status_code == 202, filed.text
        status = wait_for_stage(api, TECHSTART_TICKET, "awaiting_approval")
        proposal = service.state("analysis-state", f"analysis:{TECHSTART_TICKET}:0")["proposal"]
        [past] = proposal["past_cases"]
        assert past["ticket_id"] == ACME_TICKET and past["kind"] == "past_resolution"
        assert past["approver"] == case["approver"] and past["resolved_at"] == case["resolved_at"]
        assert "app-port-mismatch" in proposal["cited_articles"]

        # Nothing of CUST001 reaches CUST002: not in the cited case, and not anywhere in the
        # proposal or the status beyond what the curated articles say themselves (the
        # app-port-mismatch article's example app is called `checkout`).
        articles = " ".join(a.body for a in load_articles().values()).lower()
        past_text = json.dumps(past).lower()
        everything = (json.dumps(proposal) + json.dumps(status)).lower()
        for secret in secrets_of_cust001():
            assert secret.lower() not in past_text, secret
            assert secret.lower() in articles or secret.lower() not in everything, secret


def test_a_retracted_case_is_never_cited_again(service):
    with service.client("client") as client:
        refused = client.post(f"/support/cases/{ACME_TICKET}/retract", json={"reason": "x"})
        assert refused.status_code == 403
    with service.client("engineer") as api:
        retracted = api.post(f"/support/cases/{ACME_TICKET}/retract", json={"reason": "customer-specific fix"})
        assert retracted.status_code == 200, retracted.text
        assert retracted.json()["retracted"] is True
        assert service.state("analysis-state", f"case:{ACME_TICKET}")["retracted"] is True
        assert api.post("/support/cases/NO-SUCH/retract").status_code == 404

        # A revised proposal for the CUST002 ticket no longer cites it.
        decided = api.post(f"/support/approve/{TECHSTART_TICKET}", json={
            "approved": False, "revision": 0, "support_notes": "the app listens on 3000, say so"})
        assert decided.status_code == 202, decided.text
        poll(lambda: status_of(api, TECHSTART_TICKET),
             lambda s: s.get("stage") == "awaiting_approval" and s.get("revision") == 1)
        revised = service.state("analysis-state", f"analysis:{TECHSTART_TICKET}:1")["proposal"]
        assert revised.get("past_cases", []) == []  # none cited (an empty list is not stored)
        assert api.get("/support/cases", params={"include_retracted": "false"}).json()["cases"] == []
