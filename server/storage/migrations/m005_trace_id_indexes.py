"""Migration (speed): ART indexes on ``tags.trace_id`` and ``spans.trace_id``.

Showing a page of 20 traces fetches their tags, and ``get_trace`` or a per-trace span
breakdown fetches one trace's spans. Without an index each of those scans the whole table
(23 ms for the tags and ~40 ms for the spans of one trace at 1M traces); with one it is a
point lookup (~1-2 ms). Filters over many traces still use hash joins, which DuckDB prefers
over an index for them anyway.
"""

SQL = """
    CREATE INDEX IF NOT EXISTS tags_trace_id ON tags (trace_id);
    CREATE INDEX IF NOT EXISTS spans_trace_id ON spans (trace_id);
"""
