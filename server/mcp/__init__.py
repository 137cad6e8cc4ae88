"""The MCP adapter: the app, argument strictness, and one module per toolset.

Each toolset module (``traces``, ``analysis``, ``datasets``, ``judges``, ``calibration``)
registers thin tools that build the typed input, call ``tools`` and return its pydantic result.
"""
