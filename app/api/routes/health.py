"""GET /health (sidecar and stores) and GET /health/data (sample customers loaded)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import DaprDep, SettingsDep
from app.core import clients

router = APIRouter(tags=["health"])

SAMPLE_CUSTOMERS = ("CUST001", "CUST002", "CUST003")


def _check(name: str, probe) -> tuple[str, str | None]:
    try:
        probe()
        return name, None
    except Exception as error:  # noqa: BLE001 - a health check reports any failure
        return name, f"{type(error).__name__}: {str(error)[:200]}"


@router.get("/health", responses={503: {"description": "a dependency failed"}})
def health(dapr: DaprDep, settings: SettingsDep):
    def components():
        loaded = {c.name for c in dapr.get_metadata().registered_components}
        missing = {settings.customer_store, settings.system_store, settings.analysis_store,
                   settings.workflow_store, settings.pubsub_name} - loaded
        if missing:
            raise RuntimeError(f"components not loaded: {sorted(missing)}")

    checks = dict([
        _check("sidecar", components),
        *(_check(store, lambda s=store: clients.store(s).get_value("health-probe"))
          for store in (settings.customer_store, settings.system_store, settings.analysis_store)),
    ])
    failed = {name: error for name, error in checks.items() if error}
    body = {"status": "ok" if not failed else "unhealthy",
            "checks": {name: error or "ok" for name, error in checks.items()},
            "llm_mode": settings.effective_llm_provider}
    return JSONResponse(status_code=503 if failed else 200, content=body)


@router.get("/health/data", responses={503: {"description": "the customer store cannot be read"}})
def health_data(settings: SettingsDep):
    try:
        customers = clients.customer_store().get_many(list(SAMPLE_CUSTOMERS))
        systems = clients.system_store().get_many(list(SAMPLE_CUSTOMERS))
    except Exception as error:  # noqa: BLE001
        return JSONResponse(status_code=503, content={"detail": f"cannot read stores: {error}"})
    present = {cid: cid in customers and cid in systems for cid in SAMPLE_CUSTOMERS}
    return {"loaded": all(present.values()), "customers": present}
