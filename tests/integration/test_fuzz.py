"""Bad input: oversized bodies, wrong content types, unicode and ids with path characters get a
clear 4xx with a JSON message and store nothing; then Schemathesis against the service's own
OpenAPI document (a bounded run; `make fuzz` runs more): no 5xx, every 4xx a JSON body with a
message, every status code answered documented."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from benchmarks.fuzz import run_schemathesis
from benchmarks.fuzz_checks import error_message
from tests.support.harness import poll

STORES = ("analysis-state", "workflow-state", "agent-state")
VALID = {"ticket_id": "FZ-OK", "customer_id": "CUST001", "description": "Sidecar cannot reach my app on port 5000"}


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("fuzz", 30040, app_env={"APPROVAL_TIMEOUT": "1h"})


@pytest.fixture(scope="module")
def api(service):
    with service.client("engineer") as client:
        yield client


def stored(service) -> dict[str, str]:
    """Every key the service's stores hold, with its ETag (read from the SQLite files)."""
    rows = {}
    for store in STORES:
        path = service.data_dir / "state" / f"{store}.db"
        if not path.exists():
            continue
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            rows.update({f"{store}/{key}": etag for key, etag in db.execute("SELECT key, etag FROM state")})
    return rows


def settled(service, timeout: float = 30) -> dict[str, str]:
    """The stores once the workflow has gone quiet: no event waiting in its inbox and nothing
    changed over one second. A stage shows in the custom status before the step that records it
    has finished, so a snapshot taken as soon as "awaiting_approval" shows may still be moving."""
    deadline = time.monotonic() + timeout
    last = stored(service)
    while time.monotonic() < deadline:
        time.sleep(1)  # the poll interval: "quiet" means unchanged across it
        current = stored(service)
        if current == last and not any("||inbox-" in key for key in current):
            return current
        last = current
    raise AssertionError(f"the workflow did not go quiet in {timeout} s")


def assert_clear_4xx(response, *codes: int) -> None:
    assert response.status_code in codes, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert error_message(response.json()), response.text[:300]


def ticket(**changes) -> dict:
    return {**VALID, **changes}


BAD_FILINGS = {
    "description over the limit": dict(json=ticket(ticket_id="FZ-LONG", description="x" * 10_001)),
    "five megabyte body": dict(json=ticket(ticket_id="FZ-HUGE", description="x" * 5_000_000)),
    "blank description": dict(json=ticket(ticket_id="FZ-BLANK", description=" \n\t ")),
    "unknown field": dict(json=ticket(ticket_id="FZ-EXTRA", priority="critical")),
    "text/plain": dict(content=json.dumps(ticket(ticket_id="FZ-TEXT")), headers={"Content-Type": "text/plain"}),
    "form encoded": dict(data=ticket(ticket_id="FZ-FORM")),
    "xml": dict(content=b"<ticket id='FZ-XML'/>", headers={"Content-Type": "application/xml"}),
    "no content type": dict(content=json.dumps(ticket(ticket_id="FZ-NOCT")).encode(), headers={"Content-Type": ""}),
    "malformed json": dict(content=b'{"ticket_id": "FZ-MAL", ', headers={"Content-Type": "application/json"}),
    "a json array": dict(json=[ticket(ticket_id="FZ-ARR")]),
    "unicode in the id": dict(json=ticket(ticket_id="FZ-é")),
    "emoji in the id": dict(json=ticket(ticket_id="FZ-\U0001F600")),
    "dot-dot-slash id": dict(json=ticket(ticket_id="../../etc/passwd")),
    "slash in the id": dict(json=ticket(ticket_id="FZ/1")),
    "percent-encoded slash id": dict(json=ticket(ticket_id="FZ%2F1")),
    "backslash in the id": dict(json=ticket(ticket_id="FZ\\1")),
    "id over 64 characters": dict(json=ticket(ticket_id="F" * 65)),
    "path characters in customer_id": dict(json=ticket(ticket_id="FZ-CUST", customer_id="../CUST001")),
    "unknown customer": dict(json=ticket(ticket_id="FZ-NOCUST", customer_id="CUST999")),
}


@pytest.mark.parametrize("case", list(BAD_FILINGS), ids=list(BAD_FILINGS))
def test_bad_filings_get_a_clear_4xx_and_store_nothing(service, api, case):
    before = stored(service)
    response = api.post("/support/ticket", **BAD_FILINGS[case])
    # 413 would be as clear for the oversized bodies (a body size limit); 422 everywhere else.
    if "body" in case:
        assert_clear_4xx(response, 422, 413)
    else:
        assert_clear_4xx(response, *((404,) if case == "unknown customer" else (422,)))
    assert stored(service) == before


BAD_PATHS = ["..%2F..%2Fetc%2Fpasswd", "FZ%2F1", "FZ%5C1", "..", "%2E%2E", "FZ-%C3%A9", "FZ-%F0%9F%98%80",
             "FZ%00", "F" * 65, "FZ%20OK", "FZ;drop", "FZ'1"]


@pytest.mark.parametrize("path_id", BAD_PATHS)
def test_ids_with_path_characters_get_a_clear_4xx_and_store_nothing(service, api, path_id):
    before = stored(service)
    requests = [("GET", f"/support/status/{path_id}", None),
                ("POST", f"/support/approve/{path_id}", {"approved": True}),
                ("POST", f"/support/tickets/{path_id}/cancel", {"reason": "x"}),
                ("GET", f"/support/tickets/{path_id}/timeline", None)]
    for method, url, body in requests:
        response = api.request(method, url, json=body)
        assert_clear_4xx(response, 404, 422)
    assert_clear_4xx(api.get("/support/tickets", params={"cursor": path_id}), 422)
    assert stored(service) == before


def test_bad_decisions_get_a_clear_4xx_and_store_nothing(service, api):
    assert api.post("/support/ticket", json=VALID).status_code == 202
    poll(lambda: api.get(f"/support/status/{VALID['ticket_id']}").json()["stage"], lambda s: s == "awaiting_approval",
         60, message="FZ-OK did not wait")
    before = settled(service)
    url = f"/support/approve/{VALID['ticket_id']}"
    bad = [dict(json={"approved": True, "final_solution": "y" * 20_001}),
           dict(json={"approved": True, "support_notes": "n" * 10_001}),
           dict(json={"approved": "yes please"}),
           dict(json={"approved": False, "final_solution": "only with an approval"}),
           dict(json={}),
           dict(content=b'{"approved": true}', headers={"Content-Type": "text/plain"}),
           dict(content=b"approved=true", headers={"Content-Type": "application/x-www-form-urlencoded"}),
           dict(json={"approved": True}, headers={"Idempotency-Key": "k\u00e9y".encode()}),
           dict(json={"approved": True}, headers={"Idempotency-Key": "k" * 201})]
    for request in bad:
        assert_clear_4xx(api.post(url, **request), 422)
    assert stored(service) == before
    # Unicode where text is free is kept as sent.
    notes = "Ünïcödé ✓ — 東京 \U0001F680"
    assert api.post(url, json={"approved": True, "final_solution": notes}).status_code == 202
    done = poll(lambda: api.get(f"/support/status/{VALID['ticket_id']}").json(), lambda s: s["stage"] == "completed",
                60, message="FZ-OK did not complete")
    assert done["output"]["final_solution"] == notes


def test_schemathesis_finds_no_failure(service):
    result = run_schemathesis(service, max_examples=25, seed=1, workers=1, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
