"""The SQL of ``profile_traces`` in ClickHouse: the DuckDB pipeline (``duckdb/analytics_sql.py``) step for step.

Same definitions, so both engines give the same numbers on the same traces (the contract suite's
parity test): self time from children's islands per parent, then the sweep that splits parallel
instants evenly; percentiles are ``quantileExactInclusive`` (R7, linear interpolation: DuckDB's
``quantile_cont`` and numpy's default); tokens skip roll-ups; prices are the longest matching key.

What differs is the engine's, not the meaning:

* ClickHouse over HTTP keeps no temp tables between statements, so each result is one statement
  whose steps are CTEs, ``AS MATERIALIZED`` where the server has it (computed once per statement;
  an older server inlines them, which is slower but the same answer: ``materialized(...)``).
* Empty frames and missing join rows give a type's default in ClickHouse, NULL in DuckDB: every
  statement runs with ``join_use_nulls = 1``, and windowed max/lead take ``toNullable`` arguments.
* Span ids are ``cityHash64(trace_id, span_id)`` (the spans table's key is (trace_id, span_id), so
  FINAL leaves one row per pair; a collision is ~1e-9 at 6M spans, as DuckDB's ``hash`` is).
"""

from __future__ import annotations

from tools.analysis.profile_models import BREAKDOWNS

#: Settings every analytics statement runs with: NULL for a missing join row (as in DuckDB), and a
#: column name wins over a same-named alias (``sum(x) AS x`` beside ``quantile(x)``, as in DuckDB).
SETTINGS = "SETTINGS join_use_nulls = 1, prefer_column_name_to_alias = 1"

#: group_by kind -> SQL over ``traces AS t`` (a tag's value comes from the ``a_tag`` join, below).
GROUP_SQL: dict[str, str] = {
    "environment": "t.environment",
    "model": "t.model",
    "prompt_version": "t.prompt_version",
    "day": "formatDateTime(fromUnixTimestamp64Milli(t.timestamp_ms, 'UTC'), '%Y-%m-%d')",
    "hour": "formatDateTime(fromUnixTimestamp64Milli(t.timestamp_ms, 'UTC'), '%Y-%m-%dT%H:00Z')",
    "tag": "a_tag.value",
}
#: Tags are rows here, not a JSON column: a group_by tag joins that key's values.
TAG_JOIN = ("LEFT JOIN (SELECT trace_id, value FROM tags WHERE key = {a_tag:String}) AS a_tag "
            "ON a_tag.trace_id = t.trace_id")
#: Breakdown dimension -> column of ``a_sp`` it groups by.
DIMENSION_SQL: dict[str, str] = {"span_type": "span_type", "span_name": "name", "tool": "tool_name", "model": "model"}
assert set(DIMENSION_SQL) == set(BREAKDOWNS)


def materialized(sql: str, supported: bool) -> str:
    """``sql`` with its ``AS MATERIALIZED (`` CTEs plain when the server does not have them."""
    return sql if supported else sql.replace(" AS MATERIALIZED (", " AS (")


def selection_cte(where: str, group_sql: str, tag_join: str) -> str:
    """``a_sel``: the selected traces, one row each."""
    return f"""a_sel AS MATERIALIZED (
    SELECT t.trace_id AS trace_id, cityHash64(t.trace_id) AS tk, t.timestamp_ms AS ts, t.status AS status,
           toFloat64(t.execution_time_ms) AS dur, t.input_tokens AS input_tokens, t.output_tokens AS output_tokens,
           {group_sql} AS grp
    FROM traces AS t {tag_join} WHERE {where})"""


#: The overview of ``a_sel`` (as DuckDB's ``_OVERVIEW_SQL``).
OVERVIEW_SQL = """
WITH {sel}, q AS (SELECT quantileExactInclusive(0.95)(dur) AS p95 FROM a_sel)
SELECT count() AS traces, countIf(status = 'ERROR') AS errors, min(toNullable(ts)) AS first_ms,
       max(toNullable(ts)) AS last_ms, quantileExactInclusive(0.5)(dur) AS p50_ms, any(q.p95) AS p95_ms,
       quantileExactInclusive(0.99)(dur) AS p99_ms, coalesce(sum(dur), 0) AS wall_ms,
       countIf(dur >= q.p95 - 1e-6) AS tail_traces, coalesce(sumIf(dur, dur >= q.p95 - 1e-6), 0) AS tail_wall_ms,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       quantileExactInclusive(0.95)(input_tokens) AS p95_input_tokens,
       quantileExactInclusive(0.95)(output_tokens) AS p95_output_tokens
FROM a_sel CROSS JOIN q
"""

#: Steps 1-6 of DuckDB's pipeline ending in ``a_sp``: one row per selected span with its group,
#: tail flag, inclusive and self time, tokens (roll-ups left out) and cost. ``{semi}`` restricts
#: spans to the selection (left out when everything is selected).
#:
#: DuckDB links spans with a self-join and walks islands with window functions over temp tables;
#: here each trace's spans are gathered into arrays once (``GROUP BY tk``) and the same steps run
#: as array functions inside the trace, then ``ARRAY JOIN`` unfolds one row per span again. One
#: scan of ``spans``, no self-join, and no CTE read twice (ClickHouse inlines a CTE at each use).
#: Arrays are 1-based; ``pix`` = the parent's position (0: a root, or its parent is missing).
#: Work inside a trace is quadratic in its spans (sibling look-ups), fine to thousands of spans.
SPAN_ROWS_CTES = """
a_raw AS (
    SELECT cityHash64(s.trace_id) AS tk, cityHash64(s.trace_id, s.span_id) AS sk,
           if(s.parent_span_id IS NULL OR s.parent_span_id = s.span_id, toUInt64(0),
              cityHash64(s.trace_id, s.parent_span_id)) AS ph,
           s.start_time_ns AS st, greatest(s.end_time_ns, s.start_time_ns) AS en,
           (s.span_type, nullIf(s.name, ''), s.tool_name, s.model, s.status, s.input_tokens, s.output_tokens) AS attrs
    FROM spans AS s {semi}),
a_tree AS (      -- 1. the tree as positions (each step below is its own SELECT: ClickHouse copies an
                 --    alias's expression where it is used, so one SELECT of them all grows too big)
    SELECT tk, groupArray(sk) AS sks, groupArray(st) AS sts, groupArray(en) AS ens, groupArray(attrs) AS attrss,
           arrayMap(p -> if(p = 0, 0, indexOf(sks, p)), groupArray(ph)) AS pix
    FROM a_raw GROUP BY tk),
a_clip AS (      -- 2. linked children clipped to their parent; those that overlap it, per parent in start order
    SELECT *, arraySort(i -> (pix[i], cs[i], ce[i]), arrayFilter(i -> pix[i] > 0 AND ce[i] > cs[i], idx)) AS kids
    FROM (SELECT *, arrayEnumerate(sks) AS idx,
                 arrayMap(i -> if(pix[i] = 0, toInt64(0), greatest(sts[i], sts[pix[i]])), idx) AS cs,
                 arrayMap(i -> if(pix[i] = 0, toInt64(0), least(ens[i], ens[pix[i]])), idx) AS ce
          FROM a_tree)),
a_kids AS (      -- each kid's parent, clipped interval and first sibling's place
    SELECT *, arrayMap(q -> indexOf(kp, kp[q]), kq) AS kfirst
    FROM (SELECT *, arrayEnumerate(kids) AS kq, arrayMap(q -> pix[kids[q]], kq) AS kp,
                 arrayMap(q -> cs[kids[q]], kq) AS kcs, arrayMap(q -> ce[kids[q]], kq) AS kce
          FROM a_clip)),
a_prev AS (      -- the end of the union of the earlier siblings (DuckDB's prev_end; unused for a first kid)
    SELECT *, arrayMap(q -> if(q = kfirst[q], toInt64(0), arrayMax(arraySlice(kce, kfirst[q], q - kfirst[q]))), kq)
              AS prev
    FROM a_kids),
a_si AS (        -- 3. self intervals (span position, a, b): gaps before islands, after the last, childless spans;
                 -- 4. par: can they overlap (parallel siblings, a child outside its parent, several roots)
    SELECT *,
           arrayFilter(x -> x.3 > x.2, arrayConcat(
               arrayMap(q -> (kp[q], if(q = kfirst[q], sts[kp[q]], prev[q]), kcs[q]),
                        arrayFilter(q -> q = kfirst[q] OR kcs[q] > prev[q], kq)),
               arrayMap(q -> (kp[q], if(q = kfirst[q], kce[q], greatest(prev[q], kce[q])), ens[kp[q]]),
                        arrayFilter(q -> q = length(kids) OR kp[q + 1] != kp[q], kq)),
               arrayMap(i -> (i, sts[i], ens[i]), arrayFilter(i -> NOT has(kp, i), idx)))) AS ivs,
           arrayExists(q -> q != kfirst[q] AND kcs[q] < prev[q], kq)
               OR arrayExists(i -> pix[i] > 0 AND (sts[i] < sts[pix[i]] OR ens[i] > ens[pix[i]]), idx)
               OR countEqual(pix, 0) > 1 AS par
    FROM a_prev),
a_ev AS (        -- 5. the sweep's events (t, d, span) in time order, and k = intervals running after each
    SELECT *, arrayCumSum(arrayMap(e -> toInt64(e.2), ev)) AS evk
    FROM (SELECT *, arraySort(e -> (e.1, e.2, e.3), arrayConcat(arrayMap(x -> (x.2, toInt8(1), x.1), ivs),
                                                                arrayMap(x -> (x.3, toInt8(-1), x.1), ivs))) AS ev
          FROM a_si)),
a_sweep AS (     -- F before each event = integral of 1/k up to it; an interval is charged F(b) - F(a)
    SELECT *, arrayPopBack(arrayCumSum(arrayPushFront(
                  arrayMap((j, k) -> if(k > 0 AND j < length(ev), (ev[j + 1].1 - ev[j].1) / k, 0.),
                           arrayEnumerate(ev), evk), 0.))) AS evf
    FROM a_ev),
a_self AS (      -- per span: self time (the sweep only where intervals overlap), and whether it is a roll-up
    SELECT tk, sts, ens, attrss,
           arrayMap(i -> if(par, arraySum(arrayMap((e, f) -> if(e.3 = i, -e.2 * f, 0.), ev, evf)),
                            toFloat64(arraySum(arrayMap(x -> if(x.1 = i, x.3 - x.2, 0), ivs)))), idx) AS selfs,
           arrayMap(i -> has(arrayMap((p, a) -> if(a.6 IS NOT NULL OR a.7 IS NOT NULL, p, 0), pix, attrss), i), idx)
               AS kid_toks
    FROM a_sweep),
a_spans AS (
    SELECT tk, st1 AS st, en1 AS en, attrs1 AS attrs, self1 AS self_ns, kid1 AS kid_tok
    FROM a_self ARRAY JOIN sts AS st1, ens AS en1, attrss AS attrs1, selfs AS self1, kid_toks AS kid1),
a_counted AS (   -- 6. with the trace's group and tail flag; prices: keys longest first, the first match wins
    SELECT r.tk AS tk, r.attrs.1 AS span_type, r.attrs.2 AS name, r.attrs.3 AS tool_name, r.attrs.4 AS model,
           r.attrs.5 AS status, a_sel.grp AS grp, coalesce(a_sel.dur >= {a_p95:Nullable(Float64)} - 1e-6, 0) AS tail,
           (r.en - r.st) / 1e6 AS dur_ms, r.self_ns / 1e6 AS self_ms,
           if(r.kid_tok, NULL, r.attrs.6) AS in_tok, if(r.kid_tok, NULL, r.attrs.7) AS out_tok,
           if(r.attrs.4 IS NULL, 0, arrayFirstIndex(k -> bare = k OR startsWith(bare, concat(k, '-')),
                                                    {a_pkeys:Array(String)})) AS price_at,
           replaceRegexpOne(lower(ifNull(r.attrs.4, '')), '^.*/', '') AS bare
    FROM a_spans AS r JOIN a_sel ON a_sel.tk = r.tk),
a_sp AS (
    SELECT tk, span_type, name, tool_name, model, status, grp, tail, dur_ms, self_ms, in_tok, out_tok,
           price_at > 0 AS priced,
           if(price_at > 0 AND (in_tok IS NOT NULL OR out_tok IS NOT NULL),
              (coalesce(in_tok, 0) * {a_pin:Array(Float64)}[price_at]
               + coalesce(out_tok, 0) * {a_pout:Array(Float64)}[price_at]) / 1e6, NULL) AS cost
    FROM a_counted)"""

_STATS = """count() AS calls, uniqExact(tk) AS traces, countIf(status = 'ERROR') AS errors,
       sum(dur_ms) AS total_ms, avg(dur_ms) AS avg_ms, quantileExactInclusive(0.95)(dur_ms) AS p95_ms,
       sum(self_ms) AS self_ms, coalesce(sumIf(self_ms, tail), 0) AS tail_self_ms,
       sum(in_tok) AS input_tokens, sum(out_tok) AS output_tokens,
       quantileExactInclusive(0.95)(in_tok) AS p95_input_tokens,
       quantileExactInclusive(0.95)(out_tok) AS p95_output_tokens, sum(cost) AS cost_usd"""

#: Pseudo-dimensions of the breakdown statement: the totals row and the unpriced models (up to 20,
#: by name), so one evaluation of the pipeline answers all of them.
TOTAL, UNPRICED = "~total", "~unpriced"


def breakdown_sql() -> str:
    """Top rows per dimension (as DuckDB's ``_breakdown_sql``), plus the totals and unpriced models, from
    one scan of ``a_sp``: each span row fans out (``ARRAY JOIN``) into one row per dimension it has a key in."""
    dims = ", ".join(f"('{dim}', {col})" for dim, col in DIMENSION_SQL.items())
    unpriced = "if(NOT priced AND (in_tok IS NOT NULL OR out_tok IS NOT NULL), model, NULL)"
    return f"""
SELECT *, count() OVER (PARTITION BY dim) AS n FROM (
    SELECT dk.1 AS dim, dk.2 AS key, {_STATS}
    FROM a_sp ARRAY JOIN [{dims}, ('{TOTAL}', NULL), ('{UNPRICED}', {unpriced})] AS dk
    WHERE dk.2 IS NOT NULL OR dk.1 = '{TOTAL}'
    GROUP BY dk.1, dk.2) AS b
QUALIFY row_number() OVER (PARTITION BY dim ORDER BY if(dim = '{UNPRICED}', 0, self_ms) DESC, calls DESC, key)
        <= if(dim = '{UNPRICED}', 20, {{a_top:UInt32}})
ORDER BY dim, self_ms DESC, calls DESC, key"""


GROUPS_SQL = """
g AS (
    SELECT grp, count() AS traces, countIf(status = 'ERROR') AS errors, quantileExactInclusive(0.5)(dur) AS p50_ms,
           quantileExactInclusive(0.95)(dur) AS p95_ms, quantileExactInclusive(0.99)(dur) AS p99_ms,
           coalesce(sum(dur), 0) AS wall_ms, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
    FROM a_sel GROUP BY grp
), by_type AS (
    SELECT grp, span_type, sum(self_ms) AS self_ms, sum(cost) AS cost FROM a_sp GROUP BY grp, span_type
), g_top AS (
    SELECT grp, argMax(span_type, self_ms) AS top_span_type, max(self_ms) AS top_span_type_self_ms,
           sum(cost) AS cost_usd
    FROM by_type GROUP BY grp
)
SELECT g.grp AS group, g.traces AS traces, g.errors AS errors, g.p50_ms AS p50_ms, g.p95_ms AS p95_ms,
       g.p99_ms AS p99_ms, g.wall_ms AS wall_ms, g.input_tokens AS input_tokens, g.output_tokens AS output_tokens,
       g_top.top_span_type AS top_span_type, g_top.top_span_type_self_ms AS top_span_type_self_ms,
       g_top.cost_usd AS cost_usd, count() OVER () AS n
FROM g LEFT JOIN g_top ON isNotDistinctFrom(g_top.grp, g.grp)
ORDER BY {order} LIMIT {{a_top:UInt32}}
"""
