"""MCP tools for the judges feature (filled in by its issue)."""

from __future__ import annotations

from mcp.server import MCPServer

from server.storage.duckdb_store import DuckDBTraceStore


def register(mcp: MCPServer, store: DuckDBTraceStore) -> None:
    """Add this feature's tools to ``mcp``."""
