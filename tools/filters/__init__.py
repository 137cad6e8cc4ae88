"""The filter language: MLflow's ``search_traces`` strings and more, parsed into a small AST.

Lexer -> parser -> nodes, with the field registry (``fields``) as the one table of what can be
filtered, how each value is checked (``values``) and how a filter reads in English (``explain``).
Needs no port: each store compiles the AST to its own SQL (``server.storage.<engine>``).
"""
