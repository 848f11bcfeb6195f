"""The agents' structured outputs. A run ends with prose; these activities have the agent's
chat client turn it into a pydantic object (`generate(response_format=...)`), check it, and
merge it with what is never the model's call.

A malformed answer raises: the workflow's retry policy asks again, then the workflow falls back
to the offline path and records why.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from datetime import datetime
from typing import Literal, TypeVar

from dapr.ext.workflow import WorkflowActivityContext
from pydantic import BaseModel, field_validator

from app.agents import registry
from app.agents.expert_agent import MIN_SEARCHES
from app.domain.ticket import TicketWorkflowInput
from app.domain.triage import Priority, TriageResult
from app.expert.queries import build_kb_queries
from app.knowledge.articles import CATEGORIES
from app.triage.entitlement import decide_entitlement
from app.triage.scope import assess_scope
from app.workflows.contracts import (ExpertOutcome, Proposal, SearchHitOut, StructureExpertRequest,
                                     StructureTriageRequest)

Model = TypeVar("Model", bound=BaseModel)


class MalformedAnswer(ValueError):
    """The model's answer does not hold up (unknown citation, too few searches, ...)."""


# Entitlement and SLA are never asked for: they follow from the customer's plan
# (app/triage/entitlement.py), whatever the agent says. (Docstrings here reach the model: they
# are the schema's descriptions.)
class TriageAssessment(BaseModel):
    """A support ticket's triage: its category, its priority and a short summary."""

    category: Literal[CATEGORIES]
    priority: Priority
    summary: str

    @field_validator("summary")
    @classmethod
    def _not_blank(cls, value: str) -> str:  # noqa: N805 - pydantic validator
        if not value.strip():
            raise ValueError("summary is blank")
        return value.strip()


# Ranges are checked by validators, not in the JSON schema, so the schema stays within what
# every structured-output backend accepts.
class ExpertAnswer(BaseModel):
    """A proposed solution to a support ticket, grounded in knowledge-base articles."""

    summary: str
    likely_causes: list[str]
    steps: list[str]
    cited_articles: list[str]
    confidence: float

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str) -> str:  # noqa: N805
        if not value.strip():
            raise ValueError("summary is blank")
        return value.strip()

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[str]) -> list[str]:  # noqa: N805
        steps = [step.strip() for step in value if step.strip()]
        if not steps:
            raise ValueError("no resolution steps")
        return steps

    @field_validator("confidence")
    @classmethod
    def _confidence(cls, value: float) -> float:  # noqa: N805
        if not 0.0 <= value <= 1.0:
            raise ValueError("confidence must be between 0 and 1")
        return value


TRIAGE_FORMAT = (
    "Convert a support triage agent's answer into the requested JSON. Take category, priority "
    "and summary from the agent's answer; where it leaves one open, decide from the ticket. "
    "The summary is one or two sentences for a support engineer."
)
EXPERT_FORMAT = (
    "Convert a support expert agent's answer into the requested JSON: summary, likely causes, "
    "resolution steps in order (one instruction each, without numbering), the slugs of the "
    "articles the answer relies on, and a confidence from 0 to 1. Cite only slugs from the list "
    "of articles the agent found."
)


def structure_triage(ctx: WorkflowActivityContext, request: StructureTriageRequest) -> TriageResult:
    """The triage agent's answer as the ticket's triage: category, priority and summary from the
    model; entitlement and SLA recomputed from the plan on the customer's record."""
    ticket, offline = request.ticket, request.triage
    assessment = generate(TriageAssessment, TRIAGE_FORMAT, f"{_ticket_text(ticket)}\n\n"
                          f"The triage agent's answer:\n<<<ANSWER\n{request.answer}\nANSWER>>>")
    filed_at = datetime.fromisoformat(ticket.filed_at)
    entitlement = decide_entitlement(offline.plan, assessment.priority, filed_at)
    # The model's category `other` puts the ticket out of scope; otherwise the retrieval decides.
    scope = assess_scope(ticket.description, SimpleNamespace(category=assessment.category,
                                                              top_score=None))
    triage = offline.model_copy(update={
        "category": assessment.category, "priority": assessment.priority, "summary": assessment.summary,
        "entitled": entitlement.entitled, "entitlement_reason": entitlement.reason, "sla": entitlement.sla,
        "kb_queries": build_kb_queries(ticket.description, assessment.category, offline.system_info),
        "generated_by": "llm", "in_scope": scope.in_scope, "scope_score": scope.score,
        "scope_reason": scope.reason or None,
    })
    return triage


def structure_expert(ctx: WorkflowActivityContext, request: StructureExpertRequest) -> ExpertOutcome:
    """The expert agent's answer as a proposal, with the searches the agent ran (query and hits,
    read from the run's durable tool history). Citations must be articles the agent found."""
    ticket = request.ticket
    searches = run_searches(request.run_id)
    if len(searches) < MIN_SEARCHES:
        raise MalformedAnswer(f"the expert agent ran {len(searches)} distinct knowledge-base "
                              f"searches; at least {MIN_SEARCHES} are required")
    found = {hit["slug"]: hit["title"] for hits in searches.values() for hit in hits}
    articles = "\n".join(f"- {slug}: {title}" for slug, title in found.items()) or "(none)"
    answer = generate(ExpertAnswer, EXPERT_FORMAT, f"{_ticket_text(ticket)}\n\n"
                      f"Articles the agent found:\n{articles}\n\n"
                      f"The expert agent's answer:\n<<<ANSWER\n{request.answer}\nANSWER>>>")
    unknown = [slug for slug in answer.cited_articles if slug not in found]
    if unknown or not answer.cited_articles:
        raise MalformedAnswer(f"cited articles {answer.cited_articles} must be among those found: "
                              f"{sorted(found)}")
    proposal = Proposal(**answer.model_dump(), generated_by="llm")
    return ExpertOutcome(proposal=proposal, queries=list(searches),
                         search_results=[[SearchHitOut.brief(h) for h in hits] for hits in searches.values()])


def run_searches(run_id: str) -> dict[str, list[dict]]:
    """query -> hits, for each distinct query the expert run searched with (first result kept)."""
    entry = registry.registered_agents().expert.get_state(run_id)
    searches: dict[str, list[dict]] = {}
    for record in getattr(entry, "tool_history", None) or []:
        query = " ".join(str(record.tool_args.get("query", "")).split())
        seen = query.lower() in map(str.lower, searches)
        if record.tool_name != "search_knowledge_base" or not query or seen:
            continue
        try:
            hits = json.loads(record.execution_result or "")
        except json.JSONDecodeError:
            continue  # the tool failed; its error text is not a result
        if isinstance(hits, list):
            searches[query] = hits
    return searches


def generate(model: type[Model], instructions: str, content: str) -> Model:
    """One structured call to the agents' chat client; raises when the answer does not fit."""
    from app.agents.chat_client import chat_client

    result = chat_client().generate(messages=[{"role": "system", "content": instructions},
                                              {"role": "user", "content": content}],
                                    response_format=model)
    if not isinstance(result, model):
        raise MalformedAnswer(f"expected one {model.__name__}, got {type(result).__name__}")
    return result


def _ticket_text(ticket: TicketWorkflowInput) -> str:
    return (f"Ticket {ticket.ticket_id}, as the customer wrote it:\n"
            f"<<<TICKET\n{ticket.description}\nTICKET>>>")
