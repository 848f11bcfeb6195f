"""The PostgreSQL profile on real processes: PostgreSQL 15 (initialised and started by
scripts/devstack.py), redis, placement, scheduler, daprd with every store on state.postgresql v2
(resources/postgresql/), and the app with its read model in PostgreSQL too (schema readmodel).
A ticket filed, approved and completed leaves its workflow state and its read-model row in
PostgreSQL's tables, and survives a stop and start of everything. The read model's contract
(app/readmodel/store.py) is checked on both backends, SQLite and this PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

from app.readmodel.store import ReadModel
from app.workflows.contracts import ProgressRecord, TicketProgress, TimelineEvent
from scripts.devstack import REPO, profile_resources, psql
from tests.integration.conftest import _dump_logs
from tests.support.harness import Service, ServicePorts, wait_for_stage

BASE_PORT = 15000  # ServicePorts(15000): 15005..15926 (PostgreSQL on 15900), below the ephemeral ports
TABLES = {"workflow_state", "customer_state", "system_state", "analysis_state", "agent_state"}
DESCRIPTION = "Production checkout is down: the sidecar gets connection refused from the app on port 5000"


def state_components(files) -> dict[str, dict]:
    docs = (yaml.safe_load(Path(f).read_text()) for f in files)
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Component" and d["spec"]["type"].startswith("state.")}


def test_profile_puts_every_state_store_of_resources_on_postgresql():
    sqlite = state_components(profile_resources("sqlite"))
    postgresql = state_components(profile_resources("postgresql"))
    assert set(postgresql) == set(sqlite) and len(sqlite) == 5
    for name, store in postgresql.items():
        assert (store["spec"]["type"], store["spec"]["version"]) == ("state.postgresql", "v2"), name
        connection = next(m for m in store["spec"]["metadata"] if m["name"] == "connectionString")
        assert connection == {"name": "connectionString", "secretKeyRef": {
            "name": "POSTGRES_CONNECTION_STRING", "key": "POSTGRES_CONNECTION_STRING"}}
        assert store["auth"] == {"secretStore": "env-secrets"}
    actor = {m["name"]: m.get("value") for m in postgresql["workflow-state"]["spec"]["metadata"]}
    assert actor["actorStateStore"] == "true"
    # Everything else (pub/sub, secrets, MCP server, resiliency, configuration) is shared.
    names = {Path(f).name for f in profile_resources("postgresql")}
    assert names == {Path(f).name for f in profile_resources("sqlite")}


@pytest.fixture(scope="module")
def service(request):
    # Not under pytest's 0700 temporary directory: as root, PostgreSQL runs as the postgres user,
    # which must be able to reach its data directory.
    workdir = Path(tempfile.mkdtemp(prefix="support-pg-profile-"))
    workdir.chmod(0o711)
    service = Service(workdir, ServicePorts(BASE_PORT), app_env={"APPROVAL_TIMEOUT": "1h"}, profile="postgresql")
    try:
        service.start()
        service.load_sample_data()
        yield service
    finally:
        if request.session.testsfailed:
            _dump_logs(service)
        service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def sql(service: Service, query: str) -> list[str]:
    """The rows of a one-column query, run with psql against the stack's PostgreSQL."""
    out = psql(service.data_dir, service.ports.infra.postgres, query)
    return [line for line in out.splitlines() if line]


def test_a_ticket_completes_with_its_workflow_state_in_postgresql(service):
    with service.client() as api:
        response = api.post("/support/ticket", json={"ticket_id": "PG-1", "customer_id": "CUST001",
                                                     "description": DESCRIPTION})
        assert response.status_code == 202, response.text
        wait_for_stage(api, "PG-1", "awaiting_approval", timeout=90)
        response = api.post("/support/approve/PG-1", json={"approved": True})
        assert response.status_code == 202, response.text
        status = wait_for_stage(api, "PG-1", "completed", timeout=90)
    assert status["status"] == "completed"
    assert status["output"]["notification"]["kind"] == "resolved"

    tables = set(sql(service, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    assert TABLES <= tables, tables
    # The workflow actor's state (metadata, history events) is keyed
    # <app id>||<actor type>||<instance id>||<key> in the actor store's table.
    keys = sql(service, "SELECT key FROM workflow_state WHERE key LIKE '%||PG-1||%' ORDER BY key")
    assert keys, "no workflow state of PG-1 in PostgreSQL"
    assert all(key.startswith("support-service||") and ".workflow||PG-1||" in key for key in keys), keys
    assert any(key.endswith("||metadata") for key in keys), keys
    assert sum("||history-" in key for key in keys) >= 5, keys
    # The service's own records are there too, and nothing went to SQLite files.
    assert sql(service, "SELECT count(*) FROM customer_state WHERE key = 'support-service||CUST001'") == ["1"]
    assert sql(service, "SELECT count(*) FROM analysis_state WHERE key = 'support-service||notification:PG-1:resolved'") == ["1"]
    assert not list((service.data_dir / "state").glob("*.db"))
    # The read model is PostgreSQL's too (schema readmodel), with the ticket's row and timeline.
    assert service.read_model_url.startswith("postgresql://")
    assert sql(service, "SELECT stage || ' ' || status FROM readmodel.tickets WHERE ticket_id = 'PG-1'") == [
        "completed completed"]
    assert int(sql(service, "SELECT count(*) FROM readmodel.ticket_events WHERE ticket_id = 'PG-1'")[0]) >= 3
    assert not service.read_model_path.exists()
    with service.client() as api:
        listed = api.get("/support/tickets", params={"stage": "completed"})
    assert listed.status_code == 200, listed.text
    assert "PG-1" in [t["ticket_id"] for t in listed.json()["tickets"]]


def test_the_ticket_survives_a_stop_and_start_of_everything(service):
    before = sql(service, "SELECT count(*) FROM workflow_state WHERE key LIKE '%||PG-1||%'")
    service.stop()
    service.start()
    with service.client() as api:
        status = wait_for_stage(api, "PG-1", "completed", timeout=60)
    assert status["output"]["notification"]["kind"] == "resolved"
    assert sql(service, "SELECT count(*) FROM workflow_state WHERE key LIKE '%||PG-1||%'") == before


# -- the read model's contract, on SQLite and on this PostgreSQL ---------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def read_model(request, tmp_path, monkeypatch):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/rm.db"
    else:
        # A database of its own: the running app's read model (and its reconcile sweep) is not touched.
        service = request.getfixturevalue("service")
        if not sql(service, "SELECT 1 FROM pg_database WHERE datname = 'readmodel_contract'"):
            sql(service, "CREATE DATABASE readmodel_contract")
        monkeypatch.setenv("PGPASSWORD", (service.data_dir / "postgres-password").read_text().strip())
        url = service.read_model_url.rsplit("/", 1)[0] + "/readmodel_contract"
    model = ReadModel(url)
    model.clear()
    yield model
    model.clear()
    model.close()


def record(ticket_id: str, seq: int, events: tuple[str, ...] = (), **progress) -> ProgressRecord:
    return ProgressRecord(ticket_id=ticket_id, seq=seq, progress=TicketProgress(**progress),
                          events=[TimelineEvent(key=k, kind="stage", actor="workflow", at=f"2026-01-01T00:00:0{i}",
                                                details={"n": i}) for i, k in enumerate(events)])


def test_read_model_applies_only_newer_records_and_each_event_once(read_model):
    assert read_model.apply(record("T-1", 2, ("filed", "triaged"), customer_id="CUST001", stage="triage",
                                   filed_at="2026-01-01T00:00:00", confidence=0.8125, escalations=["a"]))
    assert not read_model.apply(record("T-1", 1, ("filed",), stage="pending"))      # older: ignored
    assert not read_model.apply(record("T-1", 2, ("triaged",), stage="pending"))    # same seq: ignored
    assert read_model.apply(record("T-1", 3, ("triaged", "done"), stage="completed", awaiting_decision=False))
    row = read_model.get("T-1")
    assert (row["seq"], row["stage"], row["status"], row["customer_id"]) == (3, "completed", "completed", "CUST001")
    assert row["confidence"] == 0.8125 and row["escalations"] == ["a"] and row["awaiting_decision"] is False
    assert [e["key"] for e in read_model.events("T-1")] == ["filed", "triaged", "done"]
    assert read_model.events("T-1")[0]["details"] == {"n": 0}


def test_read_model_lists_by_keyset_filters_and_text(read_model):
    for i in range(7):
        read_model.apply(record(f"T-{i}", 1, stage="triage" if i % 2 else "completed",
                                filed_at=f"2026-01-01T00:00:0{i}", description=f"checkout 100%_{i} down"))
    seen, cursor = [], None
    while True:
        page, cursor = read_model.list({}, limit=3, cursor=cursor)
        seen += [t["ticket_id"] for t in page]
        if not cursor:
            break
    assert seen == [f"T-{i}" for i in reversed(range(7))]
    assert [t["ticket_id"] for t in read_model.list({"stage": "triage"}, 10)[0]] == ["T-5", "T-3", "T-1"]
    assert [t["ticket_id"] for t in read_model.list({}, 10, text="100%_4")[0]] == ["T-4"]
    assert read_model.list({"awaiting_decision": False}, 10)[0] == []
    with pytest.raises(ValueError):
        read_model.list({"description": "x"}, 10)


def test_read_model_runtime_status_forget_meta_and_changes(read_model):
    read_model.apply(record("T-1", 1, ("filed",), stage="triage", filed_at="2026-01-01T00:00:00"))
    read_model.apply(record("T-2", 1, stage="triage", filed_at="2026-01-01T00:00:01"))
    assert read_model.count() == 2
    assert sorted(read_model.running(10, "9999")) == ["T-1", "T-2"]
    before = read_model.last_change()
    read_model.set_runtime_status("T-1", "failed", "failed")
    assert read_model.get("T-1")["stage"] == "failed" and read_model.running(10, "9999") == ["T-2"]
    assert read_model.last_change() != before
    read_model.mark_checked(["T-2"])
    assert read_model.running(10, "2000") == []
    read_model.forget("T-1")
    assert read_model.get("T-1") is None and read_model.events("T-1") == [] and read_model.count() == 1
    assert read_model.last_change("T-1") == "/0"
    assert read_model.get_meta("built_at") is None
    read_model.set_meta("built_at", "x")
    read_model.set_meta("built_at", "y")
    assert read_model.get_meta("built_at") == "y"
    read_model.clear()
    assert read_model.count() == 0 and read_model.get_meta("built_at") is None


def test_two_replicas_writing_one_ticket_keep_the_newest_record(read_model):
    """Two processes' read models (replicas) applying records of one ticket at once: the row ends
    at the highest seq, every event once."""
    other = ReadModel(read_model_url_of(read_model))
    errors = []

    def write(model, seqs):
        try:
            for seq in seqs:
                model.apply(record("T-9", seq, (f"e{seq}", "filed"), stage="triage", revision=seq))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
    threads = [threading.Thread(target=write, args=(m, range(start, 60, 2))) for m, start in ((read_model, 1), (other, 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    assert errors == []
    row = read_model.get("T-9")
    assert (row["seq"], row["revision"]) == (59, 59)
    assert sorted(e["key"] for e in read_model.events("T-9")) == sorted({"filed", *(f"e{s}" for s in range(1, 60))})


def read_model_url_of(model: ReadModel) -> str:
    backend = model._backend
    return f"sqlite:///{backend.path}" if getattr(backend, "path", None) else backend._url


def test_unsupported_read_model_url_names_only_the_scheme():
    with pytest.raises(ValueError) as raised:
        ReadModel("mysql://user:secret@host/db")
    assert "mysql" in str(raised.value) and "secret" not in str(raised.value)
