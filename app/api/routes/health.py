"""GET /health (sidecar and stores), /health/ready (may this replica take traffic),
/health/live (is the process serving) and /health/data (sample customers loaded)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.core.sidecar_http import (SIDECAR_PROBE_TIMEOUT_S, connected_workflow_workers, sidecar_metadata,
                                   sidecar_request)
from app.readmodel.store import ReadModelUnavailable

router = APIRouter(tags=["health"])

SAMPLE_CUSTOMERS = ("CUST001", "CUST002", "CUST003")


def _check(name: str, probe) -> tuple[str, str | None]:
    try:
        probe()
        return name, None
    except Exception as error:  # noqa: BLE001 - a health check reports any failure
        return name, f"{type(error).__name__}: {str(error)[:200]}"


@router.get("/health", responses={503: {"description": "a dependency failed"}})
def health(services: ServicesDep):
    settings = services.settings

    def components():
        loaded = {c.name for c in services.dapr.get_metadata().registered_components}
        missing = {settings.customer_store, settings.system_store, settings.analysis_store,
                   settings.workflow_store, settings.pubsub_name} - loaded
        if missing:
            raise RuntimeError(f"components not loaded: {sorted(missing)}")

    checks = dict([
        _check("sidecar", components),
        *(_check(store, lambda s=store: services.store(s).get_value("health-probe"))
          for store in (settings.customer_store, settings.system_store, settings.analysis_store)),
        _check("read-model", services.read_model.count),
    ])
    failed = {name: error for name, error in checks.items() if error}
    body = {"status": "ok" if not failed else "unhealthy",
            "checks": {name: error or "ok" for name, error in checks.items()},
            "llm_mode": settings.effective_llm_provider}
    return JSONResponse(status_code=503 if failed else 200, content=body)


@router.get("/health/data", responses={503: {"description": "the customer store cannot be read"}})
def health_data(services: ServicesDep):
    try:
        customers = services.customers.get_many(list(SAMPLE_CUSTOMERS))
        systems = services.systems.get_many(list(SAMPLE_CUSTOMERS))
    except Exception as error:  # noqa: BLE001
        return JSONResponse(status_code=503, content={"detail": f"cannot read stores: {error}"})
    present = {cid: cid in customers and cid in systems for cid in SAMPLE_CUSTOMERS}
    return {"loaded": all(present.values()), "customers": present}


@router.get("/health/live")
def live():
    """For the supervisor and the load balancer: the process answers. Nothing else is checked,
    so a sidecar restart never gets the app killed."""
    return {"status": "ok"}


# A job that never fires (due in the year 2999), created by the first probe that finds it
# missing: reading it is a round trip to a scheduler, and once it exists the read answers 200
# (a missing job would log an error in daprd at every probe).
SCHEDULER_PROBE_JOB = "readiness-probe"
SCHEDULER_PROBE_DUE = "2999-01-01T00:00:00Z"
# The MCPServer resource that keeps daprd 1.18.1 from unregistering the workflow actors when the
# app's stream drops (resources/knowledge-base-mcp.yaml).
KNOWLEDGE_BASE_MCP = "knowledge-base"


def _scheduler_problem() -> str | None:
    """Whether a scheduler answers the sidecar. The metadata's `connected_addresses` is no
    evidence: daprd 1.18.1 keeps listing a scheduler that has gone. Reading a job is: a
    scheduler answers at once, and with none reachable the read hangs past the deadline."""
    path = f"/v1.0-alpha1/jobs/{SCHEDULER_PROBE_JOB}"
    try:
        response = sidecar_request("GET", path)
        if response.status_code != 200 and "job not found" in response.text:
            # A scheduler answered; the job is created so that later probes read it.
            # overwrite: replicas probing at once may each create it.
            response = sidecar_request("POST", path, json={"dueTime": SCHEDULER_PROBE_DUE, "overwrite": True,
                                                    "data": {"purpose": "readiness probe"}})
    except httpx.TimeoutException:
        return f"no scheduler answered the sidecar within {SIDECAR_PROBE_TIMEOUT_S:g}s"
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {str(error)[:200]}"
    if response.status_code in (200, 204):
        return None
    return f"the sidecar's job API answered {response.status_code}: {response.text[:200]}"


@router.get("/health/ready", responses={503: {"description": "not ready: the body names what is missing"}})
def ready(services: ServicesDep):
    """200 only when tickets can be served end to end: the workflow worker connected, placement
    and the scheduler reachable from the sidecar, every store answering, the knowledge-base
    MCPServer loaded (the daprd 1.18.1 deadlock workaround), the read model built and the
    customer data loaded. Each check has a deadline."""
    settings = services.settings
    problems: dict[str, str] = {}
    try:
        metadata = sidecar_metadata()
        actors = metadata.get("actorRuntime") or {}
        if actors.get("runtimeStatus") != "RUNNING" or "connected" not in str(actors.get("placement", "")):
            problems["placement"] = f"actor runtime {actors.get('runtimeStatus')}, {actors.get('placement')}"
        if (scheduler := _scheduler_problem()) is not None:
            problems["scheduler"] = scheduler
        workers = connected_workflow_workers(metadata)
        hosted = {a.get("type", "") for a in actors.get("activeActors") or []}
        registered = any(t.endswith(".workflow") for t in hosted)
        if not workers or not registered:
            problems["workflow worker"] = (f"{workers} workflow worker(s) connected; the workflow actor is "
                                           f"{'registered' if registered else 'not registered'}")
        names = {c.get("name") for c in metadata.get("components") or []}
        missing = {settings.customer_store, settings.system_store, settings.analysis_store,
                   settings.workflow_store, settings.pubsub_name} - names
        if missing:
            problems["components"] = f"not loaded: {sorted(missing)}"
        if KNOWLEDGE_BASE_MCP not in {m.get("name") for m in metadata.get("mcpServers") or []}:
            problems["mcp"] = (f"the {KNOWLEDGE_BASE_MCP} MCPServer is not loaded: without it daprd "
                               "1.18.1 can lose the workflow actors when the app crashes")
    except Exception as error:  # noqa: BLE001 - readiness reports any failure
        problems["sidecar"] = f"{type(error).__name__}: {str(error)[:200]}"
    for store in (settings.customer_store, settings.system_store, settings.analysis_store):
        name, error = _check(store, lambda s=store: services.store(s).get_value("health-probe"))
        if error:
            problems[name] = error
    try:
        if not services.read_model.wait_built(timeout=0):
            problems["read-model"] = "being rebuilt from the workflows"
    except ReadModelUnavailable as error:
        problems["read-model"] = str(error)
    try:
        if not services.customers.get_many(list(SAMPLE_CUSTOMERS)):
            problems["data"] = "no customer records loaded (python setup_sample_data.py)"
    except Exception as error:  # noqa: BLE001
        problems["data"] = f"{type(error).__name__}: {str(error)[:200]}"
    if problems:
        return JSONResponse(status_code=503, headers={"Retry-After": "2"},
                            content={"status": "not ready", "problems": problems})
    return {"status": "ready"}
