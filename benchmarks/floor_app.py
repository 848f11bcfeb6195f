"""The engine floor: bare Dapr workflows with activities that do nothing.

`floor_shape_workflow` issues, turn by turn, the commands of the ticket workflow's approved path
(`TICKET_SHAPE`, checked against the latest version's recorded history by
tests/unit/test_floor_shape.py and against a live ticket by the benchmark): the bare engine's
throughput for the same workflow shape, which the service's ratio is measured against.
`floor_workflow` is the smaller shape of the first releases, kept for comparison with earlier runs:

    one activity -> three activities in parallel -> one activity -> wait for an external event
    -> one activity

Run as a worker process against a sidecar (the same Python SDK and runtime defaults as the
service's app, nothing else: no state stores, no pub/sub, no REST API):

    DAPR_GRPC_PORT=... python -m benchmarks.floor_app --app-port PORT

daprd blocks its start (and so every workflow) until something listens on its --app-port, and
asks that listener for its topic subscriptions once. So the worker also listens there and answers
`/dapr/subscribe` with the service's own subscriptions: when the service's app later takes the
port over, daprd delivers its messages exactly as if the app had been there from the start.

The benchmark driver (benchmarks/bench.py) starts it on the same daprd that later serves the
service, schedules instances with `floor_workflow` and raises `APPROVAL_EVENT` when the custom
status says `awaiting_approval`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import timedelta

from dapr.ext.workflow import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_all, when_any

from app.core.tracing import configure_grpc_tracing

APPROVAL_EVENT = "floor_approved"
AWAITING = "awaiting_approval"


def floor_noop(ctx: WorkflowActivityContext, payload: dict | None = None) -> dict:
    return {"ok": True}


def floor_workflow(ctx: DaprWorkflowContext, payload: dict):
    yield ctx.call_activity(floor_noop, input={"step": "first"})
    yield when_all([ctx.call_activity(floor_noop, input={"step": "parallel", "i": i}) for i in range(3)])
    yield ctx.call_activity(floor_noop, input={"step": "third"})
    ctx.set_custom_status(AWAITING)
    decision = yield ctx.wait_for_external_event(APPROVAL_EVENT)
    yield ctx.call_activity(floor_noop, input={"step": "last", "decision": decision})
    ctx.set_custom_status("completed")
    return {"id": (payload or {}).get("id"), "stage": "completed"}


# The ticket workflow's approved path, as the commands each turn issues (kinds only): the
# cancellation awaited and triage; three searches; the proposal; its progress record; the approval
# timeout and SLA timers and the decision awaited; notify, deliver, index the case, the last record.
TICKET_SHAPE = (("event", "activity"), ("activity",) * 3, ("activity",), ("activity",),
                ("timer", "timer", "event"), ("activity",), ("activity",), ("activity",), ("activity",))


def command_shape(events) -> tuple[tuple[str, ...], ...]:
    """The commands a recorded history holds, turn by turn (a turn starts at each workflowStarted),
    by kind: an activity, a durable timer, an external event awaited (which the runtime records as
    a timer too); turns that issued nothing or only completed the workflow are left out."""
    turns: list[list[str]] = []
    for event in events:
        kind = event.WhichOneof("eventType")
        if kind == "workflowStarted":
            turns.append([])
        elif kind == "taskScheduled":
            turns[-1].append("activity")
        elif kind == "timerCreated":
            turns[-1].append("event" if event.timerCreated.WhichOneof("origin") == "externalEvent" else "timer")
    return tuple(tuple(turn) for turn in turns if turn)


def floor_shape_workflow(ctx: DaprWorkflowContext, payload: dict):
    """TICKET_SHAPE with no-op activities: what the engine charges for a ticket's commands, turns
    and timers, without any of the service's own work."""
    cancel = ctx.wait_for_external_event("floor_cancelled")
    yield ctx.call_activity(floor_noop, input={"step": "triage"})
    yield when_all([ctx.call_activity(floor_noop, input={"step": "search", "i": i}) for i in range(3)])
    yield ctx.call_activity(floor_noop, input={"step": "propose"})
    yield ctx.call_activity(floor_noop, input={"step": "record"})
    now = ctx.current_utc_datetime
    timeout = ctx.create_timer(now + timedelta(hours=24))
    sla = ctx.create_timer(now + timedelta(hours=1))
    decision = ctx.wait_for_external_event(APPROVAL_EVENT)
    ctx.set_custom_status(AWAITING)
    winner = yield when_any([decision, timeout, cancel, sla])
    approved = winner.get_result() if winner is decision else None
    for step in ("notify", "deliver", "index_case", "record"):
        yield ctx.call_activity(floor_noop, input={"step": step, "decision": approved})
    ctx.set_custom_status("completed")
    return {"id": (payload or {}).get("id"), "stage": "completed"}


def build_runtime() -> WorkflowRuntime:
    runtime = WorkflowRuntime()
    runtime.register_workflow(floor_workflow)
    runtime.register_workflow(floor_shape_workflow)
    runtime.register_activity(floor_noop)
    return runtime


def service_subscriptions() -> list[dict]:
    """What the service's app answers on /dapr/subscribe (its own code, not a copy)."""
    from app.api.routes.inbox import subscriptions
    from app.core.config import get_settings

    return subscriptions(get_settings())


class _AppChannel(BaseHTTPRequestHandler):
    subscriptions: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path.split("?")[0] == "/dapr/subscribe":
            body, code = json.dumps(self.subscriptions).encode(), 200
        else:
            body, code = b'{"detail": "not found"}', 404
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        # A message for the service's subscriptions (/events/...) while the floor holds the port:
        # 503 makes daprd deliver it again later, to the app.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"detail": "the bare-engine worker holds the app port; retry"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description="bare-engine workflow worker")
    parser.add_argument("--app-port", type=int, help="listen here for daprd's app channel")
    args = parser.parse_args()
    server = None
    if args.app_port:
        _AppChannel.subscriptions = service_subscriptions()
        server = ThreadingHTTPServer(("127.0.0.1", args.app_port), _AppChannel)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    # The same gRPC tracing setting as the service's app (app/core/tracing.py): like for like.
    from app.core.config import get_settings

    configure_grpc_tracing(get_settings().tracing_enabled)
    runtime = build_runtime()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runtime.start()
    print("floor worker started", flush=True)
    stop.wait()
    runtime.shutdown()
    if server:
        server.shutdown()
        server.server_close()
    print("floor worker stopped", flush=True)


if __name__ == "__main__":
    main()
