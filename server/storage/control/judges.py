"""The control-plane half of the judges family: judge versions, runs, the model-call cache.

Tables from ``migrations/c002_judges.py``, in SQLite beside a chdb store or in PostgreSQL. A new
judge version's ``seq`` is allocated inside the transaction that inserts it, under
``plane.lock('judges:' + name)``: two servers defining versions of one judge at once get
consecutive numbers, and two defining the same spec get one row (the second finds the first's).

``committed_dataset`` is the one place that reads a dataset header (the datasets family's
``datasets`` table, control migration c001): a dataset version exists for judging only once
its header committed, after its records were written to ClickHouse.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.storage.control.plane import ControlPlane
from tools.judges.ports import CachedReply, JudgeRecord, RunRecord, Target

_RUN_FIELDS = {"status", "finished_at_ms", "heartbeat_ms", "stats", "error", "model", "items_total"}


def _judge(row: Any) -> JudgeRecord:
    data = dict(row._mapping)
    return JudgeRecord(**{**data, "spec": json.loads(data["spec"])})


def _run(row: Any) -> RunRecord:
    data = dict(row._mapping)
    return RunRecord(**{**data, "target": Target.model_validate_json(data["target"]),
                        "judges": json.loads(data["judges"]), "stats": json.loads(data["stats"] or "{}")})


class ControlJudges:
    """Judge versions, runs and the cache in the control plane."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    # -- judge versions ------------------------------------------------------------------------
    def save_judge(self, record: JudgeRecord) -> JudgeRecord:
        """Store ``record`` as the next version of its name (``seq`` re-allocated under the lock);
        an identical version stored meanwhile by another server is returned instead."""
        for attempt in range(3):
            try:
                with self.plane.transaction() as conn:
                    self.plane.lock(conn, "judges:" + record.name)
                    rows = conn.execute(sa.text("SELECT * FROM judges WHERE name = :n ORDER BY seq DESC"),
                                        {"n": record.name}).fetchall()
                    for row in rows:
                        if row.version == record.version:
                            return _judge(row)
                    saved = record.model_copy(update={"seq": (rows[0].seq + 1) if rows else 1})
                    conn.execute(sa.text(
                        "INSERT INTO judges (name, version, seq, kind, criterion, spec, description, created_at_ms) "
                        "VALUES (:name, :version, :seq, :kind, :criterion, :spec, :description, :created_at_ms)"),
                        {**saved.model_dump(), "spec": json.dumps(saved.spec)})
                    return saved
            except IntegrityError:   # another server won the key between our read and insert: read again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def judge_versions(self, name: str) -> list[JudgeRecord]:
        with self.plane.reading() as conn:
            rows = conn.execute(sa.text("SELECT * FROM judges WHERE name = :n ORDER BY seq DESC"), {"n": name})
            return [_judge(r) for r in rows]

    def latest_judges(self) -> list[tuple[JudgeRecord, int]]:
        with self.plane.reading() as conn:
            rows = conn.execute(sa.text("""
                SELECT j.*, c.n AS n_versions FROM judges j
                JOIN (SELECT name, max(seq) AS top, count(*) AS n FROM judges GROUP BY name) c
                  ON c.name = j.name AND c.top = j.seq
                ORDER BY j.name""")).fetchall()
        out = []
        for row in rows:
            data = dict(row._mapping)
            n = int(data.pop("n_versions"))
            out.append((JudgeRecord(**{**data, "spec": json.loads(data["spec"])}), n))
        return out

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        with self.plane.transaction() as conn:
            conn.execute(sa.text("""
                INSERT INTO judge_runs (run_id, target, target_label, judges, model, status, started_at_ms,
                    finished_at_ms, heartbeat_ms, items_total, stats, error)
                VALUES (:id, :target, :label, :judges, :model, :status, :started, :finished, :beat, :total,
                    :stats, :error)"""), {
                "id": run.run_id, "target": run.target.model_dump_json(), "label": run.target_label,
                "judges": json.dumps(run.judges), "model": run.model, "status": run.status,
                "started": run.started_at_ms, "finished": run.finished_at_ms, "beat": run.heartbeat_ms,
                "total": run.items_total, "stats": json.dumps(run.stats), "error": run.error})

    def update_run(self, run_id: str, **fields: Any) -> None:
        assert set(fields) <= _RUN_FIELDS, set(fields) - _RUN_FIELDS
        values = {k: json.dumps(v) if k == "stats" else v for k, v in fields.items()}
        if not values:
            return
        sets = ", ".join(f"{k} = :{k}" for k in values)   # names from _RUN_FIELDS only
        with self.plane.transaction() as conn:
            conn.execute(sa.text(f"UPDATE judge_runs SET {sets} WHERE run_id = :run_id"), {**values, "run_id": run_id})

    def load_run(self, run_id: str) -> RunRecord | None:
        with self.plane.reading() as conn:
            row = conn.execute(sa.text("SELECT * FROM judge_runs WHERE run_id = :id"), {"id": run_id}).first()
        return _run(row) if row is not None else None

    def list_runs(self, *, limit: int, before: str | None) -> list[RunRecord]:
        where, params = "1 = 1", dict[str, Any]()
        if before:
            started, _, run_id = before.partition("|")
            where = "(started_at_ms < :s OR (started_at_ms = :s AND run_id < :r))"
            params = {"s": int(started), "r": run_id}
        with self.plane.reading() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM judge_runs WHERE {where} ORDER BY started_at_ms DESC, "
                                        "run_id DESC LIMIT :lim"), {**params, "lim": int(limit)}).fetchall()
        return [_run(r) for r in rows]

    # -- heartbeat and cache (one transaction, after the scores reached ClickHouse) ---------------
    def after_scores(self, run_id: str | None, heartbeat_ms: int | None,
                     cache: Sequence[tuple[str, str, str, CachedReply]], now_ms: int) -> None:
        if run_id is None and not cache:
            return
        fresh = {key: (version, model, reply) for key, version, model, reply in cache}
        with self.plane.transaction() as conn:
            if run_id is not None and heartbeat_ms is not None:
                conn.execute(sa.text("UPDATE judge_runs SET heartbeat_ms = :at WHERE run_id = :r"),
                             {"at": heartbeat_ms, "r": run_id})
            if fresh:
                conn.execute(sa.text("""
                    INSERT INTO judge_cache (cache_key, judge_version, model, verdict, score, rationale,
                        input_tokens, output_tokens, cost_usd, created_at_ms)
                    VALUES (:k, :v, :m, :verdict, :score, :rationale, :ti, :tout, :cost, :at)
                    ON CONFLICT (cache_key) DO NOTHING"""), [
                    {"k": k, "v": v, "m": m, "verdict": r.verdict, "score": r.score, "rationale": r.rationale,
                     "ti": r.input_tokens, "tout": r.output_tokens, "cost": r.cost_usd, "at": now_ms}
                    for k, (v, m, r) in fresh.items()])

    def cache_get(self, keys: Sequence[str]) -> dict[str, CachedReply]:
        if not keys:
            return {}
        query = sa.text("""SELECT cache_key, verdict, score, rationale, input_tokens, output_tokens, cost_usd
                           FROM judge_cache WHERE cache_key IN :keys""").bindparams(
            sa.bindparam("keys", expanding=True))
        found: dict[str, CachedReply] = {}
        with self.plane.reading() as conn:
            for start in range(0, len(keys), 500):
                for row in conn.execute(query, {"keys": list(keys[start:start + 500])}):
                    data = dict(row._mapping)
                    found[data.pop("cache_key")] = CachedReply(**data)
        return found

    # -- dataset headers (the datasets family's table) ------------------------------------------
    def committed_versions(self, name: str) -> list[dict[str, Any]]:
        """Committed versions of dataset ``name``, newest first: ``version``, ``record_count`` and
        ``redaction_report`` (JSON text) of each header row."""
        with self.plane.reading() as conn:
            rows = conn.execute(sa.text("SELECT version, record_count, redaction_report FROM datasets "
                                        "WHERE name = :n ORDER BY version DESC"), {"n": name})
            return [dict(r._mapping) for r in rows]

    def records_batch(self, name: str, version: int) -> str | None:
        """The records batch the committed header of ``name@version`` names (None: not committed)."""
        with self.plane.reading() as conn:
            return conn.execute(sa.text("SELECT records_batch FROM datasets WHERE name = :n AND version = :v"),
                                {"n": name, "v": version}).scalar_one_or_none()

    def dataset_names(self) -> list[str]:
        with self.plane.reading() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT DISTINCT name FROM datasets ORDER BY name"))]
