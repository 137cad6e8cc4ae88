"""DuckDB adapter for ``tools.labels.annotation_queue.QueueStore``: anomaly signals computed in SQL.

One statement computes every signal for the unlabelled candidates (traces matching the filter
with no label for the criterion) as ``(trace_id, signal, value, info JSON)`` rows; baselines
("usual" tokens per operation, latency per trace name) come from the whole store so a narrow
filter is still judged against normal traffic. The thresholds arrive from ``tools`` as
parameters (``SignalConfig``); nothing is spliced into SQL except the compiled filter.
"""

from __future__ import annotations

import json
import re
from typing import Any

from server.storage.duckdb.calibration_sql import _columns
from server.storage.duckdb.store import DuckDBTraceStore
from tools.labels.annotation_queue import Candidate, Population, QueueItem, RawSignal, SignalConfig

_LLM = "('LLM', 'CHAT_MODEL')"
_USER_TEXT = """CASE WHEN json_valid({c}) THEN coalesce(json_extract_string({c}, '$.messages[#-1].content'),
                json_extract_string({c}, '$.question'), json_extract_string({c}, '$.input'), {c}) ELSE {c} END"""
_WORDS = "list_distinct(list_filter(string_split_regex(lower({c}), '[^a-z0-9]+'), lambda w: length(w) >= 3))"

_SIGNAL_SQL: dict[str, str] = {
    "error_status": """
        SELECT c.trace_id, 'error_status' AS signal, 1.0 AS value,
               to_json({'message': (SELECT s.status_message FROM spans s WHERE s.trace_id = c.trace_id
                        AND s.status = 'ERROR' ORDER BY s.parent_span_id IS NULL DESC, s.start_time_ns LIMIT 1)})
        FROM cand c WHERE c.status = 'ERROR'""",
    "tool_error": """
        SELECT s.trace_id, 'tool_error', count(*)::DOUBLE,
               to_json({'tool': arg_min(coalesce(s.tool_name, s.name), s.start_time_ns),
                        'message': arg_min(s.status_message, s.start_time_ns)})
        FROM spans s JOIN cand c USING (trace_id) WHERE s.span_type = 'TOOL' AND s.status = 'ERROR'
        GROUP BY s.trace_id""",
    "tool_retry": """
        SELECT trace_id, 'tool_retry', max(n)::DOUBLE, to_json({'tool': arg_max(tool, n)}) FROM (
            SELECT s.trace_id, coalesce(s.tool_name, s.name) AS tool, count(*) AS n
            FROM spans s JOIN cand c USING (trace_id) WHERE s.span_type = 'TOOL' GROUP BY 1, 2 HAVING count(*) > 1)
        GROUP BY trace_id""",
    "guardrail": """
        SELECT s.trace_id, 'guardrail', count(*)::DOUBLE,
               to_json({'name': arg_min(s.name, s.start_time_ns), 'message': arg_min(s.status_message, s.start_time_ns)})
        FROM spans s JOIN cand c USING (trace_id) WHERE s.span_type = 'GUARDRAIL' AND s.status = 'ERROR'
        GROUP BY s.trace_id""",
    "context_pressure": f"""
        SELECT trace_id, 'context_pressure', max(ratio),
               to_json(arg_max({{'span': name, 'tokens': input_tokens, 'limit': lim, 'model': model,
                                 'exceeded': exceeded, 'message': status_message}}, ratio))
        FROM (SELECT *, CASE WHEN exceeded THEN 1.0 ELSE coalesce(input_tokens, 0) / lim END AS ratio
              FROM (SELECT s.trace_id, s.name, s.input_tokens, s.status_message,
                           coalesce(s.model, c.model) AS model,
                           coalesce((SELECT max_by(l.lim, length(l.prefix)) FROM limits l
                                     WHERE starts_with(lower(coalesce(s.model, c.model, '')), l.prefix)),
                                    $default_limit) AS lim,
                           regexp_matches(lower(coalesce(s.status_message, '')),
                                          'context.?(window|length)|maximum context|too many tokens') AS exceeded
                    FROM spans s JOIN cand c USING (trace_id) WHERE s.span_type IN {_LLM}))
        WHERE ratio >= $context_ratio GROUP BY trace_id""",
    "token_spike": f"""
        SELECT trace_id, 'token_spike', max(ratio),
               to_json(arg_max({{'span': name, 'kind': kind, 'tokens': tokens, 'usual': usual}}, ratio))
        FROM (SELECT s.trace_id, s.name, k.kind, k.tokens, k.usual, k.tokens / k.usual AS ratio
              FROM spans s JOIN cand c USING (trace_id) JOIN token_base b ON b.name = s.name,
                   LATERAL (VALUES ('output', s.output_tokens, b.med_out, b.p95_out),
                                   ('input', s.input_tokens, b.med_in, b.p95_in)) k(kind, tokens, usual, p95)
              WHERE s.span_type IN {_LLM} AND k.usual > 0 AND k.tokens >= $spike_ratio * k.usual AND k.tokens > k.p95)
        GROUP BY trace_id""",
    "latency_outlier": """
        SELECT c.trace_id, 'latency_outlier', (ln(c.execution_time_ms) - b.med) / (1.4826 * b.mad) AS z,
               to_json({'ms': c.execution_time_ms, 'usual_ms': b.usual, 'name': c.name})
        FROM cand c JOIN latency_base b ON b.name IS NOT DISTINCT FROM c.name
        WHERE c.execution_time_ms > 0 AND b.mad > 0
          AND (ln(c.execution_time_ms) - b.med) / (1.4826 * b.mad) >= $latency_z""",
    "resubmission": f"""
        SELECT n.trace_id, 'resubmission', (n.next_ts - n.end_ms) / 1000.0,
               to_json({{'next_trace_id': n.next_id, 'next_text': left(n.next_text, 200),
                         'why': CASE WHEN n.cue THEN 'asks again' WHEN n.shared_id THEN 'same id'
                                     ELSE 'overlap ' || round(n.overlap, 2) END}})
        FROM (SELECT *, len(list_intersect(a, b)) / greatest(1, len(list_distinct(list_concat(a, b)))) AS overlap,
                     len(list_filter(list_intersect(a, b), lambda w: regexp_matches(w, '^[0-9]{{4,}}$'))) > 0
                         AS shared_id,
                     regexp_matches(lower(coalesce(next_text, '')), $cues) AS cue
              FROM (SELECT *, {_WORDS.format(c='text')} AS a, {_WORDS.format(c='next_text')} AS b FROM (
                  SELECT trace_id, timestamp_ms + coalesce(execution_time_ms, 0) AS end_ms, text,
                         lead(trace_id) OVER w AS next_id, lead(timestamp_ms) OVER w AS next_ts,
                         lead(text) OVER w AS next_text
                  FROM (SELECT trace_id, session_id, timestamp_ms, execution_time_ms,
                               {_USER_TEXT.format(c='request')} AS text
                        FROM traces WHERE session_id IN (SELECT session_id FROM cand))
                  WINDOW w AS (PARTITION BY session_id ORDER BY timestamp_ms, trace_id)))) n
        JOIN cand USING (trace_id)
        WHERE n.next_id IS NOT NULL AND n.next_ts - n.end_ms <= $window_ms
          AND (n.cue OR n.shared_id OR n.overlap >= $overlap)""",
}
_SIGNAL_SQL["judge_disagreement"] = """
    SELECT trace_id, 'judge_disagreement', 1.0,
           to_json({'verdicts': string_agg(judge || '=' || verdict, ', ' ORDER BY judge)})
    FROM (SELECT sc.trace_id, sc.judge, arg_max(sc.verdict, coalesce(sc.created_at_ms, 0)) AS verdict
          FROM scores sc JOIN cand c USING (trace_id)
          WHERE sc.verdict IN ('pass', 'fail') AND ($judges IS NULL OR list_contains($judges, sc.judge))
          GROUP BY 1, 2)
    GROUP BY trace_id HAVING count(DISTINCT verdict) > 1"""
_LATEST_CRITERION_SCORES = """
    SELECT sc.trace_id, sc.judge, arg_max(sc.verdict, coalesce(sc.created_at_ms, 0)) AS verdict,
           arg_max(sc.score, coalesce(sc.created_at_ms, 0)) AS score
    FROM scores sc JOIN cand c USING (trace_id) WHERE list_contains($criterion_judges, sc.judge) GROUP BY 1, 2"""
_SIGNAL_SQL["judge_flagged"] = f"""
    SELECT trace_id, 'judge_flagged', count(*)::DOUBLE, to_json({{'judges': string_agg(judge, ', ' ORDER BY judge)}})
    FROM ({_LATEST_CRITERION_SCORES}) WHERE verdict = 'fail' GROUP BY trace_id"""
_SIGNAL_SQL["judge_uncertain"] = f"""
    SELECT trace_id, 'judge_uncertain', min(abs(score - 0.5)),
           to_json({{'judges': string_agg(judge || ' ' || round(score, 2), ', ' ORDER BY judge)}})
    FROM ({_LATEST_CRITERION_SCORES}) WHERE abs(score - 0.5) <= $uncertain_band GROUP BY trace_id"""


class DuckDBQueueStore:
    """Queue signals and recorded queues in the trace store's DuckDB file."""

    def __init__(self, store: DuckDBTraceStore) -> None:
        self.store = store

    def _cand(self, criterion: str, expr: Any, now_ms: int) -> tuple[str, dict[str, Any]]:
        where, params = self.store.where(expr, now_ms)
        sql = (f"cand AS (SELECT t.trace_id, t.timestamp_ms, t.execution_time_ms, t.status, t.name, t.session_id, "
               f"t.model, t.request FROM traces t WHERE ({where}) AND NOT EXISTS (SELECT 1 FROM labels l WHERE "
               f"l.trace_id = t.trace_id AND l.criterion = $criterion))")
        return sql, {**params, "criterion": criterion}

    def queue_population(self, criterion: str, expr: Any, now_ms: int) -> Population:
        where, params = self.store.where(expr, now_ms)
        with self.store.reading() as con:
            n, labelled = con.execute(
                f"SELECT count(*), count(*) FILTER (EXISTS (SELECT 1 FROM labels l WHERE l.trace_id = t.trace_id "
                f"AND l.criterion = $criterion)) FROM traces t WHERE {where}", {**params, "criterion": criterion}
            ).fetchone()
        return Population(candidates=n - labelled, already_labelled=labelled)

    def _judges_for(self, con: Any, criterion: str) -> list[str] | None:
        """Judges of this criterion when the judges feature records it; else None.

        Disagreement then compares all judges; flagged/uncertain use a judge named like the criterion.
        """
        if "criterion" not in _columns(con, "judges"):
            return None
        rows = con.execute("SELECT DISTINCT name FROM judges WHERE criterion = $c", {"c": criterion}).fetchall()
        return [r[0] for r in rows] or None

    def queue_signals(self, criterion: str, expr: Any, now_ms: int, config: SignalConfig,
                      signals: list[str]) -> list[Candidate]:
        cand, params = self._cand(criterion, expr, now_ms)
        wanted = [s for s in signals if s in _SIGNAL_SQL]
        if not wanted:
            return []
        body = "\nUNION ALL\n".join(f"SELECT * FROM ({_SIGNAL_SQL[s]})" for s in wanted)
        sql = f"""
            WITH {cand},
            limits AS (SELECT unnest($prefixes) AS prefix, unnest($limit_values) AS lim),
            token_base AS (
                SELECT name, median(output_tokens) AS med_out, quantile_cont(output_tokens, 0.95) AS p95_out,
                       median(input_tokens) AS med_in, quantile_cont(input_tokens, 0.95) AS p95_in
                FROM spans WHERE span_type IN {_LLM} GROUP BY name HAVING count(*) >= $min_baseline),
            latency_base AS (
                SELECT name, median(ln(execution_time_ms)) AS med, mad(ln(execution_time_ms)) AS mad,
                       median(execution_time_ms) AS usual
                FROM traces WHERE execution_time_ms > 0 GROUP BY name HAVING count(*) >= $min_baseline),
            hits AS ({body})
            SELECT h.*, c.timestamp_ms, left({_USER_TEXT.format(c='c.request')}, 200) FROM hits h JOIN cand c USING (trace_id)"""
        limits = sorted(config.model_limits.items())
        with self.store.reading() as con:
            judges = self._judges_for(con, criterion)
            values = {
                **params, "prefixes": [p.lower() for p, _ in limits], "limit_values": [v for _, v in limits],
                "default_limit": config.default_limit, "context_ratio": config.context_ratio,
                "spike_ratio": config.spike_ratio, "min_baseline": config.min_baseline,
                "latency_z": config.latency_z, "window_ms": config.resubmit_window_s * 1000,
                "overlap": config.resubmit_overlap, "cues": config.resubmit_cues, "judges": judges,
                "criterion_judges": judges or [criterion], "uncertain_band": config.uncertain_band,
            }
            used = set(re.findall(r"\$(\w+)", sql))  # DuckDB refuses parameters a statement does not use
            rows = con.execute(sql, {k: v for k, v in values.items() if k in used}).fetchall()
        by_id: dict[str, Candidate] = {}
        for trace_id, signal, value, info, ts, request in rows:
            c = by_id.setdefault(trace_id, Candidate(trace_id=trace_id, timestamp_ms=ts, request_head=request))
            c.signals.append(RawSignal(signal=signal, value=float(value), info=json.loads(info) if info else {}))
        return list(by_id.values())

    def queue_random(self, criterion: str, expr: Any, now_ms: int, k: int, seed: int,
                     exclude: list[str]) -> list[Candidate]:
        cand, params = self._cand(criterion, expr, now_ms)
        with self.store.reading() as con:
            rows = con.execute(
                f"WITH {cand} SELECT trace_id, timestamp_ms, left({_USER_TEXT.format(c='request')}, 200) FROM cand "
                "WHERE NOT list_contains($exclude, trace_id) ORDER BY hash(trace_id || $seed), trace_id LIMIT $k",
                {**params, "exclude": exclude, "seed": str(seed), "k": k}).fetchall()
        return [Candidate(trace_id=t, timestamp_ms=ts, request_head=r) for t, ts, r in rows]

    def save_queue(self, queue_id: str, criterion: str, filter_text: str, population: int, items: list[QueueItem],
                   now_ms: int) -> None:
        columns: dict[str, list[Any]] = {
            "trace_id": [i.trace_id for i in items], "rank": [i.rank for i in items],
            "priority": [i.priority for i in items], "selected_by": [i.selected_by for i in items],
            "p": [i.selection_probability for i in items],
            "reasons": [json.dumps([r.model_dump() for r in i.reasons]) for i in items],
        }
        with self.store.writing() as con:
            con.execute(
                "INSERT INTO queue_items SELECT $queue_id, $criterion, unnest($trace_id), unnest($rank), "
                "unnest($priority), unnest($selected_by), unnest($p), unnest($reasons)::JSON, $population, $filter, "
                "$now", {**columns, "queue_id": queue_id, "criterion": criterion, "population": population,
                         "filter": filter_text, "now": now_ms})

