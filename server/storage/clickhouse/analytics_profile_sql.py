"""The SQL of ``profile_traces`` in ClickHouse: the DuckDB pipeline (``duckdb/analytics_sql.py``) step for step.

Same definitions, so both engines give the same numbers on the same traces (the contract suite's
parity test): self time from children's islands per parent, then the sweep that splits parallel
instants evenly; percentiles are ``quantileExactInclusive`` (R7, linear interpolation: DuckDB's
``quantile_cont`` and numpy's default); tokens skip roll-ups; prices are the longest matching key.

What differs is the engine's, not the meaning:

* ClickHouse over HTTP keeps no temp tables between statements, so each result is one statement
  whose steps are CTEs. ClickHouse copies a CTE into every place that reads it, so the steps are a
  chain in which each is read once (self time: per-trace arrays, see ``SPAN_ROWS_CTES``), and one
  scan of ``a_sp`` answers every breakdown (``breakdown_sql``). The small selections (``a_sel``,
  ``e_win``) are ``AS MATERIALIZED`` where the server has it (25.x+; ``materialized(...)`` drops it
  on an older one: the same answer, computed twice). Materialising the span steps as well was tried
  and is slower (and 26.9 fails on it with window functions).
* Missing join rows give a type's default in ClickHouse, NULL in DuckDB: every statement runs with
  ``join_use_nulls = 1``; ``prefer_column_name_to_alias = 1`` keeps ``sum(x) AS x`` from capturing
  the ``x`` of a neighbouring aggregate, as DuckDB reads it.
* Span ids are ``cityHash64(trace_id, span_id)`` (the spans table's key is (trace_id, span_id), so
  FINAL leaves one row per pair), as DuckDB's pipeline uses ``hash``.
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
#: Linking (the parent's interval) and the islands of children (``prev`` = the end of the union of
#: the earlier siblings, DuckDB's prev_end) are row-level, a join and window functions as in DuckDB.
#: Then each trace's spans are gathered into one array ``g`` sorted by span hash, and the rest runs
#: as array functions inside the trace: self intervals, the parallel test, the sweep. Lambdas only
#: zip arrays element by element (a lambda that indexes another array copies it per element, which
#: is quadratic in the spans of a trace); "does some child have X" and "sum per span" are answered by
#: sorting keys together (``_members``, ``_per_span``). ``g``'s tuple: 1 sk, 2 parent sk (0: none
#: found), 3 st, 4 en, 5 parent st, 6 parent en, 7 kid (overlaps its parent), 8 clipped start,
#: 9 clipped end, 10 prev, 11 end of all siblings, 12 last sibling, 13 attributes, 14 has tokens.


def _members(keys: str, probe: str) -> str:
    """For ascending unique ``keys``: an aligned array, 1 where the key is in ``probe`` (sorted together:
    a probe entry sorts just before its key's entry)."""
    merged = (f"arraySort(arrayConcat(arrayMap(k -> (k, toUInt8(0)), {probe}), "
              f"arrayMap(k -> (k, toUInt8(1)), {keys})))")
    shifted = f"arrayPushFront(arrayPopBack({merged}), (toUInt64(0), toUInt8(1)))"
    return (f"arrayFilter((f, x) -> x.2 = 1, arrayMap((x, y) -> y.1 = x.1 AND y.2 = 0, {merged}, {shifted}), "
            f"{merged})")


def _per_span(keys: str, values: str, spans: str) -> str:
    """Sums of ``values`` per key, aligned with ascending ``spans`` (0 where a span has none): each span's
    entry sorts after its values, so the running sum there less the one at the span before is its total."""
    merged = (f"arraySort(x -> (x.1, x.2), arrayConcat(arrayMap((k, v) -> (k, toUInt8(0), v), {keys}, {values}), "
              f"arrayMap(k -> (k, toUInt8(1), 0.), {spans})))")
    at = f"arrayFilter((c, x) -> x.2 = 1, arrayCumSum(arrayMap(x -> x.3, {merged})), {merged})"
    return f"arrayMap((a, b) -> a - b, {at}, arrayPushFront(arrayPopBack({at}), 0.))"


SPAN_ROWS_CTES = """
a_raw AS (
    SELECT cityHash64(s.trace_id) AS tk, cityHash64(s.trace_id, s.span_id) AS sk,
           if(s.parent_span_id IS NULL OR s.parent_span_id = s.span_id, toUInt64(0),
              cityHash64(s.trace_id, s.parent_span_id)) AS ph,
           s.start_time_ns AS st, greatest(s.end_time_ns, s.start_time_ns) AS en,
           s.input_tokens IS NOT NULL OR s.output_tokens IS NOT NULL AS has_tok,
           (s.span_type, nullIf(s.name, ''), s.tool_name, s.model, s.status, s.input_tokens, s.output_tokens) AS attrs
    FROM spans AS s {semi}),
a_link AS (      -- 1. each span with its parent's interval (0s when it has none)
    SELECT c.tk AS tk, c.sk AS sk, c.st AS st, c.en AS en, c.attrs AS attrs, c.has_tok AS has_tok,
           ifNull(p.sk, toUInt64(0)) AS psk, ifNull(p.st, toInt64(0)) AS pst, ifNull(p.en, toInt64(0)) AS pen,
           p.sk IS NOT NULL AND least(c.en, pen) > greatest(c.st, pst) AS kid,
           if(kid, greatest(c.st, pst), toInt64(0)) AS cs, if(kid, least(c.en, pen), toInt64(0)) AS ce
    FROM a_raw AS c LEFT JOIN (SELECT tk, sk, st, en FROM a_raw) AS p ON p.tk = c.tk AND p.sk = c.ph),
a_kid AS (       -- 2. children clipped to their parent, in start order, with the end of the earlier ones
    SELECT *,
           max(toNullable(ce)) OVER (PARTITION BY tk, psk, kid ORDER BY cs, ce
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev,
           max(ce) OVER (PARTITION BY tk, psk, kid) AS gmax,
           row_number() OVER (PARTITION BY tk, psk, kid ORDER BY cs DESC, ce DESC, sk DESC) = 1 AS glast
    FROM a_link),
a_tree AS (
    SELECT tk, arraySort(x -> x.1, groupArray((sk, psk, st, en, pst, pen, kid, cs, ce, prev, gmax, glast, attrs,
                                               has_tok))) AS g
    FROM a_kid GROUP BY tk),
a_si AS (        -- 3. self intervals (sk, a, b): gaps before islands, after the last, whole childless spans;
                 -- 4. par: can they overlap (parallel siblings, a child outside its parent, several roots)
    SELECT tk, g, sks, kid_toks,
           arrayFilter(x -> x.3 > x.2, arrayConcat(
               arrayMap(t -> (t.2, ifNull(t.10, t.5), t.8), arrayFilter(t -> t.7 AND (t.10 IS NULL OR t.8 > t.10), g)),
               arrayMap(t -> (t.2, t.11, t.6), arrayFilter(t -> t.7 AND t.12, g)),
               arrayMap(t -> (t.1, t.3, t.4), arrayFilter((t, p) -> NOT p, g, parents)))) AS ivs,
           arrayExists(t -> t.7 AND t.10 IS NOT NULL AND t.8 < assumeNotNull(t.10), g)
               OR arrayExists(t -> t.2 != 0 AND (t.3 < t.5 OR t.4 > t.6), g)
               OR countEqual(arrayMap(t -> t.2, g), toUInt64(0)) > 1 AS par
    FROM (SELECT tk, g, arrayMap(t -> t.1, g) AS sks,
                 MEMBERS_KIDS AS parents,
                 MEMBERS_TOKENS AS kid_toks      -- roll-ups: a direct child records tokens
          FROM a_tree)),
a_ev AS (        -- 5. the sweep's events (t, d, sk) in time order; k = intervals running after each
    SELECT *, length(ev) AS n_ev, arrayCumSum(arrayMap(e -> toInt64(e.2), ev)) AS evk,
           arrayPopFront(arrayPushBack(arrayMap(e -> e.1, ev), toInt64(0))) AS nxt
    FROM (SELECT *, arraySort(arrayConcat(arrayMap(x -> (x.2, toInt8(1), x.1), ivs),
                                          arrayMap(x -> (x.3, toInt8(-1), x.1), ivs))) AS ev
          FROM a_si)),
a_f AS (         -- F before each event = integral of 1/k up to it; an interval is charged F(b) - F(a)
    SELECT *, arrayPopBack(arrayCumSum(arrayPushFront(
                  arrayMap((e, k, t2, j) -> if(k > 0 AND j < n_ev, (t2 - e.1) / k, 0.), ev, evk, nxt,
                           arrayEnumerate(ev)), 0.))) AS evf
    FROM a_ev),
a_self AS (      -- per span: self time (the sweep only where intervals overlap), with the trace's group
    SELECT a_f.tk AS tk, g, kid_toks, a_sel.grp AS grp, a_sel.dur AS dur,
           PER_SPAN AS selfs
    FROM a_f JOIN a_sel ON a_sel.tk = a_f.tk),
a_counted AS (   -- 6. one row per span; prices: keys longest first, the first match wins
    SELECT tk, x.13.1 AS span_type, x.13.2 AS name, x.13.3 AS tool_name, x.13.4 AS model, x.13.5 AS status, grp,
           coalesce(dur >= {a_p95:Nullable(Float64)} - 1e-6, 0) AS tail, (x.4 - x.3) / 1e6 AS dur_ms,
           self_ns / 1e6 AS self_ms, if(kid_tok, NULL, x.13.6) AS in_tok, if(kid_tok, NULL, x.13.7) AS out_tok,
           replaceRegexpOne(lower(ifNull(model, '')), '^.*/', '') AS bare,
           if(model IS NULL, 0, arrayFirstIndex((k, dated) -> bare = k OR startsWith(bare, dated),
                                                {a_pkeys:Array(String)}, {a_pdated:Array(String)})) AS price_at
    FROM a_self ARRAY JOIN g AS x, selfs AS self_ns, kid_toks AS kid_tok),
a_sp AS (
    SELECT tk, span_type, name, tool_name, model, status, grp, tail, dur_ms, self_ms, in_tok, out_tok,
           price_at > 0 AS priced,
           if(price_at > 0 AND (in_tok IS NOT NULL OR out_tok IS NOT NULL),
              (coalesce(in_tok, 0) * {a_pin:Array(Float64)}[price_at]
               + coalesce(out_tok, 0) * {a_pout:Array(Float64)}[price_at]) / 1e6, NULL) AS cost
    FROM a_counted)""".replace(
    "MEMBERS_KIDS", _members("sks", "arrayMap(t -> t.2, arrayFilter(t -> t.7, g))")).replace(
    "MEMBERS_TOKENS", _members("sks", "arrayMap(t -> t.2, arrayFilter(t -> t.2 != 0 AND t.14, g))")).replace(
    "PER_SPAN", _per_span("if(par, arrayMap(e -> e.3, ev), arrayMap(x -> x.1, ivs))",
                          "if(par, arrayMap((e, f) -> -e.2 * f, ev, evf), arrayMap(x -> toFloat64(x.3 - x.2), ivs))",
                          "arrayMap(t -> t.1, g)"))

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
