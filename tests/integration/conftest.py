"""One real service (redis, placement, scheduler, daprd, app) per test module, on fixed ports
chosen by the module, in a temporary data directory."""

from __future__ import annotations

import pytest

from tests.support.harness import Service, ServicePorts


def start_service(tmp_path_factory, name: str, base_port: int, app_env=None, sidecar_env=None) -> Service:
    service = Service(tmp_path_factory.mktemp(name), ServicePorts(base_port),
                      app_env=app_env or {}, sidecar_env=sidecar_env or {})
    try:
        service.start()
        service.load_sample_data()
    except Exception:
        _dump_logs(service)
        service.stop()
        raise
    return service


def _dump_logs(service: Service, lines: int = 25) -> None:
    for log in sorted(service.stack.log_dir.glob("*.log")):
        if log.stem not in ("app", "daprd"):
            continue
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- {log.name} (last {len(tail)} lines) ---\n" + "\n".join(tail))


@pytest.fixture(scope="module")
def service_factory(tmp_path_factory, request):
    started: list[Service] = []

    def factory(name: str, base_port: int, **kwargs) -> Service:
        service = start_service(tmp_path_factory, name, base_port, **kwargs)
        started.append(service)
        return service

    yield factory
    for service in started:
        if request.session.testsfailed:
            _dump_logs(service)
        service.stop()
