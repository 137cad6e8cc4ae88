"""DuckDB adapter for the analysis tools: ``tools.analysis.profiling.ProfileStore`` and ``tools.analysis.error_patterns.ErrorStore``.

All aggregation happens here, in SQL on the call's own read-only connection: the selection is
materialised once into temp tables (gone when the connection closes); self time comes from
window functions (children's islands per parent, then a sweep over the traces whose spans run
in parallel); percentiles are ``quantile_cont`` (linear interpolation, numpy's default); error
messages are folded with ``regexp_replace`` using the rules ``tools.analysis.error_patterns`` holds as
data. Every value is a parameter (``$a_*`` / ``$e_*``, never clashing with the filter's ``$p*``);
Python only ever sees aggregates, never one row per trace or span.
"""

from __future__ import annotations

from typing import Any

import duckdb

from server.storage.duckdb.connection import fetch_dicts
from server.storage.duckdb.filter_sql import json_pointer
from server.storage.duckdb.store import StoreFeature
from tools.analysis.error_patterns import ErrorData, ErrorRequest, PatternRow, WindowCounts
from tools.analysis.profile_models import BREAKDOWNS, GroupRow, ProfileData, ProfileRequest, SpanStatsRow, TraceOverview

#: group_by kind -> SQL over ``traces t`` (the tag key's JSON Pointer is the parameter $a_tag).
GROUP_SQL: dict[str, str] = {
    "environment": "t.environment",
    "model": "t.model",
    "prompt_version": "t.prompt_version",
    "day": "strftime(make_timestamp(t.timestamp_ms * 1000), '%Y-%m-%d')",
    "hour": "strftime(make_timestamp(t.timestamp_ms * 1000), '%Y-%m-%dT%H:00Z')",
    "tag": "json_extract_string(t.tags, $a_tag)",
}
#: Breakdown dimension -> column of ``a_sp`` it groups by.
DIMENSION_SQL: dict[str, str] = {"span_type": "span_type", "span_name": "name", "tool": "tool_name", "model": "model"}
assert set(DIMENSION_SQL) == set(BREAKDOWNS)

#: Profile pipeline, one temp table per step on the call's own connection. Span trees are linked
#: through 64-bit hashes of (trace_id, span_id) so every later join, sort and partition is on
#: integers (ingestion keeps span ids unique per trace; a hash collision is ~1e-6 at 6M spans).
#: ``{semi}`` restricts spans to the selection (left out when everything is selected).
_PROFILE_STEPS: tuple[str, ...] = (
    # 1. the selection's spans, read once; then the tree as integers
    """CREATE OR REPLACE TEMP TABLE a_raw AS
    SELECT s.rowid AS sk, hash(s.trace_id) AS tk, hash(s.trace_id, s.span_id) AS h,
           CASE WHEN s.parent_span_id IS NOT NULL THEN hash(s.trace_id, s.parent_span_id) END AS ph,
           s.start_time_ns AS st, greatest(s.end_time_ns, s.start_time_ns) AS en,
           s.input_tokens AS itok, s.output_tokens AS otok,
           s.span_type, nullif(s.name, '') AS name, s.tool_name, s.model, s.status
    FROM spans s {semi}""",
    """CREATE OR REPLACE TEMP TABLE a_link AS
    SELECT c.sk, c.tk, c.st, c.en, (c.itok IS NOT NULL OR c.otok IS NOT NULL) AS has_tok,
           p.sk AS psk, p.st AS pst, p.en AS pen
    FROM a_raw c LEFT JOIN a_raw p ON p.h = c.ph AND p.sk <> c.sk""",
    # 2. children clipped to their parent, in start order, with the end of the union of the
    #    earlier siblings (prev_end). cs >= prev_end opens a new island of child time.
    """CREATE OR REPLACE TEMP TABLE a_kids AS
    SELECT *, max(ce) OVER (PARTITION BY psk ORDER BY cs, ce
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
    FROM (SELECT tk, psk, pst, pen, greatest(st, pst) AS cs, least(en, pen) AS ce FROM a_link
          WHERE psk IS NOT NULL AND least(en, pen) > greatest(st, pst))""",
    # 3. self intervals: the gap before each island and after the last one; all of a childless span
    """CREATE OR REPLACE TEMP TABLE a_si AS
    SELECT * FROM (
        SELECT tk, psk AS sk, coalesce(prev_end, pst) AS a, cs AS b FROM a_kids
        WHERE prev_end IS NULL OR cs > prev_end
        UNION ALL SELECT tk, psk, max(ce), any_value(pen) FROM a_kids GROUP BY tk, psk
        UNION ALL SELECT tk, sk, st, en FROM a_link WHERE sk NOT IN (SELECT psk FROM a_kids)
    ) WHERE b > a""",
    # 4. traces whose self intervals can overlap: parallel siblings, a child outside its parent,
    #    or several roots. Only these need the sweep; elsewhere self time is simply b - a.
    """CREATE OR REPLACE TEMP TABLE a_par AS
    SELECT tk FROM a_kids WHERE cs < prev_end
    UNION SELECT tk FROM a_link WHERE psk IS NOT NULL AND (st < pst OR en > pen)
    UNION SELECT tk FROM a_link WHERE psk IS NULL GROUP BY tk HAVING count(*) > 1""",
    # 5. the sweep: k = self intervals running at once, F(t) = integral of 1/k up to t; an interval
    #    [a, b] is charged F(b) - F(a), so parallel work shares the wall clock evenly. Both windows
    #    use the same total order, so rows at the same instant agree.
    """CREATE OR REPLACE TEMP TABLE a_self AS
    WITH ev AS (
        SELECT tk, sk, a AS t, 1 AS d FROM a_si SEMI JOIN a_par USING (tk)
        UNION ALL SELECT tk, sk, b, -1 FROM a_si SEMI JOIN a_par USING (tk)
    ), k AS (
        SELECT *, sum(d) OVER w AS k, lead(t) OVER w - t AS len FROM ev
        WINDOW w AS (PARTITION BY tk ORDER BY t, d, sk ROWS UNBOUNDED PRECEDING)
    ), f AS (
        SELECT sk, d, coalesce(sum(CASE WHEN k > 0 THEN len / k END) OVER (
            PARTITION BY tk ORDER BY t, d, sk ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS f
        FROM k
    )
    SELECT sk, sum(-d * f) AS self_ns FROM f GROUP BY sk
    UNION ALL
    SELECT sk, sum(b - a) FROM a_si ANTI JOIN a_par USING (tk) GROUP BY sk""",
)

#: 6. one row per span with what the breakdowns need. A span whose children also record tokens
#: is a roll-up: its tokens (and cost) are left to the children.
_SPAN_ROWS_SQL = """
CREATE OR REPLACE TEMP TABLE a_sp AS
WITH kid_tokens AS (
    SELECT psk, bool_or(has_tok) AS kid_tok FROM a_link WHERE psk IS NOT NULL GROUP BY psk
), prices AS (
    SELECT unnest($a_pkeys) AS key, unnest($a_pin) AS usd_in, unnest($a_pout) AS usd_out
), model_price AS (     -- longest matching key wins; 'provider/path/' prefixes are ignored
    SELECT m.model, arg_max(p.usd_in, length(p.key)) AS usd_in, arg_max(p.usd_out, length(p.key)) AS usd_out
    FROM (SELECT DISTINCT model, regexp_replace(lower(model), '^.*/', '') AS bare FROM a_raw
          WHERE model IS NOT NULL) m
    JOIN prices p ON m.bare = p.key OR starts_with(m.bare, p.key || '-')
    GROUP BY m.model
), counted AS (
    SELECT r.tk, r.span_type, r.name, r.tool_name, r.model, r.status, a_sel.grp,
           coalesce(a_sel.dur >= $a_p95 - 1e-6, FALSE) AS tail,
           (r.en - r.st) / 1e6 AS dur_ms, coalesce(a_self.self_ns, 0) / 1e6 AS self_ms,
           CASE WHEN coalesce(kt.kid_tok, FALSE) THEN NULL ELSE r.itok END AS in_tok,
           CASE WHEN coalesce(kt.kid_tok, FALSE) THEN NULL ELSE r.otok END AS out_tok,
           mp.usd_in, mp.usd_out
    FROM a_raw r JOIN a_sel ON a_sel.tk = r.tk
    LEFT JOIN a_self ON a_self.sk = r.sk
    LEFT JOIN kid_tokens kt ON kt.psk = r.sk
    LEFT JOIN model_price mp ON mp.model = r.model
)
SELECT * EXCLUDE (usd_in, usd_out), usd_in IS NOT NULL AS priced,
       CASE WHEN usd_in IS NOT NULL AND (in_tok IS NOT NULL OR out_tok IS NOT NULL)
            THEN (coalesce(in_tok, 0) * usd_in + coalesce(out_tok, 0) * usd_out) / 1e6 END AS cost
FROM counted
"""

_OVERVIEW_SQL = """
WITH q AS (SELECT quantile_cont(dur, 0.95) AS p95 FROM a_sel)
SELECT count(*) AS traces, count(*) FILTER (status = 'ERROR') AS errors, min(ts) AS first_ms, max(ts) AS last_ms,
       quantile_cont(dur, 0.5) AS p50_ms, any_value(q.p95) AS p95_ms, quantile_cont(dur, 0.99) AS p99_ms,
       coalesce(sum(dur), 0) AS wall_ms, count(*) FILTER (dur >= q.p95 - 1e-6) AS tail_traces,
       coalesce(sum(dur) FILTER (dur >= q.p95 - 1e-6), 0) AS tail_wall_ms,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       quantile_cont(input_tokens, 0.95) AS p95_input_tokens, quantile_cont(output_tokens, 0.95) AS p95_output_tokens
FROM a_sel, q
"""

_STATS = """count(*) AS calls, count(DISTINCT tk) AS traces, count(*) FILTER (status = 'ERROR') AS errors,
       sum(dur_ms) AS total_ms, avg(dur_ms) AS avg_ms, quantile_cont(dur_ms, 0.95) AS p95_ms,
       sum(self_ms) AS self_ms, coalesce(sum(self_ms) FILTER (tail), 0) AS tail_self_ms,
       sum(in_tok) AS input_tokens, sum(out_tok) AS output_tokens,
       quantile_cont(in_tok, 0.95) AS p95_input_tokens, quantile_cont(out_tok, 0.95) AS p95_output_tokens,
       sum(cost) AS cost_usd"""


def _breakdown_sql() -> str:
    """Top rows per dimension. UNION ALL of plain GROUP BYs: ~5x faster in DuckDB than GROUPING SETS
    with count(DISTINCT) and quantiles."""
    parts = " UNION ALL ".join(
        f"SELECT '{dim}' AS dim, {col} AS key, {_STATS} FROM a_sp WHERE {col} IS NOT NULL GROUP BY {col}"
        for dim, col in DIMENSION_SQL.items())
    return f"""
WITH b AS ({parts})
SELECT *, count(*) OVER (PARTITION BY dim) AS n FROM b
QUALIFY row_number() OVER (PARTITION BY dim ORDER BY self_ms DESC, calls DESC, key) <= $a_top
ORDER BY dim, self_ms DESC, calls DESC, key"""


_GROUPS_SQL = """
WITH g AS (
    SELECT grp, count(*) AS traces, count(*) FILTER (status = 'ERROR') AS errors, quantile_cont(dur, 0.5) AS p50_ms,
           quantile_cont(dur, 0.95) AS p95_ms, quantile_cont(dur, 0.99) AS p99_ms, coalesce(sum(dur), 0) AS wall_ms,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
    FROM a_sel GROUP BY grp
), by_type AS (
    SELECT grp, span_type, sum(self_ms) AS self_ms, sum(cost) AS cost FROM a_sp GROUP BY grp, span_type
), top AS (
    SELECT grp, arg_max(span_type, self_ms) AS top_span_type, max(self_ms) AS top_span_type_self_ms,
           sum(cost) AS cost_usd
    FROM by_type GROUP BY grp
)
SELECT g.grp AS "group", g.* EXCLUDE (grp), top.top_span_type, top.top_span_type_self_ms, top.cost_usd,
       count(*) OVER () AS n
FROM g LEFT JOIN top ON top.grp IS NOT DISTINCT FROM g.grp
ORDER BY {order} LIMIT $a_top
"""


def _records(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return fetch_dicts(con.execute(sql, params))


class DuckDBAnalytics(StoreFeature):
    """Profiles and error patterns computed inside DuckDB over a ``DuckDBTraceStore``'s file."""

    # -- profile_traces ----------------------------------------------------------------------
    def profile_data(self, request: ProfileRequest) -> ProfileData:
        if request.trace_id is not None:
            where, params = "t.trace_id = $a_trace_id", {"a_trace_id": request.trace_id}
        else:
            where, params = self.store.where(request.expr, request.now_ms)
        group = request.group_by
        group_sql = GROUP_SQL[group.kind] if group else "NULL::VARCHAR"
        if group and group.kind == "tag":
            params = {**params, "a_tag": json_pointer(group.tag_key)}
        with self.store.reading() as con:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE a_sel AS
                SELECT t.trace_id, hash(t.trace_id) AS tk, t.timestamp_ms AS ts, t.status,
                       t.execution_time_ms::DOUBLE AS dur,
                       t.input_tokens, t.output_tokens, {group_sql} AS grp
                FROM traces t WHERE {where}""", params)
            overview = TraceOverview(**_records(con, _OVERVIEW_SQL, {})[0])
            prices = request.prices
            semi = "" if where == "TRUE" else "SEMI JOIN a_sel ON a_sel.trace_id = s.trace_id"
            for step in _PROFILE_STEPS:
                con.execute(step.format(semi=semi))
            con.execute(_SPAN_ROWS_SQL, {
                "a_p95": overview.p95_ms, "a_pkeys": [p.model for p in prices],
                "a_pin": [p.input_usd_per_mtok for p in prices], "a_pout": [p.output_usd_per_mtok for p in prices]})
            spans, cost = con.execute("SELECT count(*), sum(cost) FROM a_sp").fetchone()
            unpriced = [r[0] for r in con.execute(
                "SELECT DISTINCT model FROM a_sp WHERE model IS NOT NULL AND NOT priced "
                "AND (in_tok IS NOT NULL OR out_tok IS NOT NULL) ORDER BY model LIMIT 20").fetchall()]
            breakdowns: dict[str, list[SpanStatsRow]] = {d: [] for d in BREAKDOWNS}
            sizes: dict[str, int] = {}
            for row in _records(con, _breakdown_sql(), {"a_top": request.top}):
                sizes[row["dim"]] = row.pop("n")
                breakdowns[row.pop("dim")].append(SpanStatsRow(**row))
            groups, group_count = [], 0
            if group:
                by_time = group.kind in ("day", "hour")
                order = '"group" DESC' if by_time else 'traces DESC, "group" NULLS LAST'
                rows = _records(con, _GROUPS_SQL.format(order=order), {"a_top": request.top})
                group_count = rows[0].pop("n") if rows else 0
                groups = [GroupRow(**{k: v for k, v in r.items() if k != "n"}) for r in rows]
                if by_time:
                    groups.reverse()
        return ProfileData(overview=overview.model_copy(update={"spans": spans}), breakdowns=breakdowns,
                           breakdown_sizes=sizes, cost_usd=cost, unpriced_models=unpriced, groups=groups,
                           group_count=group_count)

    # -- error_patterns ----------------------------------------------------------------------
    def newest_timestamp(self, expr: Any, now_ms: int) -> int | None:
        where, params = self.store.where(expr, now_ms)
        with self.store.reading() as con:
            return con.execute(f"SELECT max(t.timestamp_ms) FROM traces t WHERE {where}", params).fetchone()[0]

    def error_data(self, request: ErrorRequest) -> ErrorData:
        where, params = self.store.where(request.expr, request.now_ms)
        params = {**params, "e_prev": request.previous_start_ms, "e_cur": request.current_start_ms,
                  "e_end": request.end_ms}
        rule_params, error_type, message = _error_rules(request)
        with self.store.reading() as con:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE e_win AS
                SELECT t.trace_id, t.timestamp_ms AS ts, t.status, t.execution_time_ms::DOUBLE AS dur, t.name,
                       t.timestamp_ms > $e_cur AS cur
                FROM traces t
                WHERE ({where}) AND t.timestamp_ms > $e_prev AND t.timestamp_ms <= $e_end""", params)
            counts = {row.pop("cur"): WindowCounts(**row) for row in _records(con, """
                SELECT cur, count(*) AS traces, count(*) FILTER (status = 'ERROR') AS errors,
                       quantile_cont(dur, 0.5) AS p50_ms, quantile_cont(dur, 0.95) AS p95_ms
                FROM e_win GROUP BY cur""", {})}
            rows = _records(con, _PATTERNS_SQL.format(error_type=error_type, message=message),
                            {**rule_params, "e_top": request.top, "e_examples": request.examples,
                             "e_chars": request.message_chars})
        pattern_count = rows[0]["n"] if rows else 0
        patterns = [PatternRow(**{k: v for k, v in r.items() if k != "n"}) for r in rows]
        return ErrorData(current=counts.get(True, WindowCounts()), previous=counts.get(False, WindowCounts()),
                         patterns=patterns, pattern_count=pattern_count)


def _error_rules(request: ErrorRequest) -> tuple[dict[str, Any], str, str]:
    """Parameters and SQL expressions for the error type and the folded message (rules are data)."""
    params: dict[str, Any] = {}
    typed = ["nullif(json_extract_string(attributes, '$.\"error.type\"'), '')",
             "nullif(list_filter(json_extract_string(events, '$[*].attributes.\"exception.type\"'), "
             "lambda x: x IS NOT NULL)[1], '')"]
    for i, (pattern, prefix) in enumerate(request.error_type_rules):
        params[f"e_tr{i}"], params[f"e_tp{i}"] = pattern, prefix
        typed.append(f"nullif($e_tp{i} || regexp_extract(coalesce(msg, ''), $e_tr{i}, 1), $e_tp{i})")
    error_type = f"coalesce({', '.join(typed)}, 'unknown')"
    message = "msg"
    for i, (pattern, replacement) in enumerate(request.message_folds):
        params[f"e_fp{i}"], params[f"e_fr{i}"] = pattern, replacement
        message = f"regexp_replace({message}, $e_fp{i}, $e_fr{i}, 'g')"
    return params, error_type, f"left(trim({message}), $e_chars)"


_PATTERNS_SQL = """
WITH es AS MATERIALIZED (
    SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.span_type, s.tool_name, s.status_message AS msg,
           s.attributes, s.events
    FROM spans s SEMI JOIN e_win w ON w.trace_id = s.trace_id
    WHERE s.status = 'ERROR'
), occ AS (             -- where each failure started: failed spans without a failed child ...
    SELECT trace_id, coalesce(tool_name, nullif(name, ''), span_type) AS location, span_type, msg,
           {error_type} AS error_type
    FROM es WHERE NOT EXISTS (SELECT 1 FROM es c WHERE c.trace_id = es.trace_id AND c.parent_span_id = es.span_id)
    UNION ALL           -- ... and ERROR traces without any failed span
    SELECT w.trace_id, coalesce(nullif(w.name, ''), '(trace)'), NULL, NULL, 'unknown' FROM e_win w
    WHERE w.status = 'ERROR' AND NOT EXISTS (SELECT 1 FROM es WHERE es.trace_id = w.trace_id)
), per_trace AS (
    SELECT error_type, location, {message} AS message, trace_id, count(*) AS n, any_value(span_type) AS span_type,
           any_value(left(msg, $e_chars)) AS msg
    FROM occ GROUP BY ALL
), grouped AS (
    SELECT p.error_type, p.location, p.message, mode(p.span_type) AS span_type,
           coalesce(sum(p.n) FILTER (w.cur), 0) AS occurrences, count(*) FILTER (w.cur) AS traces,
           count(*) FILTER (w.cur AND w.status = 'ERROR') AS failed_traces,
           min(w.ts) FILTER (w.cur) AS first_ms, max(w.ts) FILTER (w.cur) AS last_ms,
           count(*) FILTER (NOT w.cur) AS previous_traces,
           max_by(p.trace_id, w.ts, $e_examples) FILTER (w.cur) AS example_trace_ids,
           max_by(p.msg, w.ts) FILTER (w.cur) AS example_message,
           max_by(p.trace_id, w.ts) FILTER (w.cur) AS newest
    FROM per_trace p JOIN e_win w ON w.trace_id = p.trace_id
    GROUP BY p.error_type, p.location, p.message
), top AS (
    SELECT *, count(*) OVER () AS n FROM grouped WHERE traces > 0
    ORDER BY traces DESC, occurrences DESC, last_ms DESC, error_type, location, message LIMIT $e_top
)
SELECT top.* EXCLUDE (newest), left(t.request, 2000) AS sample_request
FROM top LEFT JOIN traces t ON t.trace_id = top.newest
ORDER BY traces DESC, occurrences DESC, last_ms DESC, error_type, location, message
"""
