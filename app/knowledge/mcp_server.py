"""The knowledge base as an MCP server, so agents and IDE assistants can search and read articles.

    python -m app.knowledge.mcp_server              # stdio transport
    python -m app.knowledge.mcp_server --http 8765  # streamable HTTP on 127.0.0.1:8765/mcp
"""

from __future__ import annotations

import argparse

from mcp.server.fastmcp import FastMCP

from app.knowledge.articles import Article, load_articles
from app.knowledge.search import SearchHit, get_knowledge_search

MAX_HITS = 20

mcp = FastMCP(
    "dapr-support-knowledge-base",
    instructions="Troubleshooting articles for Dapr applications (self-hosted and Kubernetes). "
                 "Search with the customer's symptoms or error message, then read the best "
                 "article by slug for its causes and numbered resolution steps.",
)


@mcp.tool()
def search_knowledge_base(query: str, k: int = 5) -> list[SearchHit]:
    """Find the articles that best match a problem description or error message, best first."""
    return get_knowledge_search().search(query, k=max(1, min(k, MAX_HITS)))


@mcp.tool()
def get_article(slug: str) -> Article:
    """One article by slug: title, category, keywords, symptoms, causes, steps and full text."""
    articles = load_articles()
    if slug not in articles:
        raise ValueError(f"unknown article {slug!r}; search_knowledge_base lists valid slugs")
    return articles[slug]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.knowledge.mcp_server",
                                     description="Serve the knowledge base over MCP.")
    parser.add_argument("--http", type=int, metavar="PORT",
                        help="serve streamable HTTP on this port instead of stdio")
    parser.add_argument("--host", default="127.0.0.1", help="bind address for --http")
    args = parser.parse_args(argv)
    if args.http is None:
        mcp.run()
        return
    mcp.settings.host, mcp.settings.port = args.host, args.http
    mcp.run(transport="streamable-http")


if __name__ == "__main__":
    main()
