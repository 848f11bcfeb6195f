"""Records real ticket histories for the replay checks (tests/unit/test_replay_histories.py).

Starts the whole service on real processes (redis, placement, scheduler, daprd, the app), takes
one ticket down each path of the ticket workflow, and saves each instance's history, as the
runtime's GetInstanceHistory returns it, under tests/histories/<version>/<path>.json.

    .venv/bin/python -m scripts.record_histories            # the current version
    .venv/bin/python -m scripts.record_histories --out DIR  # somewhere else

Two paths run in LLM mode against a scripted OpenAI-compatible server (tests/support/
scripted_llm.py): `agent_approve` (both agents answer) and `agent_fallback` (the model is
unreachable: both agents fail and the offline path takes over).

`outage_wait` (`--only outage`) stops the broker so that the proposal step waits the outage out
(the patch `ride-out-outages`).

Run it when a new workflow version is released, and commit what it writes: those histories
then replay against every later change in `make test`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from dapr.conf import settings as dapr_settings

from app.services.workflow_gateway import DaprWorkflows
from app.workflows.contracts import TICKET_WORKFLOW_LATEST
from app.workflows.replay import history_to_json
from scripts.devstack import stop_process
from tests.support.agent_script import llm_env, script_expert, script_triage
from tests.support.harness import REPO, Service, ServicePorts, poll, status_of, wait_for_stage
from tests.support.scripted_llm import ScriptedLLM

DESCRIPTION = "Production checkout is down: the sidecar gets connection refused from the app on port 5000"


def run_paths(service: Service) -> dict[str, str]:
    """path name -> ticket id, each ticket taken down that path."""
    api = service.client("engineer")

    def file(ticket_id, customer_id="CUST001", description=DESCRIPTION):
        response = api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": customer_id,
                                                     "description": description})
        assert response.status_code == 202, response.text

    def decide(ticket_id, **body):
        response = api.post(f"/support/approve/{ticket_id}", json=body)
        assert response.status_code == 202, response.text

    paths = {"approve": "H-APPROVE", "approve_edited": "H-EDIT", "reject_revise": "H-REVISE",
             "approval_timeout": "H-TIMEOUT", "sla_escalation": "H-SLA", "cancel": "H-CANCEL",
             "not_entitled": "H-BASIC", "system_error": "H-FAULT-PROPOSE", "dropped_event": "H-DROPPED",
             "out_of_scope": "H-SCOPE"}
    for path, ticket_id in paths.items():
        file(ticket_id, **({"customer_id": "CUST003"} if path == "not_entitled" else {}),
             **({"description": "How do I reset my password for the support portal? The login page says my "
                                "account is locked"} if path == "out_of_scope" else {}))
    wait_for_stage(api, "H-APPROVE", "awaiting_approval")
    decide("H-APPROVE", approved=True)
    wait_for_stage(api, "H-EDIT", "awaiting_approval")
    decide("H-EDIT", approved=True, final_solution="Set dapr.io/app-port to 5000 and redeploy.")
    wait_for_stage(api, "H-REVISE", "awaiting_approval")
    decide("H-REVISE", approved=False, support_notes="check the health probes")
    poll(lambda: status_of(api, "H-REVISE"), lambda s: s.get("stage") == "awaiting_approval" and s.get("revision") == 1)
    decide("H-REVISE", approved=True, revision=1)
    wait_for_stage(api, "H-CANCEL", "awaiting_approval")
    assert api.post("/support/tickets/H-CANCEL/cancel", json={"reason": "duplicate"}).status_code == 202
    wait_for_stage(api, "H-DROPPED", "awaiting_approval")
    with service.sidecar() as sidecar:
        sidecar.post("/v1.0/workflows/dapr/H-DROPPED/raiseEvent/solution_approved", json={"approved": True})
    poll(lambda: api.get("/support/tickets/H-DROPPED/timeline").json()["events"],
         lambda events: any(e["kind"] == "decision_dropped" for e in events))
    decide("H-DROPPED", approved=True)
    poll(lambda: status_of(api, "H-SLA"), lambda s: "sla_breach" in (s.get("escalations") or []), 60)
    decide("H-SLA", approved=True)
    final = {"completed", "escalated", "cancelled", "not_entitled"}
    for ticket_id in paths.values():
        poll(lambda t=ticket_id: status_of(api, t), lambda s: s.get("stage") in final, 120,
             message=f"{ticket_id} did not finish")
    api.close()
    return paths


def run_agent_paths(service: Service, llm: ScriptedLLM) -> dict[str, str]:
    """The agent paths, one ticket at a time (the scripted replies are consumed in order)."""
    api = service.client("engineer")

    def file_and_approve(ticket_id: str) -> None:
        response = api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": "CUST001",
                                                     "description": DESCRIPTION})
        assert response.status_code == 202, response.text
        wait_for_stage(api, ticket_id, "awaiting_approval", timeout=120)
        llm.failures_left = 0
        llm.reply_text("Dear customer, here is the solution our engineers approved.")  # the notification
        assert api.post(f"/support/approve/{ticket_id}", json={"approved": True}).status_code == 202
        wait_for_stage(api, ticket_id, "completed", timeout=120)

    script_triage(llm)
    script_expert(llm)
    file_and_approve("H-AGENT")
    llm.replies.clear()
    llm.fail_next(1000)
    file_and_approve("H-AGENT-DOWN")
    api.close()
    return {"agent_approve": "H-AGENT", "agent_fallback": "H-AGENT-DOWN"}


def run_outage_path(service: Service) -> dict[str, str]:
    """A ticket whose proposal step outlasts its retries against a stopped broker (Redis): the
    workflow waits the outage out (patch ride-out-outages), then the ticket is approved."""
    api = service.client("engineer")
    stop_process("redis", service.stack.run_dir)
    try:
        response = api.post("/support/ticket", json={"ticket_id": "H-OUTAGE", "customer_id": "CUST001",
                                                     "description": DESCRIPTION})
        assert response.status_code == 202, response.text
        app_log = service.stack.log_dir / "app.log"
        poll(lambda: "cannot be reached: waiting" in app_log.read_text(errors="replace"), bool, 90,
             message="the proposal step did not start waiting for the broker")
    finally:
        service.stack.start_one("redis")
    wait_for_stage(api, "H-OUTAGE", "awaiting_approval", timeout=90)
    assert api.post("/support/approve/H-OUTAGE", json={"approved": True}).status_code == 202
    wait_for_stage(api, "H-OUTAGE", "completed", timeout=90)
    api.close()
    return {"outage_wait": "H-OUTAGE"}


def record(service: Service, paths: dict[str, str], out: Path) -> None:
    port = str(service.ports.dapr_grpc)
    # daprd requires its API token on every call, the history reads included.
    dapr_settings.DAPR_API_TOKEN = service.dapr_api_token
    gateway = DaprWorkflows(address=f"127.0.0.1:{port}")
    out.mkdir(parents=True, exist_ok=True)
    for path, ticket_id in paths.items():
        events = gateway.history(ticket_id)
        (out / f"{path}.json").write_text(json.dumps(
            {"instance_id": ticket_id, "path": path, "events": history_to_json(events)}, indent=1) + "\n")
        print(f"{path}: {ticket_id}, {len(events)} events")
    gateway.close()


def record_on_a_service(out: Path, port_base: int, take_paths, **service_settings) -> None:
    """Starts the whole service on its own ports, takes tickets down their paths
    (take_paths(service) -> {path: ticket id}), records their histories, and stops it."""
    with tempfile.TemporaryDirectory() as workdir:
        service = Service(Path(workdir), ServicePorts(port_base), **service_settings)
        try:
            service.start()
            service.load_sample_data()
            record(service, take_paths(service), out)
        finally:
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "histories" / TICKET_WORKFLOW_LATEST)
    parser.add_argument("--port-base", type=int, default=14000)
    parser.add_argument("--only", choices=("offline", "agents", "outage"), help="record only these paths")
    args = parser.parse_args()
    if args.only in (None, "outage"):
        record_on_a_service(args.out, args.port_base, run_outage_path, app_env={"APPROVAL_TIMEOUT": "1h"})
    if args.only not in ("agents", "outage"):
        record_on_a_service(args.out, args.port_base, run_paths, app_env={
            "APPROVAL_TIMEOUT": "25s", "SLA_OVERRIDE": "12s", "FAULT_INJECTION": "propose_solution@H-FAULT"})
    if args.only not in ("offline", "outage"):
        llm = ScriptedLLM().start()
        try:
            env = llm_env(llm)
            record_on_a_service(args.out, args.port_base, lambda service: run_agent_paths(service, llm),
                                sidecar_env=env, app_env={**env, "LLM_PROVIDER": "openai", "APPROVAL_TIMEOUT": "1h"})
        finally:
            llm.stop()


if __name__ == "__main__":
    main()
