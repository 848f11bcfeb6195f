#!/usr/bin/env bash
# Starts the knowledge-base MCP server over stdio with the project's virtualenv. daprd runs this
# for resources/knowledge-base-mcp.yaml (its stdio command must be a path inside the project).
cd "$(dirname "$0")/.." && exec .venv/bin/python -m app.knowledge.mcp_server "$@"
