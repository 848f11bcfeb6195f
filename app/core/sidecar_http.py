"""Plain HTTP calls to the local sidecar, for what the SDK's clients do not expose (the
metadata's workflow workers, the job API the readiness probe reads), each with a short deadline."""

from __future__ import annotations

import os
import time

import httpx

SIDECAR_PROBE_TIMEOUT_S = 2.0


def sidecar_request(method: str, path: str, **kwargs) -> httpx.Response:
    port = os.environ.get("DAPR_HTTP_PORT", "3500")
    token = os.environ.get("DAPR_API_TOKEN")
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=SIDECAR_PROBE_TIMEOUT_S,
                         headers={"dapr-api-token": token} if token else None, **kwargs)


def sidecar_metadata() -> dict:
    response = sidecar_request("GET", "/v1.0/metadata")
    response.raise_for_status()
    return response.json()


def connected_workflow_workers(metadata: dict) -> int:
    """The workflow workers connected to the sidecar, from its metadata."""
    return (metadata.get("workflows") or {}).get("connectedWorkers") or 0


def wait_for_workflow_worker(timeout: float, poll: float = 0.1) -> bool:
    """Whether a workflow worker is connected to the sidecar, waiting up to `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if connected_workflow_workers(sidecar_metadata()) > 0:
                return True
        except httpx.HTTPError:
            pass  # the sidecar restarting: ask again
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
