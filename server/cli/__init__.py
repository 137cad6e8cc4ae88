"""The ``tracesieve`` command: one module per family, on the same input models as MCP."""
