"""Storage engines. One folder per engine; ``duckdb`` is the embedded default."""
