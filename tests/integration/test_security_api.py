"""Tenancy and hardening against the real service: client scopes, the client view, nothing around
the API (daprd's HTTP and gRPC ports, forged deliveries, loopback only), development tokens
refused in production, oversized bodies, rate limits and strict decisions."""

from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

import grpc
import pytest
import dapr.proto.runtime.v1 as api_v1
from dapr.proto.runtime.v1 import dapr_pb2_grpc as api_service_v1

from app.core.security import DEVELOPMENT_TOKENS
from scripts.devstack import REPO
from tests.support.harness import TEST_TOKENS, poll, wait_for_stage

BASE_PORT = 29000
SPARE_APP_PORT = BASE_PORT + 790  # for app processes that must refuse to start
INTERNAL_KEYS = {"output", "decision", "escalations", "revision", "instance_id", "status", "waiting_seconds"}


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("security", BASE_PORT, app_env={"APPROVAL_TIMEOUT": "1h"})


def ticket(ticket_id: str, customer_id: str = "CUST001") -> dict:
    return {"ticket_id": ticket_id, "customer_id": customer_id,
            "description": "Production checkout is down: the sidecar gets connection refused from the app"}


# -- client scopes ---------------------------------------------------------------------------

def test_a_scoped_client_files_only_for_its_customers(service):
    with service.client("scoped-client") as scoped:
        other = scoped.post("/support/ticket", json=ticket("SEC-OTHER", "CUST002"))
        missing = scoped.post("/support/ticket", json=ticket("SEC-MISSING", "CUST999"))
        assert other.status_code == missing.status_code == 403, (other.text, missing.text)
        # "Exists but not yours" and "does not exist" read the same, but for the id sent.
        assert other.json()["detail"].replace("CUST002", "X") == missing.json()["detail"].replace("CUST999", "X")
        assert scoped.get("/support/status/SEC-OTHER").status_code == 404  # nothing was started
        assert scoped.post("/support/ticket", json=ticket("SEC-OWN")).status_code == 202
    with service.client("engineer") as engineer:
        # Support staff still learn that a customer is unknown.
        assert engineer.post("/support/ticket", json=ticket("SEC-NOCUST", "CUST999")).status_code == 404


def test_an_unscoped_integration_client_files_for_any_customer(service):
    with service.client("client") as integration:
        for index, customer in enumerate(("CUST001", "CUST002", "CUST003")):
            response = integration.post("/support/ticket", json=ticket(f"SEC-INT-{index}", customer))
            assert response.status_code == 202, response.text
        assert integration.get("/support/status/SEC-INT-1").json()["view"] == "client"
        assert integration.post("/support/ticket", json=ticket("SEC-INT-X", "CUST999")).status_code == 404


def test_a_scoped_client_reads_no_other_customers_ticket(service):
    with service.client("engineer") as engineer, service.client("scoped-client") as scoped, \
            service.client("client") as integration:
        assert engineer.post("/support/ticket", json=ticket("SEC-CUST2", "CUST002")).status_code == 202
        unknown = scoped.get("/support/status/SEC-NEVER-FILED")
        for ticket_id in ("SEC-CUST2", "SEC-INT-1"):   # filed by staff, by another client
            hidden = scoped.get(f"/support/status/{ticket_id}")
            assert hidden.status_code == 404, hidden.text
            assert hidden.json()["detail"].replace(ticket_id, "X") == unknown.json()["detail"].replace("SEC-NEVER-FILED", "X")
        assert integration.get("/support/status/SEC-OWN").status_code == 404  # the scoped client's
        assert engineer.get("/support/status/SEC-OWN").status_code == 200


def test_a_client_reads_its_own_ticket_without_internal_fields(service):
    with service.client("engineer") as engineer, service.client("scoped-client") as scoped:
        full = wait_for_stage(engineer, "SEC-OWN", "awaiting_approval")
        proposal = full["output"]["proposal"]
        waiting = scoped.get("/support/status/SEC-OWN").json()
        assert waiting["view"] == "client" and waiting["stage"] == "awaiting_approval"
        assert waiting["sla_due"] == full["sla_due"] and waiting["solution"] is None
        assert not INTERNAL_KEYS & set(waiting)
        assert proposal["summary"] not in json.dumps(waiting)

        decision = {"approved": True, "final_solution": "Restart the sidecar after the app listens.",
                    "support_notes": "internal: customer runs an old runtime"}
        assert engineer.post("/support/approve/SEC-OWN", json=decision).status_code == 202
        done = wait_for_stage(scoped, "SEC-OWN", "completed")
        assert done["solution"] == decision["final_solution"]
        assert done["notification"]["kind"] == "resolved" and decision["final_solution"] in done["notification"]["body"]
        full = engineer.get("/support/status/SEC-OWN").json()
        internals = [full["output"]["decision"]["approver"], decision["support_notes"], "enterprise",
                     "ops@acme.example", "checkout", "1.14.4", proposal["summary"]]
        text = json.dumps(done)
        assert not [value for value in internals if value in text], text
        assert not INTERNAL_KEYS & set(done)


# -- nothing around the API -------------------------------------------------------------------

def test_daprd_http_api_refuses_calls_without_its_token(service):
    url = f"http://127.0.0.1:{service.ports.dapr_http}"
    import httpx

    with httpx.Client(base_url=url, timeout=10) as raw:
        assert raw.get("/v1.0/state/customer-state/CUST001").status_code == 401
        assert raw.get("/v1.0/state/customer-state/CUST001", headers={"dapr-api-token": "guess"}).status_code == 401
        raised = raw.post("/v1.0/workflows/dapr/SEC-INT-1/raiseEvent/solution_approved", json={"approved": True})
        assert raised.status_code == 401
        assert raw.get("/v1.0/metadata").status_code == 401
        assert raw.get("/v1.0/healthz").status_code == 204  # probes stay open
    assert service.state("customer-state", "CUST001")["customer_id"] == "CUST001"  # with the token


def test_daprd_grpc_api_refuses_calls_without_its_token(service):
    with grpc.insecure_channel(f"127.0.0.1:{service.ports.dapr_grpc}") as channel:
        stub = api_service_v1.DaprStub(channel)
        request = api_v1.GetStateRequest(store_name="customer-state", key="CUST001")
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetState(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as forged:
            stub.RaiseEventWorkflowBeta1(api_v1.RaiseEventWorkflowRequest(
                instance_id="SEC-INT-1", workflow_component="dapr", event_name="solution_approved",
                event_data=b'{"approved": true}'), timeout=10, metadata=(("dapr-api-token", "guess"),))
        assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answer = stub.GetState(request, timeout=10, metadata=(("dapr-api-token", service.dapr_api_token),))
        assert json.loads(answer.data)["customer_id"] == "CUST001"


def _non_loopback_ipv4() -> list[str]:
    addresses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
            except OSError:
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                addresses.append(address)
    return addresses


def test_daprd_and_the_app_listen_on_loopback_only(service):
    addresses = _non_loopback_ipv4()
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    for address in addresses:
        for port in (service.ports.dapr_http, service.ports.dapr_grpc, service.ports.app):
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=2).close()


def test_forged_deliveries_and_subscription_reads_are_refused(service):
    forged = {"id": "forged-1", "source": "attacker", "type": "com.dapr.event.sent", "specversion": "1.0",
              "datacontenttype": "application/json", "topic": "solution-ready", "pubsubname": "support-pubsub",
              "data": {"ticket_id": "SEC-FORGED", "priority": "critical"}}
    with service.client(None) as anonymous, service.client("engineer") as engineer:
        assert anonymous.post("/events/solution-ready", json=forged).status_code == 401
        assert anonymous.post("/events/solution-ready", json=forged,
                              headers={"dapr-api-token": "guess"}).status_code == 401
        # An API token is not the sidecar's token either.
        assert engineer.post("/events/solution-ready", json=forged).status_code == 401
        assert anonymous.get("/dapr/subscribe").status_code == 401
    assert service.state("analysis-state", "inbox:solution-ready:SEC-FORGED") is None
    # daprd itself, with the app token, still delivers: the inbox holds SEC-OWN's real messages.
    received = poll(lambda: service.state("analysis-state", "inbox:customer-notifications:SEC-OWN"),
                    lambda record: record is not None, message="the real notification was not received")
    assert len(received["messages"]) == 1


def _start_app_expecting_refusal(service, env_changes: dict) -> tuple[int, str]:
    env = {**service._base_env(), "PYTHONPATH": str(REPO), "DAPR_HTTP_PORT": str(service.ports.dapr_http),
           "DAPR_GRPC_PORT": str(service.ports.dapr_grpc), "DAPR_API_TOKEN": service.dapr_api_token,
           "APP_API_TOKEN": service.app_api_token, "DAPR_HEALTH_TIMEOUT": "5", **env_changes}
    env = {k: v for k, v in env.items() if v is not None}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                                "--port", str(SPARE_APP_PORT)], cwd=service.workdir, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, output


@pytest.mark.parametrize("env_changes, message", [
    ({"API_TOKENS": DEVELOPMENT_TOKENS}, "published development token"),
    ({"API_TOKENS": "ops:operator:a-long-production-token,me:engineer:dev-engineer-token"},
     "published development token"),
    ({"API_TOKENS": "ops:operator:a-long-production-token", "DAPR_API_TOKEN": None}, "DAPR_API_TOKEN is not set"),
], ids=["development-tokens", "one-development-token-among-others", "no-daprd-token"])
def test_the_app_refuses_to_start_insecurely(service, env_changes, message):
    """Outside DEV_MODE (unset here), the process exits with one clear line."""
    code, output = _start_app_expecting_refusal(service, env_changes)
    assert code != 0, output
    refusal = [line for line in output.splitlines() if "refusing to start" in line]
    assert refusal and message in refusal[0], output[-3000:]
    assert "dev-engineer-token" not in refusal[0] and "a-long-production-token" not in output


# -- bad input ---------------------------------------------------------------------------------

def _read_response(sock: socket.socket, timeout: float = 15) -> tuple[int, dict, bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _request_head(service, path: str, headers: dict) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{service.ports.app}",
             f"Authorization: Bearer {TEST_TOKENS['engineer']}", "Content-Type: application/json",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_ten_megabyte_body_is_refused_without_being_read(service):
    declared = 10 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", service.ports.app), timeout=15) as sock:
        started = time.monotonic()
        # The head and the first 1 KB only: the answer must come without the other 10 MB.
        sock.sendall(_request_head(service, "/support/ticket", {"Content-Length": declared}) + b'{"ticket_id": "' + b"x" * 1000)
        code, headers, body = _read_response(sock)
        elapsed = time.monotonic() - started
    assert code == 413, body
    assert headers["content-type"].startswith("application/json")
    assert "request body over 524288 bytes" in json.loads(body)["detail"]
    assert elapsed < 10


def test_a_chunked_body_is_refused_once_over_the_limit(service):
    chunk = b"x" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", service.ports.app), timeout=15) as sock:
        sock.sendall(_request_head(service, "/support/ticket", {"Transfer-Encoding": "chunked"}))
        while sent < 4 * 1024 * 1024:
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            if select.select([sock], [], [], 0.05)[0]:
                break
        code, _, body = _read_response(sock)
    assert code == 413, body
    assert 512 * 1024 <= sent < 4 * 1024 * 1024  # answered soon after the limit, not at the end


def test_decisions_are_strictly_typed(service):
    with service.client("engineer") as engineer:
        assert engineer.post("/support/ticket", json=ticket("SEC-DECIDE", "CUST002")).status_code == 202
        wait_for_stage(engineer, "SEC-DECIDE", "awaiting_approval")
        for bad in ({"approved": 0}, {"approved": 1}, {"approved": "false"},
                    {"approved": False, "final_solution": "only with an approval"}):
            response = engineer.post("/support/approve/SEC-DECIDE", json=bad)
            assert response.status_code == 422, (bad, response.text)
        assert engineer.get("/support/status/SEC-DECIDE").json()["stage"] == "awaiting_approval"
        schema = engineer.get("/openapi.json").json()["components"]["schemas"]
        assert {"$ref": "#/components/schemas/Rejection"} in schema["DecisionRequest"]["anyOf"]
        assert schema["Rejection"]["properties"]["final_solution"]["type"] == "null"


def test_denied_attempts_are_logged_without_tokens(service):
    with service.client(None) as anonymous, service.client("client") as client:
        anonymous.get("/support/tickets", headers={"Authorization": "Bearer not-a-real-token-123"})
        client.get("/support/tickets")
    log = service.stack.log_dir / "app.log"
    denied = poll(lambda: [json.loads(line) for line in log.read_text().splitlines()
                           if '"access denied"' in line], lambda lines: len(lines) >= 3,
                  message="denied attempts were not logged")
    reasons = {(line["reason"], line.get("principal"), line.get("path")) for line in denied}
    assert ("invalid bearer token", None, "/support/tickets") in reasons
    assert ("role not permitted", "tester-client", "/support/tickets") in reasons
    assert ("customer outside the client's scope", "tester-scoped-client", None) in reasons
    text = log.read_text() + (service.stack.log_dir / "daprd.log").read_text()
    assert not [token for token in (*TEST_TOKENS.values(), "not-a-real-token-123", service.dapr_api_token,
                                    service.app_api_token) if token in text]


def test_a_burst_over_the_rate_limit_answers_429_with_retry_after(service):
    # Last in the module: the app restarts with a small budget.
    service.app_env["RATE_LIMIT"] = "5/minute"
    service.restart_app()
    with service.client("engineer") as engineer, service.client("operator") as operator:
        answers = [engineer.get("/support/status/SEC-OWN") for _ in range(8)]
        codes = [a.status_code for a in answers]
        assert codes[:5] == [200] * 5 and set(codes[5:]) == {429}, codes
        limited = answers[-1]
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json()["detail"]
        assert operator.get("/support/status/SEC-OWN").status_code == 200  # its own budget
