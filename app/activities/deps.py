"""The one seam between activities and the world: the clients and stores the app built once at
startup (app/core/services.py), handed to the activity worker. Tests provide their own."""

from __future__ import annotations

from app.core.services import Services

_current: Services | None = None


def provide(services: Services | None) -> None:
    global _current
    _current = services


def current() -> Services:
    if _current is None:
        raise RuntimeError("activity dependencies not provided (app.activities.deps.provide)")
    return _current
