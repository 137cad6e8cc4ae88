"""Files in and out: dataset export/import, label import, and the one folder MCP may touch."""
