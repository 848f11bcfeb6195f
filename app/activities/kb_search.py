"""Activity: one knowledge-base query. The workflow fans several of these out in parallel."""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from app.knowledge.search import get_knowledge_search


def search_knowledge_base(ctx: WorkflowActivityContext, request: dict) -> list[dict]:
    hits = get_knowledge_search().search(request["query"], k=int(request.get("k", 5)))
    return [hit.model_dump() for hit in hits]
