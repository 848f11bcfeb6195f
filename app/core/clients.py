"""Dapr clients, built once per process and shared (gRPC channels are thread-safe)."""

from __future__ import annotations

import threading

from dapr.clients import DaprClient
from dapr.ext.workflow import DaprWorkflowClient

from app.core.config import get_settings
from app.core.logging import sdk_logger_options
from app.store import StateStore

_lock = threading.Lock()
_dapr: DaprClient | None = None
_workflow: DaprWorkflowClient | None = None


def dapr_client() -> DaprClient:
    global _dapr
    with _lock:
        if _dapr is None:
            _dapr = DaprClient()
        return _dapr


def workflow_client() -> DaprWorkflowClient:
    global _workflow
    with _lock:
        if _workflow is None:
            _workflow = DaprWorkflowClient(logger_options=sdk_logger_options())
        return _workflow


def store(name: str) -> StateStore:
    return StateStore(dapr_client(), name)


def customer_store() -> StateStore:
    return store(get_settings().customer_store)


def system_store() -> StateStore:
    return store(get_settings().system_store)


def analysis_store() -> StateStore:
    return store(get_settings().analysis_store)


def close_clients() -> None:
    global _dapr, _workflow
    with _lock:
        if _dapr is not None:
            _dapr.close()
        if _workflow is not None:
            _workflow.close()
        _dapr = _workflow = None
