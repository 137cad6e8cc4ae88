"""Migration (speed): ``trace_unified.tags`` reads the trace's ``tags`` copy (migration 6).

The view built each trace's map with a correlated subquery over the ``tags`` table, which DuckDB
runs as an aggregate over every tag in the store for any query that selects the column. The copy
holds the same current tags on the trace row. The column keeps its meaning: NULL for a trace
without tags, keys in sorted order.
"""

SQL = """
    CREATE OR REPLACE VIEW trace_unified AS
    SELECT
        t.trace_id,
        make_timestamp(t.timestamp_ms * 1000)         AS request_time,
        t.timestamp_ms,
        t.status                                      AS state,
        t.status,
        t.execution_time_ms                           AS execution_duration_ms,
        t.execution_time_ms,
        t.name,
        t.request,
        t.response,
        left(t.request, 1000)                         AS request_preview,
        left(t.response, 1000)                        AS response_preview,
        t.session_id,
        t.user_id,
        t.model,
        t.prompt_version,
        t.environment,
        t.input_tokens,
        t.output_tokens,
        coalesce(t.input_tokens, 0) + coalesce(t.output_tokens, 0) AS total_tokens,
        t.metadata                                    AS trace_metadata,
        CASE WHEN t.tags = '{}' THEN NULL
             ELSE map_from_entries(list_sort(map_entries(CAST(t.tags AS MAP(VARCHAR, VARCHAR))))) END AS tags,
        t.span_count,
        t.error_count,
        t.tool_names,
        t.source
    FROM traces t;
"""
