"""The triage agent's prompt and tools run through the openai chat client, for `python -m app.eval`
with an LLM configured: the same role, goal, instructions and task text as the workflow's
triage agent (app/agents/triage_agent.py), its two tools answered from the sample customer
records (no state store in the evaluation), then the agent's prose turned into
`{category, priority, summary}` by a second call, as the workflow's structuring step does.

Each call's latency and token counts are kept so the evaluation can report them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from app.agents import triage_agent
from app.domain.ticket import TicketWorkflowInput
from app.domain.triage import Priority
from app.knowledge.articles import CATEGORIES

ROLE = "Support triage engineer"
GOAL = "Classify each ticket so it reaches the right engineer in time."
FORMAT = ("Convert a support triage agent's answer into JSON with the keys category (one of: "
          f"{', '.join(CATEGORIES)}), priority (critical, high, medium or low) and summary (one "
          "or two sentences for a support engineer). Take them from the agent's answer; where it "
          "leaves one open, decide from the ticket. Answer with the JSON object only.")
TOOLS = [
    {"type": "function", "function": {
        "name": "lookup_customer", "parameters": {"type": "object", "properties": {}},
        "description": "The customer who filed this ticket: name and support plan."}},
    {"type": "function", "function": {
        "name": "lookup_system_info", "parameters": {"type": "object", "properties": {}},
        "description": "The systems of the customer who filed this ticket: Dapr version, cloud, "
                       "platform and applications."}},
]


class LlmTriageError(Exception):
    """The model's answer does not give a valid triage."""


class LlmAssessment(BaseModel):
    category: str
    priority: Priority
    summary: str


@dataclass
class LlmTriage:
    assessment: LlmAssessment | None
    error: str | None
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    tool_calls: list[str] = field(default_factory=list)


class TriageAgentRunner:
    """One chat client for the whole evaluation."""

    def __init__(self, client, model: str, customers: dict[str, dict], systems: dict[str, dict]):
        self.client, self.model = client, model
        self._records = {"lookup_customer": customers, "lookup_system_info": systems}

    def triage(self, ticket: dict) -> LlmTriage:
        started = time.perf_counter()
        run = LlmTriage(assessment=None, error=None, latency_s=0.0)
        try:
            answer = self._agent_answer(ticket, run)
            run.assessment = self._structured(ticket, answer, run)
        except LlmTriageError as error:
            run.error = str(error)
        run.latency_s = round(time.perf_counter() - started, 3)
        return run

    def _agent_answer(self, ticket: dict, run: LlmTriage) -> str:
        task = triage_agent.triage_run_input(TicketWorkflowInput.model_validate({
            "ticket_id": _ticket_id(ticket), "customer_id": ticket.get("customer_id", "CUST001"),
            "description": ticket["description"], "filed_at": "2026-01-01T00:00:00+00:00",
            "approval_timeout_seconds": 0}))["task"]
        system = "\n".join([f"# Role\n{ROLE}", f"# Goal\n{GOAL}", "# Instructions",
                            *triage_agent.INSTRUCTIONS])
        messages: list[dict] = [{"role": "system", "content": system},
                                {"role": "user", "content": task}]
        for _ in range(triage_agent.MAX_ITERATIONS):
            message = self._call(run, messages=messages, tools=TOOLS)
            if not message.tool_calls:
                if not (message.content or "").strip():
                    raise LlmTriageError("the triage agent answered with no text")
                return message.content
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                run.tool_calls.append(call.function.name)
                messages.append({"role": "tool", "tool_call_id": call.id,
                                 "content": json.dumps(self._tool(call.function.name, ticket))})
        raise LlmTriageError(f"no answer after {triage_agent.MAX_ITERATIONS} iterations")

    def _structured(self, ticket: dict, answer: str, run: LlmTriage) -> LlmAssessment:
        content = (f"Ticket, as the customer wrote it:\n<<<TICKET\n{ticket['description']}\n"
                   f"TICKET>>>\n\nThe triage agent's answer:\n<<<ANSWER\n{answer}\nANSWER>>>")
        message = self._call(run, messages=[{"role": "system", "content": FORMAT},
                                            {"role": "user", "content": content}],
                             response_format={"type": "json_object"})
        try:
            assessment = LlmAssessment.model_validate_json(message.content or "")
        except ValidationError as error:
            raise LlmTriageError(f"structured answer is not a triage: {error.errors()[0]['msg']}") from error
        if assessment.category not in CATEGORIES:
            raise LlmTriageError(f"unknown category {assessment.category!r}")
        return assessment

    def _call(self, run: LlmTriage, **request):
        try:
            response = self.client.chat.completions.create(model=self.model, **request)
        except Exception as error:  # noqa: BLE001 - any client failure fails this ticket's run
            raise LlmTriageError(f"chat call failed: {type(error).__name__}: {error}") from error
        run.calls += 1
        if response.usage:
            run.prompt_tokens += response.usage.prompt_tokens or 0
            run.completion_tokens += response.usage.completion_tokens or 0
        if not response.choices:
            raise LlmTriageError("chat answer has no choices")
        return response.choices[0].message

    def _tool(self, name: str, ticket: dict) -> dict:
        records = self._records.get(name)
        if records is None:
            return {"error": f"unknown tool {name!r}"}
        customer_id = ticket.get("customer_id", "CUST001")
        record = records.get(customer_id)
        if record is None:
            return {"customer_id": customer_id, "found": False}
        if name == "lookup_customer":  # the contact address stays out of the conversation
            return {key: record[key] for key in ("customer_id", "name", "plan")}
        return record


def _ticket_id(ticket: dict) -> str:
    """The eval ticket's id as a valid workflow ticket id."""
    return "".join(ch if ch.isalnum() or ch in "_-" else "-" for ch in str(ticket["id"]))[:64]
