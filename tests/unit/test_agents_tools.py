"""The agents' tools serve only the ticket's own customer: the binding comes from the agent run
the ticket workflow started, through dapr-agents' real run_tool path, never from the model's
arguments."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from dapr_agents.tool.executor import AgentToolExecutor

from app.agents import binding
from app.agents.runs import AgentRunInput
from app.agents.ticket_agent import SilentTextFormatter, TicketAgent
from app.agents.tools import EXPERT_TOOLS, TRIAGE_TOOLS, lookup_customer
from app.activities import deps

CUSTOMERS = {
    "CUST001": {"customer_id": "CUST001", "name": "Acme Corporation", "plan": "enterprise",
                "contact_email": "ops@acme.example"},
    "CUST002": {"customer_id": "CUST002", "name": "TechStart Inc", "plan": "professional",
                "contact_email": "dev@techstart.example"},
}
SYSTEMS = {
    "CUST001": {"customer_id": "CUST001", "dapr_version": "1.14.4", "cloud": "azure",
                "platform": "kubernetes (AKS)", "applications": ["checkout"]},
    "CUST002": {"customer_id": "CUST002", "dapr_version": "1.13.2", "cloud": "aws",
                "platform": "kubernetes (EKS)", "applications": ["api-gateway"]},
}
# Agent run -> the input the ticket workflow started it with.
RUNS = {"T-1.triage": AgentRunInput(task="triage", ticket_id="T-1", customer_id="CUST001"),
        "T-2.triage": AgentRunInput(task="triage", ticket_id="T-2", customer_id="CUST002"),
        "T-1.expert-0": AgentRunInput(task="propose", ticket_id="T-1", customer_id="CUST001")}


class FakeStore:
    def __init__(self, records):
        self.records = records
        self.reads: list[str] = []

    def get_value(self, key):
        self.reads.append(key)
        return self.records.get(key)


class FakeWorkflows:
    """The workflow gateway (app/services/workflow_gateway.py), as far as the tools read it."""

    def get(self, instance_id, payloads=True):
        run = RUNS.get(instance_id)
        return SimpleNamespace(input=run.model_dump(mode="json")) if run else None


@pytest.fixture
def stores(monkeypatch):
    customers, systems = FakeStore(CUSTOMERS), FakeStore(SYSTEMS)
    deps.provide(SimpleNamespace(customers=customers, systems=systems, workflows=FakeWorkflows()))
    yield customers, systems
    deps.provide(None)


def agent_with(tools) -> TicketAgent:
    """A TicketAgent with only what run_tool uses (building a real one needs a sidecar)."""
    agent = object.__new__(TicketAgent)
    agent.tool_executor = AgentToolExecutor(tools=list(tools))
    agent.text_formatter = SilentTextFormatter()
    return agent


def run_tool(agent: TicketAgent, run_id: str, name: str, arguments: dict) -> dict:
    payload = {"tool_call": {"id": "call-1", "type": "function",
                             "function": {"name": name, "arguments": json.dumps(arguments)}},
               "instance_id": run_id, "time": "2026-11-23T12:00:00", "order": 0}
    message = agent.run_tool(SimpleNamespace(workflow_id=run_id), payload)
    return json.loads(message["content"])


def test_customer_tool_serves_the_runs_customer_whatever_the_model_asks(stores):
    agent = agent_with(TRIAGE_TOOLS)
    assert run_tool(agent, "T-1.triage", "lookup_customer", {"customer_id": "CUST002"}) == {
        "customer_id": "CUST001", "name": "Acme Corporation", "plan": "enterprise"}
    assert run_tool(agent, "T-2.triage", "lookup_customer", {}) == {
        "customer_id": "CUST002", "name": "TechStart Inc", "plan": "professional"}
    assert stores[0].reads == ["CUST001", "CUST002"]


def test_system_tool_serves_the_runs_customer_whatever_the_model_asks(stores):
    result = run_tool(agent_with(TRIAGE_TOOLS), "T-1.triage", "lookup_system_info",
                      {"customer_id": "CUST002", "kwargs": {"customer_id": "CUST002"}})
    assert result["customer_id"] == "CUST001" and result["cloud"] == "azure"
    assert stores[1].reads == ["CUST001"]


def test_the_contact_address_never_reaches_the_model(stores):
    result = run_tool(agent_with(TRIAGE_TOOLS), "T-1.triage", "lookup_customer", {})
    assert "contact_email" not in result


def test_the_binding_lasts_only_for_the_tool_call(stores):
    run_tool(agent_with(TRIAGE_TOOLS), "T-1.triage", "lookup_customer", {})
    assert binding.ticket_scope.get() is None


def test_a_tool_called_outside_an_agent_run_serves_no_one(stores):
    with pytest.raises(Exception, match="only inside an agent run"):
        lookup_customer()
    assert stores[0].reads == []


def test_an_unknown_run_fails_the_activity_instead_of_answering_the_model(stores):
    with pytest.raises(binding.UnboundToolCall):
        run_tool(agent_with(TRIAGE_TOOLS), "T-404.triage", "lookup_customer", {})
    assert stores[0].reads == []


def test_a_failed_read_of_the_run_fails_the_activity_so_it_is_retried(stores, monkeypatch):
    def unavailable():
        raise ConnectionError("sidecar unavailable")

    monkeypatch.setattr(FakeWorkflows, "get", lambda self, *a, **k: unavailable())
    with pytest.raises(ConnectionError):
        run_tool(agent_with(TRIAGE_TOOLS), "T-1.triage", "lookup_customer", {})


def test_the_customer_tools_offer_the_model_no_arguments():
    for tool in TRIAGE_TOOLS:
        assert tool.to_function_call()["function"]["parameters"]["properties"] == {}


def test_knowledge_search_returns_articles_by_slug(stores):
    hits = run_tool(agent_with(EXPERT_TOOLS), "T-1.expert-0", "search_knowledge_base",
                    {"query": "connection refused app port 5000"})
    assert hits[0]["slug"] == "app-port-mismatch"
    assert set(hits[0]) == {"slug", "title", "category", "score", "snippet"}
