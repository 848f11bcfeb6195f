"""How long the ticket list takes to agree with the runtime after a change made around the API:
an operator terminating or pausing an instance through the sidecar directly (the dapr CLI's
path), seen by `GET /support/tickets?status=...` without any page of that ticket being read
first (the read model's background sweep, app/readmodel/sync.py). Real processes, like the
integration tests (ports 19000-19999).

    python -m benchmarks.view_lag [--tickets 6] [--waiting 300]

With --waiting N, N more tickets wait for a decision while the changes are made, and each
changed ticket is measured twice: one waiting for its decision, one with a step in flight (its
triage held by FAULT_INJECTION). The sweep checks rows in flight first, so the second kind
should stay within about a second however many wait; the first waits its turn.

Each terminated ticket is then purged through the sidecar (`dapr workflow purge`'s path), and
the seconds until its row leaves the read model are measured in the read model's file itself,
with no page read meanwhile (the sweep's purge check alone, which lists the runtime's instances).

Prints one JSON object: seconds from each change to the list showing it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.support import percentile
from tests.support.harness import Service, ServicePorts, poll, wait_for_stage

DESCRIPTION = "Production checkout is down: the sidecar gets connection refused from the app on port 5000"


def seconds_until_listed(api, ticket_id: str, status: str, timeout: float = 60) -> float:
    start = time.monotonic()
    poll(lambda: [t["ticket_id"] for t in api.get("/support/tickets", params={"status": status, "limit": 200}).json()["tickets"]],
         lambda ids: ticket_id in ids, timeout, interval=0.05, message=f"{ticket_id} never listed as {status}")
    return round(time.monotonic() - start, 2)


def seconds_until_forgotten(service: Service, ticket_id: str, timeout: float = 60) -> float:
    start = time.monotonic()
    poll(lambda: service.read_model_has(ticket_id), lambda has: not has, timeout, interval=0.05,
         message=f"{ticket_id}'s row outlived its purge")
    return round(time.monotonic() - start, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=6, help="tickets changed (half terminated, half paused)")
    parser.add_argument("--waiting", type=int, default=0, help="more tickets waiting for a decision meanwhile")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="view-lag-") as tmp:
        service = Service(Path(tmp), ServicePorts(19000), app_env={
            "APPROVAL_TIMEOUT": "1h", "MAX_ACTIVE_TICKETS": "0", "FAULT_INJECTION": "triage_ticket@FLIGHT-:hang"})
        try:
            service.start()
            service.load_sample_data()
            lags: dict[str, list[float]] = {"terminated": [], "suspended": [], "purged": []}
            with service.client() as api, service.sidecar() as sidecar:
                def file(ticket_id: str) -> None:
                    response = api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": "CUST001",
                                                                 "description": DESCRIPTION})
                    assert response.status_code == 202, response.text

                crowd = [f"WAIT-{i}" for i in range(args.waiting)]
                ids = [f"LAG-{i}" for i in range(args.tickets)]
                in_flight = [f"FLIGHT-{i}" for i in range(args.tickets if args.waiting else 0)]
                for ticket_id in crowd + ids + in_flight:
                    file(ticket_id)
                for ticket_id in crowd + ids:
                    wait_for_stage(api, ticket_id, "awaiting_approval", timeout=max(60, args.waiting))
                for ticket_id in in_flight:
                    wait_for_stage(api, ticket_id, "triage")
                measured = {"waiting": ids, "in_flight": in_flight}
                by_kind: dict[str, list[float]] = {kind: [] for kind in measured}
                for kind, changed in measured.items():
                    for i, ticket_id in enumerate(changed):
                        status, action = ("terminated", "terminate") if i % 2 == 0 else ("suspended", "pause")
                        assert sidecar.post(f"/v1.0/workflows/dapr/{ticket_id}/{action}").status_code == 202
                        lag = seconds_until_listed(api, ticket_id, status, timeout=max(60, args.waiting))
                        lags[status].append(lag)
                        by_kind[kind].append(lag)
                for ticket_id in [t for changed in measured.values() for t in changed[::2]]:  # the terminated
                    assert sidecar.post(f"/v1.0/workflows/dapr/{ticket_id}/purge").status_code == 202
                    lags["purged"].append(seconds_until_forgotten(service, ticket_id,
                                                                  timeout=max(60, args.waiting)))
        finally:
            service.stop()
    every = lags["terminated"] + lags["suspended"] + lags["purged"]
    print(json.dumps({"changes": len(every), "waiting_meanwhile": args.waiting, "seconds": lags,
                      **{f"max_s_{kind}": max(v) for kind, v in by_kind.items() if v},
                      "max_s_purged": max(lags["purged"]),
                      "p50_s": percentile(every, 0.5), "max_s": max(every), "target_max<=1s": max(every) <= 1.0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
