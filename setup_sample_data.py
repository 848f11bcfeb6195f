"""Loads the sample customers and their systems through the Dapr state API.

Run it with the app's sidecar up (`make run` does): keys are written through that sidecar, so
they carry its app-id prefix like every key the service reads. Running it twice changes nothing:
a record already equal to the sample is left alone (no write), a different one is replaced.
"""

from __future__ import annotations

import argparse
import json
import sys

from dapr.clients import DaprClient

CUSTOMERS = {
    "CUST001": {"customer_id": "CUST001", "name": "Acme Corporation", "plan": "enterprise",
                "contact_email": "ops@acme.example"},
    "CUST002": {"customer_id": "CUST002", "name": "TechStart Inc", "plan": "professional",
                "contact_email": "dev@techstart.example"},
    "CUST003": {"customer_id": "CUST003", "name": "Basic User LLC", "plan": "basic",
                "contact_email": "it@basicuser.example"},
}
SYSTEMS = {
    "CUST001": {"customer_id": "CUST001", "dapr_version": "1.14.4", "cloud": "azure",
                "platform": "kubernetes (AKS)", "applications": ["checkout", "inventory", "payments"]},
    "CUST002": {"customer_id": "CUST002", "dapr_version": "1.13.2", "cloud": "aws",
                "platform": "kubernetes (EKS)", "applications": ["api-gateway", "order-processor"]},
    "CUST003": {"customer_id": "CUST003", "dapr_version": "1.12.0", "cloud": "on-premises",
                "platform": "self-hosted", "applications": ["billing-app"]},
}


def load(client: DaprClient, store: str, records: dict[str, dict]) -> int:
    """Writes the records that are missing or differ; returns how many were written."""
    written = 0
    for key, record in records.items():
        current = client.get_state(store, key).data
        if current and json.loads(current) == record:
            continue
        client.save_state(store, key, json.dumps(record))
        written += 1
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with DaprClient() as client:  # waits for the sidecar's health first (DAPR_HEALTH_TIMEOUT)
        customers = load(client, "customer-state", CUSTOMERS)
        systems = load(client, "system-state", SYSTEMS)
    print(json.dumps({"customers_written": customers, "systems_written": systems,
                      "customers": sorted(CUSTOMERS)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
