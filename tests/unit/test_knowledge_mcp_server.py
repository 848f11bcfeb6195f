import asyncio
import json
import sys
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.fastmcp.exceptions import ToolError

from app.knowledge.articles import load_articles
from app.knowledge.mcp_server import mcp

REPO = Path(__file__).parents[2]


def call(name: str, arguments: dict):
    """In-process tool call; returns the structured result."""
    _content, structured = asyncio.run(mcp.call_tool(name, arguments))
    return structured


def test_server_lists_both_tools():
    tools = asyncio.run(mcp.list_tools())
    assert sorted(tool.name for tool in tools) == ["get_article", "search_knowledge_base"]


def test_search_tool_returns_ranked_hits():
    hits = call("search_knowledge_base", {"query": "x509 certificate has expired", "k": 2})["result"]
    assert len(hits) == 2
    assert hits[0]["slug"] == "mtls-cert-expiry"
    assert hits[0]["category"] == "security"
    assert hits[0]["score"] > hits[1]["score"] > 0
    assert "x509" in hits[0]["snippet"]


def test_search_tool_bounds_k_and_handles_blank_queries():
    assert call("search_knowledge_base", {"query": "   "})["result"] == []
    assert len(call("search_knowledge_base", {"query": "sidecar", "k": 500})["result"]) == 20


def test_get_article_tool_returns_the_whole_article():
    article = call("get_article", {"slug": "pubsub-dead-letter"})
    expected = load_articles()["pubsub-dead-letter"]
    assert article["title"] == expected.title
    assert article["category"] == "pubsub"
    assert article["steps"] == expected.steps
    assert "deadLetterTopic" in article["body"]


def test_get_article_tool_rejects_unknown_slugs():
    with pytest.raises(ToolError, match="unknown article 'no-such-topic'"):
        call("get_article", {"slug": "no-such-topic"})


def test_server_answers_over_stdio():
    async def session_round_trip():
        server = StdioServerParameters(command=sys.executable,
                                       args=["-m", "app.knowledge.mcp_server"], cwd=str(REPO))
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("search_knowledge_base",
                                             {"query": "placement service unreachable", "k": 1})
            article = await session.call_tool("get_article", {"slug": "bindings-cron"})
            return result, article

    result, article = asyncio.run(asyncio.wait_for(session_round_trip(), timeout=60))
    assert not result.isError
    assert result.structuredContent["result"][0]["slug"] == "placement-unreachable"
    assert json.loads(article.content[0].text)["category"] == "configuration"
