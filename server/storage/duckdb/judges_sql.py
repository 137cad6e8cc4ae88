"""DuckDB adapter of the judges feature: judge versions, runs, scores, cache, and judge items.

Items are built by SQL from ``dataset_records`` (a dataset version) or ``traces`` (a filter +
time window with stable hash sampling), joined with their trace's spans for retrieved documents,
tool calls and error statuses. Request/response text is pulled out of JSON bodies with the path
table in ``tools.judges.rules`` so SQL-evaluated rules and Python-evaluated judges read the same
text. Every call opens the store only for its own duration, like the rest of the store.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any

import duckdb
from pydantic import TypeAdapter

from server.storage.duckdb import rule_sql
from server.storage.duckdb.connection import fetch_dicts
from server.storage.duckdb.store import DuckDBTraceStore
from tools.filters import parser
from tools.errors import InvalidInputError, NotFoundError
from tools.judges.ports import (CachedReply, ErrorSpan, Item, JudgeRecord, ResolvedTarget, RunRecord, ScoreRow, Target,
                               ToolCall)
from tools.judges.specs import JudgeSpec
from tools.judges.rules import INPUT_PATHS, OUTPUT_PATHS

_SCORE_COLUMNS = ("run_id", "judge", "judge_version", "trace_id", "item_id", "verdict", "score", "rationale",
                  "latency_ms", "input_tokens", "output_tokens", "cost_usd", "error", "cache_key", "cached",
                  "created_at_ms")
_SPEC = TypeAdapter(JudgeSpec)
_TYPES = {"score": "DOUBLE", "latency_ms": "DOUBLE", "input_tokens": "BIGINT", "output_tokens": "BIGINT",
          "cost_usd": "DOUBLE", "cached": "BOOLEAN", "created_at_ms": "BIGINT"}


def _json_path(path: tuple[str | int, ...]) -> str:
    out = "$"
    for step in path:
        out += f"[#{step}]" if isinstance(step, int) and step < 0 else f"[{step}]" if isinstance(step, int) \
            else f'."{step}"'
    return out


def extract_sql(column: str, paths: tuple[tuple[str | int, ...], ...], *, depth: int = 2) -> str:
    """SQL for the readable text of a JSON body: the first string at ``paths``, else the raw text.

    A body that is a JSON string holding JSON (double-encoded, common in exporters) is unwrapped
    once and searched again.
    """
    tries = [f"CASE WHEN json_type({column}, '{_json_path(p)}') = 'VARCHAR' THEN json_extract_string({column}, "
             f"'{_json_path(p)}') END" for p in paths]
    inner = f"json_extract_string({column}, '$')"
    unwrapped = extract_sql(inner, paths, depth=depth - 1) if depth > 1 else inner
    return (f"CASE WHEN {column} IS NULL THEN NULL WHEN NOT json_valid({column}) THEN {column} "
            f"WHEN json_type({column}) = 'VARCHAR' THEN {unwrapped} "
            f"ELSE coalesce({', '.join(tries)}, {column}) END")


_SPANS = """
    SELECT s.trace_id,
           list({'name': s.name, 'text': s.outputs} ORDER BY s.start_time_ns, s.span_id)
               FILTER (WHERE s.span_type = 'RETRIEVER' AND s.outputs IS NOT NULL) AS retrieved,
           list({'name': coalesce(s.tool_name, s.name), 'arguments': s.inputs, 'status': s.status,
                 'error': s.status_message} ORDER BY s.start_time_ns, s.span_id)
               FILTER (WHERE s.span_type = 'TOOL') AS tool_calls,
           list({'type': s.span_type, 'name': s.name, 'message': s.status_message} ORDER BY s.start_time_ns, s.span_id)
               FILTER (WHERE s.status = 'ERROR') AS error_spans
    FROM spans s WHERE s.trace_id IN (SELECT trace_id FROM items) GROUP BY 1"""



class DuckDBJudgeStore:
    """``tools.judges.ports.JudgeStore`` and ``ItemSource`` over a ``DuckDBTraceStore`` file."""

    def __init__(self, traces: DuckDBTraceStore) -> None:
        self.traces = traces

    # -- judge versions ------------------------------------------------------------------------
    def save_judge(self, record: JudgeRecord) -> JudgeRecord:
        """Store ``record`` as the next version of its name: ``seq`` is allocated here, in the writer's
        transaction (two callers that read the same versions still get two numbers); an identical
        version saved meanwhile is returned instead."""
        with self.traces.transaction() as con:
            rows = fetch_dicts(con.execute("SELECT * FROM judges WHERE name = $n ORDER BY seq DESC",
                                           {"n": record.name}))
            for row in rows:
                if row["version"] == record.version:
                    return self._judge(row)
            record = record.model_copy(update={"seq": rows[0]["seq"] + 1 if rows else 1})
            con.execute("INSERT INTO judges VALUES ($name, $version, $seq, $kind, $criterion, $spec, $d, $at)", {
                "name": record.name, "version": record.version, "seq": record.seq, "kind": record.kind,
                "criterion": record.criterion, "spec": json.dumps(record.spec), "d": record.description,
                "at": record.created_at_ms})
        return record

    @staticmethod
    def _judge(row: dict[str, Any]) -> JudgeRecord:
        return JudgeRecord(**{**row, "spec": json.loads(row["spec"])})

    def judge_versions(self, name: str) -> list[JudgeRecord]:
        with self.traces.reading() as con:
            rows = fetch_dicts(con.execute("SELECT * FROM judges WHERE name = $n ORDER BY seq DESC", {"n": name}))
        return [self._judge(r) for r in rows]

    def latest_judges(self) -> list[tuple[JudgeRecord, int]]:
        with self.traces.reading() as con:
            rows = fetch_dicts(con.execute("""
                SELECT * EXCLUDE (rn), count(*) OVER (PARTITION BY name) AS n_versions FROM (
                    SELECT *, row_number() OVER (PARTITION BY name ORDER BY seq DESC) AS rn FROM judges)
                QUALIFY rn = 1 ORDER BY name"""))
        return [(self._judge({k: v for k, v in r.items() if k != "n_versions"}), r["n_versions"]) for r in rows]

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        with self.traces.writing() as con:
            con.execute("""INSERT INTO judge_runs VALUES ($id, $target, $label, $judges, $model, $status, $started,
                           $finished, $beat, $total, $stats, $error)""", {
                "id": run.run_id, "target": run.target.model_dump_json(), "label": run.target_label,
                "judges": json.dumps(run.judges), "model": run.model, "status": run.status,
                "started": run.started_at_ms, "finished": run.finished_at_ms, "beat": run.heartbeat_ms,
                "total": run.items_total, "stats": json.dumps(run.stats), "error": run.error})

    def update_run(self, run_id: str, **fields: Any) -> None:
        allowed = {"status", "finished_at_ms", "heartbeat_ms", "stats", "error", "model", "items_total"}
        assert set(fields) <= allowed, set(fields) - allowed
        values = {k: json.dumps(v) if k == "stats" else v for k, v in fields.items()}
        sets = ", ".join(f"{k} = ${k}" for k in values)
        with self.traces.writing() as con:
            con.execute(f"UPDATE judge_runs SET {sets} WHERE run_id = $run_id", {**values, "run_id": run_id})

    @staticmethod
    def _run(row: dict[str, Any]) -> RunRecord:
        return RunRecord(**{**row, "target": Target.model_validate_json(row["target"]),
                            "judges": json.loads(row["judges"]), "stats": json.loads(row["stats"] or "{}")})

    def load_run(self, run_id: str) -> RunRecord | None:
        with self.traces.reading() as con:
            rows = fetch_dicts(con.execute("SELECT * FROM judge_runs WHERE run_id = $id", {"id": run_id}))
        return self._run(rows[0]) if rows else None

    def list_runs(self, *, limit: int, before: str | None) -> list[RunRecord]:
        where, params = "TRUE", {}
        if before:
            started, _, run_id = before.partition("|")
            where = "(started_at_ms < $s OR (started_at_ms = $s AND run_id < $r))"
            params = {"s": int(started), "r": run_id}
        with self.traces.reading() as con:
            rows = fetch_dicts(con.execute(f"SELECT * FROM judge_runs WHERE {where} ORDER BY started_at_ms DESC, "
                                     f"run_id DESC LIMIT {int(limit)}", params))
        return [self._run(r) for r in rows]

    # -- scores and cache ----------------------------------------------------------------------
    def finished_items(self, run_id: str, judge_version: str) -> set[str]:
        with self.traces.reading() as con:
            rows = con.execute("SELECT record_id FROM scores WHERE run_id = $r AND judge_version = $v AND error IS NULL",
                               {"r": run_id, "v": judge_version}).fetchall()
        return {r[0] for r in rows}

    def write_scores(self, rows: Sequence[ScoreRow], *, cache: Sequence[tuple[str, str, str, CachedReply]] = (),
                     heartbeat_ms: int | None = None) -> None:
        if not rows and not cache:
            return
        with self.traces.writing() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                if rows:
                    self._insert_scores(con, rows)
                    if heartbeat_ms is not None:
                        con.execute("UPDATE judge_runs SET heartbeat_ms = $at WHERE run_id = $r",
                                    {"at": heartbeat_ms, "r": rows[0].run_id})
                if cache:
                    self._insert_cache(con, cache)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    @staticmethod
    def _insert_scores(con: duckdb.DuckDBPyConnection, rows: Sequence[ScoreRow]) -> None:
        """Insert a batch; a retried item (its earlier attempt errored) replaces its old row."""
        for run_id, version in {(r.run_id, r.judge_version) for r in rows}:
            ids = [r.item_id for r in rows if r.run_id == run_id and r.judge_version == version]
            con.execute("DELETE FROM scores WHERE run_id = $r AND judge_version = $v AND record_id IN "
                        "(SELECT unnest($ids))", {"r": run_id, "v": version, "ids": ids})
        cols = {c: [getattr(r, c) for r in rows] for c in _SCORE_COLUMNS}
        unnest = ", ".join(f"unnest(CAST(${c} AS {_TYPES.get(c, 'VARCHAR')}[])) AS {c}" for c in _SCORE_COLUMNS)
        con.execute(f"""INSERT INTO scores (run_id, judge, trace_id, verdict, score, value, rationale, created_at_ms,
                            judge_version, record_id, latency_ms, input_tokens, output_tokens, cost_usd, error,
                            cache_key, cached)
                        SELECT run_id, judge, trace_id, verdict, score, NULL, rationale, created_at_ms, judge_version,
                            item_id, latency_ms, input_tokens, output_tokens, cost_usd, error, cache_key, cached
                        FROM (SELECT {unnest})""", cols)

    @staticmethod
    def _insert_cache(con: duckdb.DuckDBPyConnection, cache: Sequence[tuple[str, str, str, CachedReply]]) -> None:
        fresh = {key: (version, model, reply) for key, version, model, reply in cache}
        con.execute("""
            INSERT INTO judge_cache
            SELECT k, v, m, verdict, score, rationale, ti, tout, cost, epoch_ms(now()) FROM (
                SELECT unnest($k) AS k, unnest($v) AS v, unnest($m) AS m, unnest($verdict) AS verdict,
                       unnest(CAST($score AS DOUBLE[])) AS score, unnest(CAST($rationale AS VARCHAR[])) AS rationale,
                       unnest(CAST($ti AS BIGINT[])) AS ti, unnest(CAST($to AS BIGINT[])) AS tout,
                       unnest(CAST($cost AS DOUBLE[])) AS cost)
            WHERE k NOT IN (SELECT cache_key FROM judge_cache)""", {
            "k": list(fresh), "v": [e[0] for e in fresh.values()], "m": [e[1] for e in fresh.values()],
            "verdict": [e[2].verdict for e in fresh.values()], "score": [e[2].score for e in fresh.values()],
            "rationale": [e[2].rationale for e in fresh.values()],
            "ti": [e[2].input_tokens for e in fresh.values()], "to": [e[2].output_tokens for e in fresh.values()],
            "cost": [e[2].cost_usd for e in fresh.values()]})

    def cache_get(self, keys: Sequence[str]) -> dict[str, CachedReply]:
        if not keys:
            return {}
        with self.traces.reading() as con:
            rows = fetch_dicts(con.execute("""SELECT cache_key, verdict, score, rationale, input_tokens, output_tokens,
                                        cost_usd FROM judge_cache WHERE cache_key IN (SELECT unnest($k))""",
                                     {"k": list(keys)}))
        return {r.pop("cache_key"): CachedReply(**r) for r in rows}

    def run_summary(self, run_id: str) -> list[dict[str, Any]]:
        with self.traces.reading() as con:
            return fetch_dicts(con.execute("""
                SELECT judge_version, count(*) AS scored, count(*) FILTER (WHERE verdict = 'pass') AS passed,
                       count(*) FILTER (WHERE verdict = 'fail') AS failed,
                       count(*) FILTER (WHERE verdict = 'unknown') AS unknown,
                       round(min(score), 4) AS min, round(quantile_cont(score, 0.25), 4) AS p25,
                       round(median(score), 4) AS median, round(quantile_cont(score, 0.75), 4) AS p75,
                       round(max(score), 4) AS max, round(avg(score), 4) AS mean,
                       (list(trace_id ORDER BY record_id) FILTER (WHERE verdict = 'fail'))[1:5] AS first_failing,
                       count(*) FILTER (WHERE error IS NOT NULL) AS errors,
                       min(error) FILTER (WHERE error IS NOT NULL) AS first_error,
                       count(*) FILTER (WHERE cached) AS cache_hits, sum(input_tokens) AS input_tokens,
                       sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd
                FROM scores WHERE run_id = $r GROUP BY judge_version""", {"r": run_id}))

    def run_results(self, run_id: str, *, judge: str | None, verdict: str | None, after: tuple[str, str] | None,
                    limit: int) -> list[dict[str, Any]]:
        where, params = ["run_id = $r"], {"r": run_id}
        if judge:
            where.append("judge = $j")
            params["j"] = judge.split("@")[0]
        if verdict:
            where.append("verdict = $v")
            params["v"] = verdict
        if after:
            where.append("(judge > $aj OR (judge = $aj AND record_id > $ai))")
            params.update(aj=after[0], ai=after[1])
        with self.traces.reading() as con:
            return fetch_dicts(con.execute(f"""
                SELECT judge, trace_id, record_id AS item_id, verdict, score, rationale, error,
                       coalesce(cached, FALSE) AS cached, latency_ms
                FROM scores WHERE {' AND '.join(where)} ORDER BY judge, record_id LIMIT {int(limit)}""", params))

    # -- items ---------------------------------------------------------------------------------
    def _dataset(self, con: duckdb.DuckDBPyConnection, ref: str) -> tuple[str, int, int, bool]:
        name, _, version = ref.partition("@")
        rows = con.execute("SELECT version, record_count, redaction_report FROM datasets WHERE name = $n "
                           "ORDER BY version DESC", {"n": name}).fetchall()
        if not rows:
            names = [r[0] for r in con.execute("SELECT DISTINCT name FROM datasets ORDER BY 1").fetchall()]
            close = difflib.get_close_matches(name, names, n=1)
            raise NotFoundError(f"No dataset named {name!r}." + (f" Did you mean {close[0]!r}?" if close else "") +
                                (f" Existing: {', '.join(names[:10])}." if names else
                                 " No datasets exist yet: build one with build_dataset_from_tags."))
        if version and not version.isdigit():
            raise InvalidInputError(f"Dataset version {version!r} is not a number. Use 'name@3', or the bare name "
                                    "for the latest version.")
        chosen = [r for r in rows if not version or r[0] == int(version)]
        if not chosen:
            raise NotFoundError(f"Dataset {name!r} has no version {version}. Versions: "
                                f"{', '.join(str(r[0]) for r in reversed(rows))}.")
        redaction = json.loads(chosen[0][2] or "{}")
        return name, chosen[0][0], chosen[0][1], bool(redaction.get("enabled"))

    def _items_cte(self, target: Target, *, in_progress: bool = False) -> tuple[str, dict[str, Any]]:
        """``items(item_id, trace_id, raw_in, raw_out, expectations)`` for the target (with ``in_progress``,
        the IN_PROGRESS traces it skips instead)."""
        limit = f"LIMIT {int(target.max_items)}" if target.max_items else ""
        if target.dataset:
            name, _, version = target.dataset.partition("@")
            return (f"""SELECT record_id AS item_id, trace_id, CAST(inputs AS VARCHAR) AS raw_in,
                        CAST(outputs AS VARCHAR) AS raw_out, CAST(expectations AS VARCHAR) AS expectations
                        FROM dataset_records WHERE name = $j_ds AND version = $j_dv ORDER BY position {limit}""",
                    {"j_ds": name, "j_dv": int(version)})
        now = int(target.now_ms or 0)
        expr = parser.parse(target.filter) if target.filter and target.filter.strip() else None
        where, params = self.traces.where(expr, now)
        if target.window_ms:
            where += " AND t.timestamp_ms > $j_from AND t.timestamp_ms <= $j_now"
            params.update(j_from=now - target.window_ms, j_now=now)
        if target.sample_rate < 1:
            where += " AND hash(t.trace_id) % 1000000 < $j_ppm"
            params["j_ppm"] = int(target.sample_rate * 1_000_000)
        if not target.include_in_progress and not in_progress:  # their root span (the answer) is still missing
            where += " AND t.status <> 'IN_PROGRESS'"
        elif in_progress:
            where += " AND t.status = 'IN_PROGRESS'"
        order = "ORDER BY hash(t.trace_id), t.trace_id" if limit else ""
        return (f"""SELECT t.trace_id AS item_id, t.trace_id, t.request AS raw_in, t.response AS raw_out,
                    CAST(NULL AS VARCHAR) AS expectations FROM traces t WHERE {where} {order} {limit}""", params)

    def _base(self, target: Target, *, spans: bool, page: str = "") -> tuple[str, dict[str, Any]]:
        items, params = self._items_cte(target)
        span_cols = ", sp.retrieved, sp.tool_calls, sp.error_spans" if spans else ""
        span_join = "LEFT JOIN sp ON sp.trace_id = i.trace_id" if spans else ""
        sql = f"""WITH items AS ({items}), page AS (SELECT * FROM items {page}),
                  {'sp AS (' + _SPANS.replace('FROM items', 'FROM page') + '),' if spans else ''}
                  base AS (
                    SELECT i.item_id, i.trace_id, i.expectations, t.status, t.execution_time_ms AS latency_ms,
                           t.input_tokens, t.output_tokens, CAST(t.metadata AS VARCHAR) AS metadata,
                           {extract_sql('i.raw_in', INPUT_PATHS)} AS input_text,
                           {extract_sql('i.raw_out', OUTPUT_PATHS)} AS output_text {span_cols}
                    FROM page i LEFT JOIN traces t ON t.trace_id = i.trace_id {span_join})"""
        return sql, params

    def resolve(self, target: Target) -> ResolvedTarget:
        if target.dataset:
            with self.traces.reading() as con:
                name, version, count, redacted = self._dataset(con, target.dataset)
            fixed = target.model_copy(update={"dataset": f"{name}@{version}"})
            return ResolvedTarget(target=fixed, redacted=redacted,
                                  items=min(count, target.max_items) if target.max_items else count)
        items, params = self._items_cte(target)
        skipped_sql, skipped_params = self._items_cte(target, in_progress=True)
        with self.traces.reading() as con:
            count = con.execute(f"SELECT count(*) FROM ({items})", params).fetchone()[0]
            skipped = 0 if target.include_in_progress else con.execute(
                f"SELECT count(*) FROM ({skipped_sql})", skipped_params).fetchone()[0]
        return ResolvedTarget(target=target, items=count, skipped_in_progress=skipped)

    def items(self, target: Target, *, after: str | None, limit: int) -> list[Item]:
        page = "WHERE item_id > $j_after " if after is not None else ""
        sql, params = self._base(target, spans=True, page=page + f"ORDER BY item_id LIMIT {int(limit)}")
        if after is not None:
            params["j_after"] = after
        with self.traces.reading() as con:
            rows = fetch_dicts(con.execute(sql + " SELECT * FROM base ORDER BY item_id", params))
        return [self._item(r) for r in rows]

    @staticmethod
    def _item(r: dict[str, Any]) -> Item:
        retrieved = r["retrieved"] or []
        return Item(item_id=r["item_id"], trace_id=r["trace_id"] or r["item_id"], input=r["input_text"],
                    output=r["output_text"], retrieved=[d["text"] for d in retrieved],
                    retriever_names=[d["name"] for d in retrieved],
                    tool_calls=[ToolCall(**c) for c in r["tool_calls"] or []], status=r["status"],
                    latency_ms=r["latency_ms"], input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
                    error_spans=[ErrorSpan(**e) for e in r["error_spans"] or []], metadata=json.loads(r["metadata"] or "{}"),
                    expectations=json.loads(r["expectations"] or "{}") or {})

    def labeled_items(self, criterion: str) -> list[tuple[Item, str]]:
        with self.traces.reading() as con:
            labels = dict(con.execute("""SELECT trace_id, arg_max(value, (created_at_ms, label_id)) FROM labels
                                         WHERE criterion = $c GROUP BY 1""", {"c": criterion}).fetchall())
        items: list[Item] = []
        ids = sorted(labels)
        for start in range(0, len(ids), 500):
            items += self._items_by_id(ids[start:start + 500])
        return [(item, labels[item.trace_id]) for item in items]

    def _items_by_id(self, trace_ids: list[str]) -> list[Item]:
        sql, params = self._base(Target(filter=None, now_ms=0), spans=True, page="WHERE item_id IN (SELECT unnest($j_ids))")
        params["j_ids"] = trace_ids
        with self.traces.reading() as con:
            return [self._item(r) for r in fetch_dicts(con.execute(sql + " SELECT * FROM base ORDER BY item_id", params))]

    # -- rules in SQL --------------------------------------------------------------------------
    def bulk_rule_scores(self, run_id: str, judge: JudgeRecord, target: Target, now_ms: int) -> int | None:
        rule = rule_sql.compile_rule(_SPEC.validate_python(judge.spec))
        if rule is None:
            return None
        sql, params = self._base(target, spans=rule.needs_spans)
        layer = "SELECT * FROM base"
        for name, expr in rule.pre.items():
            layer = f"SELECT *, {expr} AS {name} FROM ({layer})"
        params.update(rule.params)
        params.update(j_run=run_id, j_judge=judge.name, j_version=judge.version, j_at=now_ms)
        statement = f"""{sql}
            INSERT INTO scores (run_id, judge, trace_id, verdict, score, value, rationale, created_at_ms,
                                judge_version, record_id, cached)
            SELECT $j_run, $j_judge, coalesce(trace_id, item_id), {rule.verdict}, {rule.score}, NULL, {rule.reason},
                   $j_at, $j_version, item_id, FALSE FROM ({layer}) r
            WHERE NOT EXISTS (SELECT 1 FROM scores x WHERE x.run_id = $j_run AND x.judge_version = $j_version
                              AND x.record_id = r.item_id)"""
        with self.traces.writing() as con:
            for name in ("j_pattern", "j_cite"):   # RE2 rejects some Python regexes: Python evaluates those
                if name in params:
                    try:
                        con.execute("SELECT regexp_matches('', $p)", {"p": params[name]}).fetchall()
                    except duckdb.Error:
                        return None
            return con.execute(statement, params).fetchone()[0]
