"""ClickHouse adapter of the judges feature: ``tools.judges.ports.JudgeStore`` and ``ItemSource``.

The twin of ``server/storage/duckdb/judges_sql.py``, split by size of data: scores (one row per
item, judge and run: the big part) live in ClickHouse's ``scores`` table beside the traces they
judge; judge versions, runs and the model-call cache are small transactional state in the
control plane (``server/storage/control/judges.py``). Items are built in ClickHouse SQL
(``judge_items``) and rule judges run there in one ``INSERT … SELECT`` (``rule_sql``).

``scores`` is a ``ReplacingMergeTree`` keyed by (run_id, judge, trace_id, record_id), so a
retried item (its earlier attempt errored) is a newer version of the same row, and every read
goes through the client's de-duplicating helpers. A batch's scores reach ClickHouse before the
run's heartbeat and cache entries commit in the control plane: a kill in between loses only
cache entries, never a score a resumed run would then skip.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from pydantic import TypeAdapter
from sqlalchemy.exc import DBAPIError

from server.storage.clickhouse import judge_items, rule_sql
from server.storage.clickhouse.client import next_version
from server.storage.clickhouse.store import ClickHouseTraceStore
from server.storage.control.judges import ControlJudges
from server.storage.control.plane import ControlPlane
from tools import clock
from tools.errors import InvalidInputError, NotFoundError
from tools.judges.ports import (CachedReply, Item, JudgeRecord, ResolvedTarget, RunRecord, ScoreRow, Target)
from tools.judges.specs import JudgeSpec

_SCORE_COLUMNS = ("run_id", "judge", "judge_version", "trace_id", "item_id", "verdict", "score", "rationale",
                  "latency_ms", "input_tokens", "output_tokens", "cost_usd", "error", "cache_key", "cached",
                  "created_at_ms")
_STORED_COLUMNS = tuple("record_id" if c == "item_id" else c for c in _SCORE_COLUMNS) + ("version", "is_deleted")
_SPEC = TypeAdapter(JudgeSpec)

_SUMMARY = """
    SELECT judge_version, count() AS scored, countIf(verdict = 'pass') AS passed,
        countIf(verdict = 'fail') AS failed, countIf(verdict = 'unknown') AS unknown,
        round(min(score), 4) AS min, round(quantileExactInclusive(0.25)(score), 4) AS p25,
        round(quantileExactInclusive(0.5)(score), 4) AS median, round(quantileExactInclusive(0.75)(score), 4) AS p75,
        round(max(score), 4) AS max, round(avg(score), 4) AS mean,
        arraySlice(arrayMap(x -> x.2, arraySort(groupArrayIf((record_id, trace_id), verdict = 'fail'))), 1, 5)
            AS first_failing,
        countIf(error IS NOT NULL) AS errors, minIf(error, error IS NOT NULL) AS first_error,
        countIf(cached) AS cache_hits, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(cost_usd) AS cost_usd
    FROM scores WHERE run_id = {r:String} GROUP BY judge_version ORDER BY judge_version"""


class ClickHouseJudgeStore:
    """Judges over a ``ClickHouseTraceStore`` (scores, items) and a ``ControlPlane`` (the rest)."""

    def __init__(self, store: ClickHouseTraceStore, control: ControlPlane) -> None:
        self.traces = store
        self.client = store.client
        self.control = ControlJudges(control)

    # -- judge versions and runs: the control plane ----------------------------------------------
    def save_judge(self, record: JudgeRecord) -> JudgeRecord:
        return self.control.save_judge(record)

    def judge_versions(self, name: str) -> list[JudgeRecord]:
        return self.control.judge_versions(name)

    def latest_judges(self) -> list[tuple[JudgeRecord, int]]:
        return self.control.latest_judges()

    def create_run(self, run: RunRecord) -> None:
        self.control.create_run(run)

    def update_run(self, run_id: str, **fields: Any) -> None:
        self.control.update_run(run_id, **fields)

    def load_run(self, run_id: str) -> RunRecord | None:
        return self.control.load_run(run_id)

    def list_runs(self, *, limit: int, before: str | None) -> list[RunRecord]:
        return self.control.list_runs(limit=limit, before=before)

    def cache_get(self, keys: Sequence[str]) -> dict[str, CachedReply]:
        return self.control.cache_get(keys)

    # -- scores: ClickHouse --------------------------------------------------------------------
    def finished_items(self, run_id: str, judge_version: str) -> set[str]:
        return {r[0] for r in self.client.read(
            "SELECT record_id FROM scores WHERE run_id = {r:String} AND judge_version = {v:String} "
            "AND error IS NULL", {"r": run_id, "v": judge_version})}

    def write_scores(self, rows: Sequence[ScoreRow], *, cache: Sequence[tuple[str, str, str, CachedReply]] = (),
                     heartbeat_ms: int | None = None) -> None:
        """Scores first (one insert, one part: all or nothing on a node), then the heartbeat and the
        cache entries in one control-plane transaction."""
        if not rows and not cache:
            return
        version = next_version()
        self.client.insert("scores", [[*(getattr(r, c) for c in _SCORE_COLUMNS), version, 0] for r in rows],
                           _STORED_COLUMNS)
        self.control.after_scores(rows[0].run_id if rows else None, heartbeat_ms, cache, clock.now_ms())

    def run_summary(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.client.read_dicts(_SUMMARY, {"r": run_id})
        return [{**r, "first_failing": list(r["first_failing"]), "cache_hits": int(r["cache_hits"])} for r in rows]

    def run_results(self, run_id: str, *, judge: str | None, verdict: str | None, after: tuple[str, str] | None,
                    limit: int) -> list[dict[str, Any]]:
        where, params = ["run_id = {r:String}"], {"r": run_id}
        if judge:
            where.append("judge = {j:String}")
            params["j"] = judge.split("@")[0]
        if verdict:
            where.append("verdict = {v:String}")
            params["v"] = verdict
        if after:
            where.append("(judge > {aj:String} OR (judge = {aj:String} AND record_id > {ai:String}))")
            params.update(aj=after[0], ai=after[1])
        rows = self.client.read_dicts(f"""
            SELECT judge, trace_id, record_id AS item_id, verdict, score, rationale, error,
                   coalesce(cached, 0) AS cached, latency_ms
            FROM scores WHERE {' AND '.join(where)} ORDER BY judge, record_id LIMIT {int(limit)}""", params)
        return [{**r, "cached": bool(r["cached"])} for r in rows]

    # -- items ---------------------------------------------------------------------------------
    def _items_sql(self, target: Target, *, in_progress: bool = False) -> tuple[str, dict[str, Any]]:
        batch = None
        if target.dataset:
            name, _, version = target.dataset.partition("@")
            batch = self.control.records_batch(name, int(version))
        return judge_items.items_sql(target, in_progress=in_progress, batch=batch)

    def _dataset(self, ref: str) -> tuple[str, int, int, bool]:
        name, _, version = ref.partition("@")
        try:
            rows = self.control.committed_versions(name)
            names = [] if rows else self.control.dataset_names()
        except DBAPIError:   # the datasets family's table is not in this control plane yet
            rows, names = [], []
        if not rows:
            close = difflib.get_close_matches(name, names, n=1)
            raise NotFoundError(f"No dataset named {name!r}." + (f" Did you mean {close[0]!r}?" if close else "") +
                                (f" Existing: {', '.join(names[:10])}." if names else
                                 " No datasets exist yet: build one with build_dataset_from_tags."))
        if version and not version.isdigit():
            raise InvalidInputError(f"Dataset version {version!r} is not a number. Use 'name@3', or the bare name "
                                    "for the latest version.")
        chosen = [r for r in rows if not version or r["version"] == int(version)]
        if not chosen:
            raise NotFoundError(f"Dataset {name!r} has no version {version}. Versions: "
                                f"{', '.join(str(r['version']) for r in reversed(rows))}.")
        redaction = json.loads(chosen[0]["redaction_report"] or "{}")
        return name, int(chosen[0]["version"]), int(chosen[0]["record_count"]), bool(redaction.get("enabled"))

    def resolve(self, target: Target) -> ResolvedTarget:
        if target.dataset:
            name, version, count, redacted = self._dataset(target.dataset)
            fixed = target.model_copy(update={"dataset": f"{name}@{version}"})
            return ResolvedTarget(target=fixed, redacted=redacted,
                                  items=min(count, target.max_items) if target.max_items else count)
        items, params = self._items_sql(target)
        count = self.client.read(f"SELECT count() FROM ({items})", params)[0][0]
        skipped = 0
        if not target.include_in_progress:
            skipped_sql, skipped_params = self._items_sql(target, in_progress=True)
            skipped = self.client.read(f"SELECT count() FROM ({skipped_sql})", skipped_params)[0][0]
        return ResolvedTarget(target=target, items=int(count), skipped_in_progress=int(skipped))

    def _read_items(self, target: Target, page: str, extra: dict[str, Any]) -> list[Item]:
        items, params = self._items_sql(target)
        sql = judge_items.base_sql(items, spans=True, page=page)
        rows = self.client.read_dicts(sql + " SELECT * FROM base ORDER BY item_id", {**params, **extra})
        return [judge_items.to_item(r) for r in rows]

    def items(self, target: Target, *, after: str | None, limit: int) -> list[Item]:
        page = ("WHERE item_id > {j_after:String} " if after is not None else "") + f"ORDER BY item_id LIMIT {int(limit)}"
        return self._read_items(target, page, {"j_after": after} if after is not None else {})

    def labeled_items(self, criterion: str) -> list[tuple[Item, str]]:
        """Traces with a human label for ``criterion`` (the newest label per trace counts)."""
        labels = dict(self.client.read(
            "SELECT trace_id, argMax(value, (created_at_ms, label_id)) FROM labels WHERE criterion = {c:String} "
            "GROUP BY trace_id", {"c": criterion}))
        ids = sorted(labels)
        items: list[Item] = []
        for start in range(0, len(ids), 500):
            items += self._read_items(Target(filter=None, now_ms=0), "WHERE item_id IN {j_ids:Array(String)}",
                                      {"j_ids": ids[start:start + 500]})
        return [(item, labels[item.trace_id]) for item in items]

    # -- rules in SQL --------------------------------------------------------------------------
    def _regex_ok(self, rule: rule_sql.RuleSql) -> bool:
        """RE2 rejects some Python regexes (look-arounds, backreferences): Python evaluates those."""
        for name in rule.regexes:
            try:
                self.client.read("SELECT match('', {p:String})", {"p": rule.params[name]})
            except ClickHouseError:
                return False
        return True

    def _scored(self, run_id: str, judge_version: str) -> int:
        return int(self.client.read("SELECT count() FROM scores WHERE run_id = {r:String} AND "
                                    "judge_version = {v:String}", {"r": run_id, "v": judge_version})[0][0])

    def bulk_rule_scores(self, run_id: str, judge: JudgeRecord, target: Target, now_ms: int) -> int | None:
        """Score every not yet scored item of ``target`` with a rule judge in one ``INSERT … SELECT``;
        None when the rule needs Python. Returns the rows written."""
        rule = rule_sql.compile_rule(_SPEC.validate_python(judge.spec))
        if rule is None or not self._regex_ok(rule):
            return None
        items, params = self._items_sql(target)
        base = judge_items.base_sql(items, spans=rule.needs_spans)
        layer = "SELECT * FROM base"
        for name, expr in rule.pre.items():
            layer = f"SELECT *, {expr} AS {name} FROM ({layer})"
        params.update(rule.params)
        params.update(j_run=run_id, j_judge=judge.name, j_version=judge.version, j_at=now_ms, j_row=next_version())
        before = self._scored(run_id, judge.version)
        self.client.command(f"""
            INSERT INTO scores (run_id, judge, trace_id, verdict, score, rationale, created_at_ms, judge_version,
                                record_id, cached, version, is_deleted)
            {base}
            SELECT {{j_run:String}}, {{j_judge:String}}, if(r.trace_id = '', r.item_id, r.trace_id),
                   {rule.verdict}, {rule.score}, {rule.reason}, {{j_at:Int64}}, {{j_version:String}}, r.item_id, 0,
                   {{j_row:UInt64}}, 0
            FROM ({layer}) AS r
            WHERE r.item_id NOT IN (SELECT record_id FROM scores WHERE run_id = {{j_run:String}}
                                    AND judge_version = {{j_version:String}})""", params)
        return self._scored(run_id, judge.version) - before
