"""Migration (speed): ART indexes on ``trace_id`` in ``traces``, ``spans`` and ``tags``.

``get_trace``, a search by trace id, tagging by ids, a page of 20 traces' tags and a per-trace
span breakdown each look up a few trace ids. Without an index each of those scans the whole
table (23-90 ms at 1M traces); with one it is a point lookup (~1-2 ms). Filters over many
traces still use hash joins, which DuckDB prefers over an index for them anyway.
"""

SQL = """
    CREATE INDEX IF NOT EXISTS traces_trace_id ON traces (trace_id);
    CREATE INDEX IF NOT EXISTS tags_trace_id ON tags (trace_id);
    CREATE INDEX IF NOT EXISTS spans_trace_id ON spans (trace_id);
"""
