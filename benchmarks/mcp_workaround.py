"""The daprd 1.18.1 deadlock workaround, with and without it (issue 12): does a service whose app
is SIGKILLed during a burst of filings, some first steps in flight, resume its workflows?

Each trial on a fresh sidecar: 4 tickets whose first step hangs (FAULT_INJECTION) and 20 more
filed in a burst; the app is killed 0.6 s into the burst and started again without the fault.
It prints, per trial, whether the workflow and activity actors are hosted again and how long
until every accepted ticket waits for a decision (or that they never did within --wait).

The outcome depends on where the kill lands, so it is a measurement (several trials, a count),
not a test: measured figures in docs/benchmarks.md.

    python -m benchmarks.mcp_workaround --trials 3            # with and without the MCPServer
    python -m benchmarks.mcp_workaround --trials 3 --only without
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from benchmarks.support import new_service
from scripts.devstack import stop_process

BASE_PORT = 31060  # ServicePorts(31060): beside bench 31000, chaos 31020, fuzz 31040
HANG_FIRST_STEP = "triage_ticket@HANG-:hang"


def file_burst(service, trial: int, accepted: list[str]) -> None:
    with service.client() as api:
        for i in range(20):
            ticket_id = f"BURST-{trial}-{i}"
            try:
                answer = api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": "CUST002",
                                                           "description": "State store saves time out under load"})
            except Exception:  # the app was killed under it: this one was never accepted
                continue
            if answer.status_code == 202:
                accepted.append(ticket_id)


def trial(service, number: int, wait: float) -> dict:
    service.app_env["FAULT_INJECTION"] = HANG_FIRST_STEP
    if number:  # a fresh sidecar and app for each trial (a deadlocked daprd stays deadlocked)
        stop_process("app", service.stack.run_dir)
        stop_process("daprd", service.stack.run_dir)
        service.start_sidecar()
        service.start_app()
    accepted = []
    with service.client() as api:
        for i in range(4):
            ticket_id = f"HANG-{number}-{i}"
            answer = api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": "CUST001",
                                                       "description": "Pub/sub messages are delivered twice"})
            if answer.status_code == 202:
                accepted.append(ticket_id)
    burst = threading.Thread(target=file_burst, args=(service, number, accepted))
    burst.start()
    time.sleep(0.6)
    service.kill("app")
    burst.join()
    service.app_env.pop("FAULT_INJECTION")
    service.start_app()
    started = time.monotonic()
    resumed_after, waiting = None, 0
    with service.client() as api:
        while time.monotonic() - started < wait:
            stages = [api.get(f"/support/status/{t}").json().get("stage") for t in accepted]
            waiting = stages.count("awaiting_approval")
            if waiting == len(accepted):
                resumed_after = round(time.monotonic() - started, 1)
                break
            time.sleep(1)
    return {"trial": number, "accepted": len(accepted), "waiting_for_decision": waiting,
            "all_resumed_after_s": resumed_after,
            "actors_hosted": sorted(t.rsplit(".", 1)[-1] for t in service.workflow_actor_types())}


def run(with_mcp_server: bool, trials: int, wait: float) -> list[dict]:
    service = new_service("mcp-workaround", BASE_PORT, app_env={"APPROVAL_TIMEOUT": "1h"})
    if not with_mcp_server:
        (service.resources / "knowledge-base-mcp.yaml").unlink()
    try:
        service.start()
        service.load_sample_data()
        results = []
        for number in range(trials):
            result = {"mcp_server": with_mcp_server, **trial(service, number, wait)}
            print(json.dumps(result), flush=True)
            results.append(result)
        return results
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for the tickets to resume")
    parser.add_argument("--only", choices=("with", "without"))
    args = parser.parse_args()
    summary = {}
    for with_mcp_server in (True, False):
        if args.only and (args.only == "with") != with_mcp_server:
            continue
        results = run(with_mcp_server, args.trials, args.wait)
        summary["with" if with_mcp_server else "without"] = {
            "trials": len(results),
            "resumed": sum(r["all_resumed_after_s"] is not None for r in results),
            "resumed_after_s": [r["all_resumed_after_s"] for r in results]}
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
