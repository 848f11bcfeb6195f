"""Calls an activity the way the workflow worker does (input validated into its contract model,
output dumped to JSON), with the project's own dependency seam provided."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

from app.activities import deps
from app.core.faults import FaultPlan


@contextmanager
def provided(**services):
    deps.provide(SimpleNamespace(faults=FaultPlan(), **services))
    try:
        yield
    finally:
        deps.provide(None)


def call_activity(activity, payload: dict, **services):
    from app.workflows.runtime import typed_activity

    with provided(**services):
        return typed_activity(activity.__name__, activity)(None, payload)
