"""The SQL of ``error_patterns`` in ClickHouse: DuckDB's ``_PATTERNS_SQL`` (``duckdb/analytics_sql.py``) ported.

Same definitions: an occurrence is a failed span none of whose children failed, or an ERROR
trace without a failed span; a pattern is (error type, location, folded message). The folding
rules and error-type rules are data from ``tools.analysis.error_patterns`` (RE2 patterns, which
both engines run with the same library), bound as parameters ``e_*``, never spliced.

ClickHouse-specific: JSON is read with ``JSONExtract*`` over the stored text (a non-string value
as written, like DuckDB's ``json_extract_string``); aggregates that must keep a NULL (the newest
example's message) go through a tuple, since ClickHouse's aggregates otherwise skip NULLs; the
newest examples are the top of ``groupArray((ts, trace_id))`` sorted descending.
"""

from __future__ import annotations

from typing import Any

from tools.analysis.error_patterns import ErrorRequest


def window_cte(where: str) -> str:
    """``e_win``: the traces of both windows (previous, current], with ``cur`` marking the current one."""
    return f"""e_win AS MATERIALIZED (
    SELECT t.trace_id AS trace_id, t.timestamp_ms AS ts, t.status AS status, toFloat64(t.execution_time_ms) AS dur,
           t.name AS name, t.timestamp_ms > {{e_cur:Int64}} AS cur
    FROM traces AS t
    WHERE ({where}) AND t.timestamp_ms > {{e_prev:Int64}} AND t.timestamp_ms <= {{e_end:Int64}})"""


COUNTS_SQL = """
WITH {win}
SELECT cur, count() AS traces, countIf(status = 'ERROR') AS errors,
       quantileExactInclusive(0.5)(dur) AS p50_ms, quantileExactInclusive(0.95)(dur) AS p95_ms
FROM e_win GROUP BY cur
"""


def json_text(doc: str, *path: str) -> str:
    """A JSON value as text (strings unquoted, others as written), NULL when absent or null.
    ``path`` are SQL string literals of constant keys (never user values)."""
    args = ", ".join([doc, *path])
    return (f"multiIf(NOT JSONHas({args}), NULL, JSONType({args}) = 'String', JSONExtractString({args}), "
            f"JSONType({args}) = 'Null', NULL, JSONExtractRaw({args}))")


def error_rules(request: ErrorRequest) -> tuple[dict[str, Any], str, str]:
    """Parameters and SQL expressions for the error type and the folded message (rules are data)."""
    params: dict[str, Any] = {}
    exception_type = json_text("e", "'attributes'", "'exception.type'")
    events = f"arrayFirst(x -> x IS NOT NULL, arrayMap(e -> {exception_type}, JSONExtractArrayRaw(o_attr_events)))"
    attribute_type = json_text("o_attributes", "'error.type'")
    typed = [f"nullIf({attribute_type}, '')", f"nullIf({events}, '')"]
    for i, (pattern, prefix) in enumerate(request.error_type_rules):
        params[f"e_tr{i}"], params[f"e_tp{i}"] = pattern, prefix
        typed.append(f"nullIf(concat({{e_tp{i}:String}}, regexpExtract(coalesce(o_msg, ''), {{e_tr{i}:String}}, 1)), "
                     f"{{e_tp{i}:String}})")
    error_type = f"coalesce({', '.join(typed)}, 'unknown')"
    message = "o_msg"
    for i, (pattern, replacement) in enumerate(request.message_folds):
        params[f"e_fp{i}"], params[f"e_fr{i}"] = pattern, replacement
        message = f"replaceRegexpAll({message}, {{e_fp{i}:String}}, {{e_fr{i}:String}})"
    return params, error_type, f"leftUTF8(trimBoth({message}), {{e_chars:UInt32}})"


#: ``{win}``, ``{error_type}`` and ``{message}`` are filled by ``patterns_sql``; the rest are parameters.
_PATTERNS_SQL = """
WITH {win},
es AS MATERIALIZED (
    SELECT s.trace_id AS trace_id, s.span_id AS span_id, s.parent_span_id AS parent_span_id, s.name AS name,
           s.span_type AS span_type, s.tool_name AS tool_name, s.status_message AS msg, s.attributes AS attributes,
           s.events AS events
    FROM spans AS s
    WHERE s.trace_id IN (SELECT trace_id FROM e_win) AND s.status = 'ERROR'),
occ_spans AS (          -- where each failure started: failed spans without a failed child ...
    SELECT trace_id AS o_trace, coalesce(tool_name, nullIf(name, ''), span_type) AS o_loc,
           toNullable(span_type) AS o_type, msg AS o_msg, attributes AS o_attributes, events AS o_attr_events
    FROM es
    WHERE (trace_id, span_id) NOT IN (SELECT trace_id, assumeNotNull(parent_span_id) FROM es
                                      WHERE parent_span_id IS NOT NULL)),
occ AS (
    SELECT o_trace, o_loc, o_type, o_msg, {error_type} AS o_etype FROM occ_spans
    UNION ALL           -- ... and ERROR traces without any failed span
    SELECT w.trace_id AS o_trace, coalesce(nullIf(w.name, ''), '(trace)') AS o_loc, NULL AS o_type,
           NULL AS o_msg, 'unknown' AS o_etype
    FROM e_win AS w WHERE w.status = 'ERROR' AND w.trace_id NOT IN (SELECT trace_id FROM es)),
per_trace AS (
    SELECT o_etype AS p_etype, o_loc AS p_loc, {message} AS p_message, o_trace AS p_trace, count() AS p_n,
           any(o_type) AS p_type, any(leftUTF8(o_msg, {{e_chars:UInt32}})) AS p_msg
    FROM occ GROUP BY p_etype, p_loc, p_message, p_trace),
grouped AS (
    SELECT p.p_etype AS error_type, p.p_loc AS location, p.p_message AS message,
           if(count(p.p_type) = 0, NULL, topK(1)(p.p_type)[1]) AS span_type,
           sumIf(p.p_n, w.cur) AS occurrences, countIf(w.cur) AS traces,
           countIf(w.cur AND w.status = 'ERROR') AS failed_traces,
           minIf(w.ts, w.cur) AS first_ms, maxIf(w.ts, w.cur) AS last_ms, countIf(NOT w.cur) AS previous_traces,
           arraySlice(arrayMap(x -> x.2, arrayReverseSort(groupArrayIf((w.ts, p.p_trace), w.cur))),
                      1, {{e_examples:UInt32}}) AS example_trace_ids,
           argMaxIf(tuple(p.p_msg), w.ts, w.cur).1 AS example_message,
           argMaxIf(p.p_trace, w.ts, w.cur) AS newest
    FROM per_trace AS p JOIN e_win AS w ON w.trace_id = p.p_trace
    GROUP BY p.p_etype, p.p_loc, p.p_message),
ranked AS (
    SELECT *, count() OVER () AS n FROM grouped WHERE traces > 0
    ORDER BY traces DESC, occurrences DESC, last_ms DESC, error_type, location, message LIMIT {{e_top:UInt32}})
SELECT ranked.error_type AS error_type, ranked.location AS location, ranked.message AS message, ranked.span_type AS span_type,
       ranked.occurrences AS occurrences, ranked.traces AS traces, ranked.failed_traces AS failed_traces,
       ranked.first_ms AS first_ms, ranked.last_ms AS last_ms, ranked.previous_traces AS previous_traces,
       ranked.example_trace_ids AS example_trace_ids, ranked.example_message AS example_message, ranked.n AS n,
       r.sample_request AS sample_request
FROM ranked
LEFT JOIN (SELECT t.trace_id AS trace_id, leftUTF8(t.request, 2000) AS sample_request FROM traces AS t
           WHERE t.trace_id IN (SELECT newest FROM ranked)) AS r ON r.trace_id = ranked.newest
ORDER BY traces DESC, occurrences DESC, last_ms DESC, error_type, location, message
"""


def patterns_sql(win: str, error_type: str, message: str) -> str:
    return _PATTERNS_SQL.format(win=win, error_type=error_type, message=message)
