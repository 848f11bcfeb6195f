"""The OpenTelemetry gRPC client interceptor, only when tracing is on.

The workflow SDK (dapr.ext.workflow._durabletask.client) instruments every gRPC channel at import
time whenever `opentelemetry-instrumentation-grpc` is installed, and dapr-agents installs it. The
interceptor wraps each call to the sidecar with span bookkeeping even when no exporter is set:
about a quarter of the app's CPU under load (docs/benchmarks.md, profile). With TRACING_ENABLED
unset it is removed before any channel is opened; channels opened earlier keep it, so this runs
first thing at start-up.
"""

from __future__ import annotations

import logging

_log = logging.getLogger(__name__)


def configure_grpc_tracing(enabled: bool) -> bool:
    """Leaves the interceptor on when `enabled`, removes it otherwise. True when it is on."""
    try:
        import dapr.ext.workflow  # noqa: F401 - its import installs the interceptor
        from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient
    except ImportError:
        return False
    instrumentor = GrpcInstrumentorClient()
    if enabled:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
        return True
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
        _log.info("gRPC tracing off (TRACING_ENABLED is not set): no OpenTelemetry interceptor on sidecar calls")
    return False
