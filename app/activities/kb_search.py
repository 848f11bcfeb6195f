"""Activity: one knowledge-base query. The workflow fans several of these out in parallel."""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from app.knowledge.search import get_knowledge_search
from app.workflows.contracts import SearchHitOut, SearchRequest, SearchResult


def search_knowledge_base(ctx: WorkflowActivityContext, request: SearchRequest) -> SearchResult:
    hits = get_knowledge_search().search(request.query, k=request.k)
    return SearchResult(hits=[SearchHitOut.brief(hit) for hit in hits])
