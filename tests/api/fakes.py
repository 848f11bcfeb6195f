"""In-memory stand-ins for the API's own ports (the workflow gateway and a state store), swapped
in with FastAPI's dependency_overrides. They model only what the API relies on."""

from __future__ import annotations

import copy
from typing import Callable

from app.services.workflow_gateway import Instance, InstanceExists


class FakeStore:
    def __init__(self, values: dict | None = None):
        self.values = dict(values or {})

    def get_value(self, key):
        return copy.deepcopy(self.values.get(key))

    def get_many(self, keys):
        return {k: self.values[k] for k in keys if k in self.values}

    def insert_if_absent(self, key, value):
        if key in self.values:
            return False, copy.deepcopy(self.values[key])
        self.values[key] = copy.deepcopy(value)
        return True, value


class FakeWorkflows:
    """Instances by id; `on_event` plays the workflow's answer to a raised event."""

    def __init__(self):
        self.instances: dict[str, Instance] = {}
        self.raised: list[tuple[str, str, dict]] = []
        self.started: list[tuple[str, str, dict]] = []
        self.on_event: Callable[[Instance, str, dict], None] | None = None
        self.histories: dict[str, list] = {}

    def get(self, instance_id, payloads=True):
        return copy.deepcopy(self.instances.get(instance_id))

    def start(self, workflow, instance_id, workflow_input):
        if instance_id in self.instances:
            raise InstanceExists(instance_id)
        self.started.append((workflow, instance_id, workflow_input))
        self.instances[instance_id] = Instance(instance_id=instance_id, name=workflow, runtime_status="running",
                                               input=workflow_input, custom_status={"stage": "triage"})

    def raise_event(self, instance_id, event, data):
        self.raised.append((instance_id, event, data))
        if self.on_event:
            self.on_event(self.instances[instance_id], event, data)

    def terminate(self, instance_id, output=None):
        self.instances[instance_id].runtime_status = "terminated"

    def suspend(self, instance_id, reason=None):
        self.instances[instance_id].runtime_status = "suspended"

    def resume(self, instance_id, reason=None):
        self.instances[instance_id].runtime_status = "running"

    def purge(self, instance_id):
        self.instances.pop(instance_id, None)

    def list_ids(self):
        yield from list(self.instances)

    def history(self, instance_id):
        return list(self.histories.get(instance_id, []))


def waiting(ticket_id: str, revision: int = 0, customer_id: str = "CUST001", filed_by: str = "tester") -> Instance:
    return Instance(instance_id=ticket_id, name="ticket_workflow", runtime_status="running",
                    input={"ticket_id": ticket_id, "customer_id": customer_id, "description": "d",
                           "filed_by": filed_by},
                    custom_status={"stage": "awaiting_approval", "revision": revision,
                                   "awaiting_since": "2026-11-23T12:00:00+00:00", "acks": []})
