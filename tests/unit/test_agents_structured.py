"""Structuring an agent's answer: the real dapr-agents OpenAI client against a scripted server,
`generate(response_format=...)`, then the checks and merges that are never the model's call."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from app.agents import chat_client as chat_client_module
from app.agents import registry, structured
from app.agents.chat_client import build_chat_client
from app.agents.structured import MalformedAnswer, structure_expert, structure_triage
from app.core.config import Settings
from app.workflows.contracts import Proposal
from tests.support.activities import call_activity
from tests.support.scripted_llm import ScriptedLLM

SCRIPTED_PORT = 25990
TICKET = {"ticket_id": "T-1", "customer_id": "CUST001", "filed_at": "2026-11-23T12:00:00+00:00",
          "description": "Production checkout is down: the sidecar gets connection refused from the app "
                         "on port 5000", "approval_timeout_seconds": 3600, "max_revisions": 2}
OFFLINE_TRIAGE = {"ticket_id": "T-1", "customer_id": "CUST001", "customer_name": "Acme Corporation",
                  "plan": "enterprise", "entitled": True, "entitlement_reason": "enterprise plan",
                  "sla": {"first_response_target": "1 h", "first_response_due": "2026-11-23T13:00:00+00:00"},
                  "category": "configuration", "priority": "critical", "summary": "offline summary",
                  "system_info": {"dapr_version": "1.14.4", "cloud": "azure"}, "kb_queries": ["q"],
                  "generated_by": "offline"}
# The agent may say anything about plan, entitlement or SLA: none of it is used.
TRIAGE_ANSWER = "Category connectivity, priority high. The customer is on the basic plan: SLA 15 min."


@pytest.fixture(scope="module")
def llm():
    server = ScriptedLLM(port=SCRIPTED_PORT).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def wiring(llm, monkeypatch):
    llm.replies.clear()
    llm.requests.clear()
    client = build_chat_client(Settings(llm_provider="openai", openai_api_key="k",
                                        openai_base_url=llm.base_url, llm_model="scripted"))
    monkeypatch.setattr(chat_client_module, "chat_client", lambda: client)
    return client


def reply_json(llm, value: dict) -> None:
    llm.reply_text(json.dumps(value))


def test_triage_takes_category_priority_summary_from_the_model_and_sla_from_the_plan(llm, wiring):
    reply_json(llm, {"category": "connectivity", "priority": "high", "summary": "Sidecar cannot reach the app."})
    triage = call_activity(structure_triage, {"ticket": TICKET, "triage": OFFLINE_TRIAGE, "answer": TRIAGE_ANSWER})

    assert (triage["category"], triage["priority"]) == ("connectivity", "high")
    assert triage["summary"] == "Sidecar cannot reach the app."
    assert triage["generated_by"] == "llm"
    # Enterprise plan, high priority: 4 h from filing, whatever the agent said.
    assert triage["entitled"] is True and triage["plan"] == "enterprise"
    assert triage["sla"] == {"first_response_target": "4 h", "first_response_due": "2026-11-23T16:00:00+00:00"}
    assert len(triage["kb_queries"]) >= 3 and any(q.startswith("connectivity ") for q in triage["kb_queries"])


def test_triage_asks_for_json_in_the_triage_schema(llm):
    reply_json(llm, {"category": "connectivity", "priority": "high", "summary": "s"})
    call_activity(structure_triage, {"ticket": TICKET, "triage": OFFLINE_TRIAGE, "answer": TRIAGE_ANSWER})
    [request] = llm.requests
    schema = request["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) == {"category", "priority", "summary"}
    assert "connectivity" in schema["properties"]["category"]["enum"]
    assert TRIAGE_ANSWER in request["messages"][-1]["content"]
    assert TICKET["description"] in request["messages"][-1]["content"]


@pytest.mark.parametrize("reply", [
    "It is a connectivity problem, priority high.",
    json.dumps({"category": "networking", "priority": "high", "summary": "s"}),
    json.dumps({"category": "connectivity", "priority": "urgent", "summary": "s"}),
    json.dumps({"category": "connectivity", "priority": "high", "summary": "  "}),
])
def test_a_malformed_triage_answer_fails_the_activity(llm, wiring, reply):
    llm.reply_text(reply)
    with pytest.raises(ValueError):
        call_activity(structure_triage, {"ticket": TICKET, "triage": OFFLINE_TRIAGE, "answer": TRIAGE_ANSWER})


def search(query, slugs, result=None):
    hits = [{"slug": s, "title": f"Title of {s}", "category": "connectivity", "score": 1.0, "snippet": "..."}
            for s in slugs]
    return SimpleNamespace(tool_name="search_knowledge_base", tool_args={"query": query},
                           execution_result=result if result is not None else json.dumps(hits))


@pytest.fixture
def history(monkeypatch):
    records = []
    expert = SimpleNamespace(get_state=lambda run_id: SimpleNamespace(tool_history=records))
    monkeypatch.setattr(registry, "registered_agents", lambda: SimpleNamespace(expert=expert))
    return records


EXPERT_REPLY = {"summary": "The app listens on another port than --app-port.",
                "likely_causes": ["--app-port does not match the port the app listens on"],
                "steps": ["Check the port the app listens on", "Restart the sidecar with that --app-port"],
                "cited_articles": ["app-port-mismatch"], "confidence": 0.8}


def test_expert_answer_becomes_a_proposal_with_the_agents_searches(llm, history):
    history += [search("connection refused 5000", ["app-port-mismatch", "port-conflicts"]),
                search("  Connection  refused 5000 ", ["app-port-mismatch"]),  # the same query again
                search("sidecar cannot reach app", ["app-port-mismatch", "app-health-checks"]),
                search("broken", [], result="Error executing tool 'search_knowledge_base': boom"),
                SimpleNamespace(tool_name="lookup_customer", tool_args={}, execution_result="{}"),
                search("app port kubernetes", ["sidecar-injection"])]
    reply_json(llm, EXPERT_REPLY)
    result = call_activity(structure_expert, {"ticket": TICKET, "run_id": "T-1.expert-0", "answer": "prose"})

    assert result["proposal"] == Proposal(**EXPERT_REPLY, generated_by="llm").model_dump(mode="json")
    assert result["queries"] == ["connection refused 5000", "sidecar cannot reach app", "app port kubernetes"]
    assert [[h["slug"] for h in hits] for hits in result["search_results"]] == [
        ["app-port-mismatch", "port-conflicts"], ["app-port-mismatch", "app-health-checks"],
        ["sidecar-injection"]]
    prompt = llm.requests[0]["messages"][-1]["content"]
    assert "- app-health-checks: Title of app-health-checks" in prompt and "prose" in prompt


def test_an_expert_run_with_too_few_searches_is_refused_without_a_model_call(llm, history):
    history += [search("a", ["app-port-mismatch"]), search("A ", ["app-port-mismatch"]), search("b", [])]
    with pytest.raises(MalformedAnswer, match="2 distinct knowledge-base searches; at least 3"):
        call_activity(structure_expert, {"ticket": TICKET, "run_id": "T-1.expert-0", "answer": "prose"})
    assert llm.requests == []


@pytest.mark.parametrize("change", [
    {"cited_articles": ["made-up-article"]},
    {"cited_articles": []},
    {"confidence": 1.5},
    {"steps": [" "]},
])
def test_a_malformed_expert_answer_fails_the_activity(llm, history, change):
    history += [search("a", ["app-port-mismatch"]), search("b", ["port-conflicts"]), search("c", [])]
    reply_json(llm, {**EXPERT_REPLY, **change})
    with pytest.raises(ValueError):
        call_activity(structure_expert, {"ticket": TICKET, "run_id": "T-1.expert-0", "answer": "prose"})
