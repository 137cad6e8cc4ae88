"""ClickHouse adapter for ``tools.labels.annotation_queue.QueueStore``: the anomaly signals in ClickHouse SQL.

The twin of ``server/storage/duckdb/queue_sql.py`` (read its docstring first): one statement computes
every signal of the unlabelled candidates as ``(trace_id, signal, value, info JSON)`` rows, against
baselines from the whole store, with the thresholds as typed parameters. What differs:

* medians and p95 are ``quantileExactInclusive`` (DuckDB's ``median``/``quantile_cont`` interpolate
  the same way), the MAD is the median of the absolute deviations, computed over the grouped array;
* ``LATERAL (VALUES …)`` is an ``arrayJoin`` of tuples, ``lead`` is ``leadInFrame`` over the whole
  session, ``arg_max({…})`` is ``argMax`` of a named tuple turned to JSON;
* a JSON path that is missing gives ``''`` here (DuckDB: NULL), hence the ``nullIf``.

The recorded queues (``queue_items``) are small transactional rows: they live in the control plane
(``c003_labelling``), written in one transaction, so a queue is stored whole or not at all.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from server.storage.clickhouse import filter_sql
from server.storage.clickhouse.store import ClickHouseTraceStore
from server.storage.control.plane import ControlPlane
from server.storage.control.reviewers import judges_of_criterion, queue_items
from tools.labels.annotation_queue import Candidate, Population, QueueItem, RawSignal, SignalConfig

_LLM = "('LLM', 'CHAT_MODEL')"
_USER_TEXT = """if(isValidJSON({c}), coalesce(nullIf(JSONExtractString({c}, 'messages', -1, 'content'), ''),
                nullIf(JSONExtractString({c}, 'question'), ''), nullIf(JSONExtractString({c}, 'input'), ''), {c}),
                {c})"""
_WORDS = "arrayDistinct(arrayFilter(w -> length(w) >= 3, splitByRegexp('[^a-z0-9]+', lowerUTF8({c}))))"


def _json(fields: str) -> str:
    """A JSON object of ``fields`` (``'expr AS name, …'``, top-level commas only) as DuckDB's
    ``to_json({…})`` writes it; built by concatenation since a tuple's names do not survive ``tuple()``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(fields + ","):
        depth += ch in "([" and 1 or ch in ")]" and -1 or 0
        if ch == "," and depth == 0 and fields[start:i].strip():
            expr, name = fields[start:i].strip().rsplit(" AS ", 1)
            parts.append(f"'\"{name}\":', ifNull(toJSONString({expr}), 'null')")
            start = i + 1
    return "concat('{', " + ", ',', ".join(parts) + ", '}')"


_SIGNAL_SQL: dict[str, str] = {
    "error_status": f"""
        SELECT c.trace_id AS trace_id, 'error_status' AS signal, 1.0 AS value,
               {_json("e.message AS message")} AS info
        FROM cand AS c LEFT JOIN (
            SELECT s.trace_id AS trace_id,
                   argMin(tuple(s.status_message), (s.parent_span_id IS NOT NULL, s.start_time_ns)).1 AS message
            FROM spans AS s WHERE s.status = 'ERROR' AND s.trace_id IN (SELECT trace_id FROM cand)
            GROUP BY s.trace_id) AS e ON e.trace_id = c.trace_id
        WHERE c.status = 'ERROR'""",
    "tool_error": f"""
        SELECT s.trace_id AS trace_id, 'tool_error' AS signal, toFloat64(count()) AS value,
               {_json("argMin(tuple(coalesce(s.tool_name, s.name)), s.start_time_ns).1 AS tool, "
                      "argMin(tuple(s.status_message), s.start_time_ns).1 AS message")} AS info
        FROM spans AS s WHERE s.trace_id IN (SELECT trace_id FROM cand) AND s.span_type = 'TOOL' AND s.status = 'ERROR'
        GROUP BY s.trace_id""",
    "tool_retry": f"""
        SELECT trace_id, 'tool_retry' AS signal, toFloat64(max(n)) AS value, {_json("argMax(tuple(tool), n).1 AS tool")} AS info FROM (
            SELECT s.trace_id AS trace_id, coalesce(s.tool_name, s.name) AS tool, count() AS n
            FROM spans AS s WHERE s.trace_id IN (SELECT trace_id FROM cand) AND s.span_type = 'TOOL'
            GROUP BY trace_id, tool HAVING count() > 1)
        GROUP BY trace_id""",
    "guardrail": f"""
        SELECT s.trace_id AS trace_id, 'guardrail' AS signal, toFloat64(count()) AS value,
               {_json("argMin(tuple(s.name), s.start_time_ns).1 AS name, "
                      "argMin(tuple(s.status_message), s.start_time_ns).1 AS message")} AS info
        FROM spans AS s WHERE s.trace_id IN (SELECT trace_id FROM cand) AND s.span_type = 'GUARDRAIL'
          AND s.status = 'ERROR'
        GROUP BY s.trace_id""",
    "context_pressure": f"""
        SELECT trace_id, signal, value, info FROM (
        SELECT trace_id, 'context_pressure' AS signal, max(ratio) AS value,
               argMax((name, input_tokens, lim, model, exceeded, status_message), ratio) AS best,
               {_json("best.1 AS span, best.2 AS tokens, best.3 AS limit, best.4 AS model, best.5 AS exceeded, "
                      "best.6 AS message")} AS info
        FROM (SELECT *, if(exceeded, 1.0, coalesce(input_tokens, 0) / lim) AS ratio
              FROM (SELECT s.trace_id AS trace_id, s.name AS name, s.input_tokens AS input_tokens,
                           s.status_message AS status_message, coalesce(s.model, c.model) AS model,
                           indexOf(arrayMap(p -> startsWith(lowerUTF8(coalesce(s.model, c.model, '')), p),
                                            {{prefixes:Array(String)}}), 1) AS hit,
                           if(hit = 0, {{default_limit:Int64}}, {{limit_values:Array(Int64)}}[hit]) AS lim,
                           toBool(match(lowerUTF8(coalesce(s.status_message, '')),
                                        'context.?(window|length)|maximum context|too many tokens')) AS exceeded
                    FROM spans AS s JOIN cand AS c ON c.trace_id = s.trace_id WHERE s.span_type IN {_LLM}))
        WHERE ratio >= {{context_ratio:Float64}} GROUP BY trace_id)""",
    "token_spike": f"""
        SELECT trace_id, signal, value, info FROM (
        SELECT trace_id, 'token_spike' AS signal, max(ratio) AS value,
               argMax((name, kind, tokens, usual), ratio) AS best,
               {_json("best.1 AS span, best.2 AS kind, best.3 AS tokens, best.4 AS usual")} AS info
        FROM (SELECT s.trace_id AS trace_id, s.name AS name, k.1 AS kind, k.2 AS tokens, k.3 AS usual,
                     k.4 AS p95, tokens / usual AS ratio
              FROM spans AS s JOIN cand AS c ON c.trace_id = s.trace_id JOIN token_base AS b ON b.name = s.name
              ARRAY JOIN [('output', s.output_tokens, b.med_out, b.p95_out),
                          ('input', s.input_tokens, b.med_in, b.p95_in)] AS k
              WHERE s.span_type IN {_LLM} AND usual > 0 AND tokens >= {{spike_ratio:Float64}} * usual AND tokens > p95)
        GROUP BY trace_id)""",
    "latency_outlier": f"""
        SELECT c.trace_id AS trace_id, 'latency_outlier' AS signal, (ln(c.execution_time_ms) - b.med) / (1.4826 * b.mad) AS value,
               {_json("c.execution_time_ms AS ms, b.usual AS usual_ms, c.name AS name")} AS info
        FROM cand AS c JOIN latency_base AS b ON isNotDistinctFrom(b.name, c.name)
        WHERE c.execution_time_ms > 0 AND b.mad > 0 AND value >= {{latency_z:Float64}}""",
    "resubmission": f"""
        SELECT n.trace_id AS trace_id, 'resubmission' AS signal, (n.next_ts - n.end_ms) / 1000.0 AS value,
               {_json("n.next_id AS next_trace_id, leftUTF8(n.next_text, 200) AS next_text, "
                      "multiIf(n.cue, 'asks again', n.shared_id, 'same id', "
                      "concat('overlap ', toString(round(n.overlap, 2)))) AS why")} AS info
        FROM (SELECT *, length(arrayIntersect(a, b)) / greatest(1, length(arrayDistinct(arrayConcat(a, b))))
                            AS overlap,
                     arrayExists(w -> match(w, '^[0-9]{{4,}}$'), arrayIntersect(a, b)) AS shared_id,
                     match(lowerUTF8(coalesce(next_text, '')), {{cues:String}}) AS cue
              FROM (SELECT *, {_WORDS.format(c="coalesce(text, '')")} AS a,
                           {_WORDS.format(c="coalesce(next_text, '')")} AS b FROM (
                  SELECT trace_id, timestamp_ms + coalesce(execution_time_ms, 0) AS end_ms, text,
                         leadInFrame(toNullable(trace_id), 1, NULL) OVER w AS next_id,
                         leadInFrame(toNullable(timestamp_ms), 1, NULL) OVER w AS next_ts,
                         leadInFrame(text, 1, NULL) OVER w AS next_text
                  FROM (SELECT t.trace_id AS trace_id, t.session_id AS session_id, t.timestamp_ms AS timestamp_ms,
                               t.execution_time_ms AS execution_time_ms, {_USER_TEXT.format(c='t.request')} AS text
                        FROM traces AS t WHERE t.session_id IN (SELECT session_id FROM cand))
                  WINDOW w AS (PARTITION BY session_id ORDER BY timestamp_ms, trace_id
                               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)))) AS n
        WHERE n.trace_id IN (SELECT trace_id FROM cand) AND n.next_id IS NOT NULL
          AND n.next_ts - n.end_ms <= {{window_ms:Float64}}
          AND (n.cue OR n.shared_id OR n.overlap >= {{overlap:Float64}})""",
}
_LATEST_SCORES = """
    SELECT sc.trace_id AS trace_id, sc.judge AS judge, argMax(sc.verdict, coalesce(sc.created_at_ms, 0)) AS verdict,
           argMax(tuple(sc.score), coalesce(sc.created_at_ms, 0)).1 AS score
    FROM scores AS sc WHERE sc.trace_id IN (SELECT trace_id FROM cand) AND {where} GROUP BY trace_id, judge"""
_SIGNAL_SQL["judge_disagreement"] = f"""
    SELECT trace_id, 'judge_disagreement' AS signal, 1.0 AS value,
           {_json("arrayStringConcat(arrayMap(x -> concat(x.1, '=', x.2), arraySort(groupArray((judge, verdict)))), "
                  "', ') AS verdicts")} AS info
    FROM ({_LATEST_SCORES.format(where="sc.verdict IN ('pass', 'fail') "
                                       "AND ({all_judges:UInt8} OR has({judges:Array(String)}, sc.judge))")})
    GROUP BY trace_id HAVING uniqExact(verdict) > 1"""
_CRITERION_SCORES = _LATEST_SCORES.format(where="has({criterion_judges:Array(String)}, sc.judge)")
_SIGNAL_SQL["judge_flagged"] = f"""
    SELECT trace_id, 'judge_flagged' AS signal, toFloat64(count()) AS value,
           {_json("arrayStringConcat(arraySort(groupArray(judge)), ', ') AS judges")} AS info
    FROM ({_CRITERION_SCORES}) WHERE verdict = 'fail' GROUP BY trace_id"""
_SIGNAL_SQL["judge_uncertain"] = f"""
    SELECT trace_id, 'judge_uncertain' AS signal, min(abs(score - 0.5)) AS value,
           {_json("arrayStringConcat(arrayMap(x -> concat(x.1, ' ', toString(round(x.2, 2))), "
                  "arraySort(groupArray((judge, assumeNotNull(score))))), ', ') AS judges")} AS info
    FROM ({_CRITERION_SCORES}) WHERE abs(score - 0.5) <= {{uncertain_band:Float64}} GROUP BY trace_id"""
_BASELINES = f"""
    token_base AS (
        SELECT name, quantileExactInclusive(0.5)(output_tokens) AS med_out,
               quantileExactInclusive(0.95)(output_tokens) AS p95_out,
               quantileExactInclusive(0.5)(input_tokens) AS med_in, quantileExactInclusive(0.95)(input_tokens) AS p95_in
        FROM spans WHERE span_type IN {_LLM} GROUP BY name HAVING count() >= {{min_baseline:UInt64}}),
    latency_base AS (
        SELECT name, quantileExactInclusive(0.5)(ln(execution_time_ms)) AS med,
               arrayReduce('quantileExactInclusive(0.5)',
                           arrayMap(x -> abs(x - med), groupArray(ln(execution_time_ms)))) AS mad,
               quantileExactInclusive(0.5)(execution_time_ms) AS usual
        FROM traces WHERE execution_time_ms > 0 GROUP BY name HAVING count() >= {{min_baseline:UInt64}})"""
#: Every integer in the info JSON as a number, as DuckDB writes it (ClickHouse quotes 64-bit ones).
_SETTINGS = " SETTINGS output_format_json_quote_64bit_integers = 0, output_format_json_quote_64bit_floats = 0"


class ClickHouseQueueStore:
    """Queue signals over the ClickHouse trace store; recorded queues in the control plane."""

    def __init__(self, store: ClickHouseTraceStore, control: ControlPlane) -> None:
        self.store = store
        self.control = control

    def _cand(self, criterion: str, expr: Any, now_ms: int) -> tuple[str, dict[str, Any]]:
        where, params = filter_sql.compile_filter(expr, now_ms=now_ms)
        sql = ("cand AS (SELECT t.trace_id AS trace_id, t.timestamp_ms AS timestamp_ms, "
               "t.execution_time_ms AS execution_time_ms, t.status AS status, t.name AS name, "
               "t.session_id AS session_id, t.model AS model, t.request AS request FROM traces AS t "
               f"WHERE ({where}) AND t.trace_id NOT IN (SELECT trace_id FROM labels "
               "WHERE criterion = {criterion:String}))")
        return sql, {**params, "criterion": criterion}

    def queue_population(self, criterion: str, expr: Any, now_ms: int) -> Population:
        where, params = filter_sql.compile_filter(expr, now_ms=now_ms)
        n, labelled = self.store.client.read(
            f"SELECT count(), countIf(t.trace_id IN (SELECT trace_id FROM labels WHERE criterion = "
            f"{{criterion:String}})) FROM traces AS t WHERE {where}", {**params, "criterion": criterion})[0]
        return Population(candidates=int(n) - int(labelled), already_labelled=int(labelled))

    def queue_signals(self, criterion: str, expr: Any, now_ms: int, config: SignalConfig,
                      signals: list[str]) -> list[Candidate]:
        cand, params = self._cand(criterion, expr, now_ms)
        wanted = [s for s in signals if s in _SIGNAL_SQL]
        if not wanted:
            return []
        body = "\nUNION ALL\n".join(f"SELECT * FROM ({_SIGNAL_SQL[s]})" for s in wanted)
        sql = f"""
            WITH {cand}, {_BASELINES},
            hits AS ({body})
            SELECT h.*, c.timestamp_ms, leftUTF8({_USER_TEXT.format(c='c.request')}, 200)
            FROM hits AS h JOIN cand AS c ON c.trace_id = h.trace_id"""
        # longest prefix first: the first that matches is the one DuckDB's max_by(length) picks
        limits = sorted(config.model_limits.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        judges = judges_of_criterion(self.control, criterion)
        values = {
            **params, "prefixes": [p.lower() for p, _ in limits], "limit_values": [v for _, v in limits],
            "default_limit": config.default_limit, "context_ratio": config.context_ratio,
            "spike_ratio": config.spike_ratio, "min_baseline": config.min_baseline,
            "latency_z": config.latency_z, "window_ms": config.resubmit_window_s * 1000,
            "overlap": config.resubmit_overlap, "cues": config.resubmit_cues,
            "all_judges": int(judges is None), "judges": judges or [],
            "criterion_judges": judges or [criterion], "uncertain_band": config.uncertain_band,
        }
        rows = self.store.client.read(sql + _SETTINGS, values)
        by_id: dict[str, Candidate] = {}
        for trace_id, signal, value, info, ts, request in rows:
            c = by_id.setdefault(trace_id, Candidate(trace_id=trace_id, timestamp_ms=ts, request_head=request))
            c.signals.append(RawSignal(signal=signal, value=float(value), info=json.loads(info) if info else {}))
        return list(by_id.values())

    def queue_random(self, criterion: str, expr: Any, now_ms: int, k: int, seed: int,
                     exclude: list[str]) -> list[Candidate]:
        """A uniform draw of ``k`` candidates, the same for the same seed (a hash of id and seed orders them)."""
        cand, params = self._cand(criterion, expr, now_ms)
        rows = self.store.client.read(
            f"WITH {cand} SELECT trace_id, timestamp_ms, leftUTF8({_USER_TEXT.format(c='request')}, 200) FROM cand "
            "WHERE NOT has({exclude:Array(String)}, trace_id) "
            "ORDER BY sipHash64(concat(trace_id, {seed:String})), trace_id LIMIT {k:UInt32}",
            {**params, "exclude": exclude, "seed": str(seed), "k": k})
        return [Candidate(trace_id=t, timestamp_ms=ts, request_head=r) for t, ts, r in rows]

    def save_queue(self, queue_id: str, criterion: str, filter_text: str, population: int, items: list[QueueItem],
                   now_ms: int) -> None:
        rows = [{"queue_id": queue_id, "criterion": criterion, "trace_id": i.trace_id, "rank": i.rank,
                 "priority": i.priority, "selected_by": i.selected_by,
                 "selection_probability": i.selection_probability,
                 "reasons": json.dumps([r.model_dump() for r in i.reasons]), "population": population,
                 "filter": filter_text, "created_at_ms": now_ms} for i in items]
        if rows:
            with self.control.transaction() as conn:
                conn.execute(sa.insert(queue_items), rows)
