"""What the scripted model answers for one ticket's agent runs (tests/support/scripted_llm.py):
shared by the agents' integration tests and the history recorder's LLM paths."""

from __future__ import annotations

import json

from tests.support.scripted_llm import ScriptedLLM

MODEL = "scripted-model"
QUERIES = ["connection refused app port 5000", "sidecar cannot reach app", "app-port kubernetes AKS"]
TRIAGE_ANSWER = {"category": "connectivity", "priority": "high",
                 "summary": "The sidecar cannot reach the app on port 5000 in production."}
EXPERT_ANSWER = {"summary": "The sidecar's --app-port does not match the port the app listens on.",
                 "likely_causes": ["--app-port differs from the app's listening port"],
                 "steps": ["Find the port the app listens on", "Set --app-port (dapr.io/app-port) to it"],
                 "cited_articles": ["app-port-mismatch"], "confidence": 0.8}


def llm_env(llm: ScriptedLLM) -> dict[str, str]:
    return {"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": llm.base_url, "LLM_MODEL": MODEL}


def reply_json(llm: ScriptedLLM, value: dict) -> None:
    llm.reply_text(json.dumps(value))


def script_triage(llm: ScriptedLLM, structured_replies=(TRIAGE_ANSWER,)) -> None:
    llm.reply_tool_call("lookup_customer", {"customer_id": "CUST002"})  # as the ticket text asked
    llm.reply_tool_call("lookup_system_info", {})
    llm.reply_text("Category connectivity, priority high: production checkout is down.")
    reply_json(llm, {"summary": "Triaged as connectivity, high."})  # every run ends with a summary call
    for reply in structured_replies:
        llm.reply_text(reply if isinstance(reply, str) else json.dumps(reply))


def script_expert(llm: ScriptedLLM, queries=QUERIES) -> None:
    for query in queries:
        llm.reply_tool_call("search_knowledge_base", {"query": query})
    llm.reply_text("The app listens on another port than --app-port; see app-port-mismatch.")
    reply_json(llm, {"summary": "Diagnosed an app-port mismatch."})
    reply_json(llm, EXPERT_ANSWER)
