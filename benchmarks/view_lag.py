"""How long the ticket list takes to agree with the runtime after a change made around the API:
an operator terminating or pausing an instance through the sidecar directly (the dapr CLI's
path), seen by `GET /support/tickets?status=...` without any page of that ticket being read
first (the read model's background sweep, app/readmodel/sync.py). Real processes, like the
integration tests (ports 19000-19999).

    python -m benchmarks.view_lag [--tickets 6]

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=6, help="tickets changed (half terminated, half paused)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="view-lag-") as tmp:
        service = Service(Path(tmp), ServicePorts(19000), app_env={"APPROVAL_TIMEOUT": "1h"})
        try:
            service.start()
            service.load_sample_data()
            lags: dict[str, list[float]] = {"terminated": [], "suspended": []}
            with service.client() as api, service.sidecar() as sidecar:
                ids = [f"LAG-{i}" for i in range(args.tickets)]
                for ticket_id in ids:
                    response = api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": "CUST001",
                                                                 "description": DESCRIPTION})
                    assert response.status_code == 202, response.text
                for ticket_id in ids:
                    wait_for_stage(api, ticket_id, "awaiting_approval")
                for i, ticket_id in enumerate(ids):
                    status, action = ("terminated", "terminate") if i % 2 == 0 else ("suspended", "pause")
                    assert sidecar.post(f"/v1.0/workflows/dapr/{ticket_id}/{action}").status_code == 202
                    lags[status].append(seconds_until_listed(api, ticket_id, status))
        finally:
            service.stop()
    every = lags["terminated"] + lags["suspended"]
    print(json.dumps({"changes": len(every), "seconds": lags, "p50_s": percentile(every, 0.5),
                      "max_s": max(every), "target_max<=1s": max(every) <= 1.0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
