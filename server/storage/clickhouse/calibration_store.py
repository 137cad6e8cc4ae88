"""ClickHouse adapter for ``tools.calibration.agreement.CalibrationStore`` and
``tools.calibration.regression.RegressionStore`` (mirrors ``server/storage/duckdb/calibration_sql.py``).

The joins that touch many rows run in ClickHouse: the current human label per (trace, criterion)
(the newest row, ``LIMIT 1 BY``: labels stay append-only), the judge's newest verdict per trace or
per item, and the slice attributes of the traces a run scored. The few transactional rows come
from the control plane: stored calibrations (c004), the annotation queue's selection
probabilities (c003, the labels family) and the judges' criteria (c002, the judges family); a
table a family has not created yet reads as empty. The statistics stay in ``tools``.

``scores.record_id`` is '' (not NULL) for a trace-targeted run: the pairing key is the record when
there is one, else the trace, as DuckDB's ``coalesce(record_id, trace_id)``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from server.storage.clickhouse.store import ClickHouseTraceStore
from server.storage.control.datasets import DatasetHeaders
from server.storage.control.plane import ControlPlane
from tools.calibration.agreement import CalibrationReportResult, Pair
from tools.calibration.regression import CalibrationStatus, RunScore

#: The pairing key of a score row: its dataset record, else its trace.
KEY_SQL = "if(sc.record_id = '', sc.trace_id, sc.record_id)"
_SLICE_COLUMNS = {"model": "t.model", "prompt_version": "t.prompt_version", "environment": "t.environment",
                  "name": "t.name", "status": "t.status"}


def current_labels_sql(criterion_param: str, *, people_only: bool) -> str:
    """The current label of each trace on one criterion (``{criterion_param:String}``): the newest row,
    ties broken by label id as DuckDB's ``current_labels``. ``people_only`` first drops labels an agent
    recorded (reviewer 'agent:…'; a NULL reviewer is dropped too, as in DuckDB's ``PEOPLE_LABELS``)."""
    people = "AND NOT startsWith(l.reviewer, 'agent:')" if people_only else ""
    return (f"SELECT l.trace_id, l.value, l.numeric_value, l.rationale, l.reviewer, l.created_at_ms FROM labels AS l "
            f"WHERE l.criterion = {{{criterion_param}:String}} {people} "
            "ORDER BY l.created_at_ms DESC, l.label_id DESC LIMIT 1 BY l.trace_id")


def json_text(doc: str, key_param: str) -> str:
    """A top-level JSON value of ``doc`` as text (strings unquoted), NULL when absent or null, as DuckDB's
    ``json_extract_string``."""
    args = f"{doc}, {{{key_param}:String}}"
    return (f"multiIf(NOT JSONHas({args}), NULL, JSONType({args}) = 'String', JSONExtractString({args}), "
            f"JSONType({args}) = 'Null', NULL, JSONExtractRaw({args}))")


def _has_table(conn: sa.Connection, table: str) -> bool:
    return sa.inspect(conn).has_table(table)


class ClickHouseCalibrationStore:
    """Calibration pairs and run verdicts from ClickHouse; stored calibrations in the control plane."""

    def __init__(self, store: ClickHouseTraceStore, control: ControlPlane, *, people_only: bool = False) -> None:
        self.store = store
        self.client = store.client
        self.control = control
        self.people_only = people_only

    def restricted(self, *, people_only: bool) -> ClickHouseCalibrationStore:
        """This store, reading only the labels people recorded when ``people_only``."""
        return ClickHouseCalibrationStore(self.store, self.control, people_only=True) if people_only else self

    @contextmanager
    def session(self) -> Iterator[ClickHouseCalibrationStore]:
        """A report's queries need no held connection here (DuckDB's adapter holds its file open)."""
        yield self

    # -- names, for errors that suggest the closest one ---------------------------------------
    def judge_names(self) -> list[str]:
        return [r[0] for r in self.client.read("SELECT DISTINCT judge FROM scores ORDER BY judge")]

    def judge_criterion(self, judge: str) -> str | None:
        with self.control.reading() as conn:
            if not _has_table(conn, "judges"):
                return None
            return conn.execute(sa.text("SELECT criterion FROM judges WHERE name = :j ORDER BY created_at_ms DESC "
                                        "LIMIT 1"), {"j": judge}).scalar()

    def label_criteria(self) -> list[str]:
        return [r[0] for r in self.client.read("SELECT DISTINCT criterion FROM labels ORDER BY criterion")]

    def run_ids(self, judge: str | None = None) -> list[str]:
        rows = self.client.read("SELECT run_id FROM scores WHERE {j:Nullable(String)} IS NULL OR judge = "
                                "{j:Nullable(String)} GROUP BY run_id ORDER BY max(coalesce(created_at_ms, 0)) DESC, "
                                "run_id", {"j": judge})
        return [r[0] for r in rows]

    # -- calibration ---------------------------------------------------------------------------
    def calibration_pairs(self, judge: str, criterion: str, run_id: str | None,
                          judge_version: str | None) -> tuple[list[Pair], int]:
        labels = current_labels_sql("c", people_only=self.people_only)
        params = {"c": criterion, "j": judge, "run": run_id, "ver": judge_version}
        labelled = self.client.read(f"SELECT count() FROM ({labels})", params)[0][0]
        rows = self.client.read(f"""
            WITH lab AS ({labels})
            SELECT lab.trace_id, sc.verdict, sc.score, sc.judge_version, sc.rationale, lab.value, lab.numeric_value,
                   lab.rationale, lab.reviewer, coalesce(t.timestamp_ms, lab.created_at_ms)
            FROM lab
            INNER JOIN (SELECT sc.trace_id, sc.verdict, sc.score, sc.rationale, sc.judge_version FROM scores AS sc
                        WHERE sc.judge = {{j:String}} AND ({{run:Nullable(String)}} IS NULL
                              OR sc.run_id = {{run:Nullable(String)}}) AND sc.error IS NULL
                          AND ({{ver:Nullable(String)}} IS NULL OR sc.judge_version = {{ver:Nullable(String)}})
                          AND sc.trace_id IN (SELECT trace_id FROM lab)
                        ORDER BY sc.created_at_ms DESC NULLS LAST, sc.run_id DESC LIMIT 1 BY sc.trace_id) AS sc
                ON sc.trace_id = lab.trace_id
            LEFT JOIN (SELECT t.trace_id, t.timestamp_ms FROM traces AS t
                       WHERE t.trace_id IN (SELECT trace_id FROM lab)) AS t ON t.trace_id = lab.trace_id
            ORDER BY lab.trace_id
            SETTINGS join_use_nulls = 1""", params)
        probability = self._selection_probabilities(criterion)
        return [Pair(*r, probability.get(r[0])) for r in rows], int(labelled)

    def _selection_probabilities(self, criterion: str) -> dict[str, float]:
        """Each trace's newest annotation-queue selection probability on ``criterion`` (queue_items,
        the labels family's control table; none before that family has created it)."""
        with self.control.reading() as conn:
            if not _has_table(conn, "queue_items"):
                return {}
            rows = conn.execute(sa.text("SELECT trace_id, selection_probability FROM queue_items WHERE criterion = :c "
                                        "ORDER BY created_at_ms"), {"c": criterion}).all()
        return {trace_id: p for trace_id, p in rows}   # later rows (newer draws) win

    def run_verdict_counts(self, run_id: str, judge: str) -> tuple[int, int, int]:
        row = self.client.read(f"""
            SELECT countIf(verdict = 'pass'), countIf(verdict = 'fail'), countIf(verdict NOT IN ('pass', 'fail'))
            FROM (SELECT argMax(sc.verdict, coalesce(sc.created_at_ms, 0)) AS verdict FROM scores AS sc
                  WHERE sc.run_id = {{run:String}} AND sc.judge = {{j:String}} GROUP BY {KEY_SQL})""",
                               {"run": run_id, "j": judge})[0]
        return int(row[0]), int(row[1]), int(row[2])

    def save_calibration(self, result: CalibrationReportResult, *, now_ms: int) -> str:
        calibration_id = f"cal-{now_ms}-{uuid.uuid4().hex[:8]}"
        mcc = result.metrics["mcc"]
        summary = {"metrics": {k: v.value for k, v in result.metrics.items()},
                   "confusion": result.confusion.model_dump(), "unknown_verdicts": result.unknown_verdicts}
        with self.control.transaction() as conn:
            conn.execute(sa.text(
                "INSERT INTO calibrations (calibration_id, judge, judge_version, criterion, run_id, n, mcc, mcc_low, "
                "mcc_high, kappa, verdict, gate_threshold, signal_threshold, computed_at_ms, summary) VALUES (:id, "
                ":judge, :version, :criterion, :run, :n, :mcc, :low, :high, :kappa, :verdict, :gate, :signal, :at, "
                ":summary)"), {
                    "id": calibration_id, "judge": result.judge, "version": result.judge_version,
                    "criterion": result.criterion, "run": result.run_id, "n": result.n, "mcc": mcc.value,
                    "low": mcc.low, "high": mcc.high, "kappa": result.metrics["kappa"].value,
                    "verdict": result.verdict, "gate": result.thresholds.gate, "signal": result.thresholds.signal,
                    "at": now_ms, "summary": json.dumps(summary)})
        return calibration_id

    # -- regression ----------------------------------------------------------------------------
    def run_scores(self, run_id: str, judges: list[str] | None, slice_by: list[str]) -> list[RunScore]:
        params: dict[str, Any] = {"run": run_id, "judges": judges or [], "all": judges is None,
                                  # only records a committed dataset version names (never a killed writer's)
                                  "batches": sorted(DatasetHeaders(self.control).committed_batches())
                                  if any(f.startswith("strata") for f in slice_by) else []}
        joins, selects = [], []
        for i, field in enumerate(slice_by):
            selects.append(self._slice_sql(field, i, params, joins) + f" AS s{i}")
        slice_sql = (", " + ", ".join(selects)) if selects else ""
        rows = self.client.read(f"""
            SELECT s.key, s.trace_id, s.judge, s.judge_version, s.verdict, s.score, s.rationale, s.error{slice_sql}
            FROM (SELECT {KEY_SQL} AS key, sc.trace_id AS trace_id, sc.judge AS judge,
                         sc.judge_version AS judge_version,
                         sc.verdict AS verdict, sc.score AS score, sc.rationale AS rationale, sc.error AS error,
                         sc.record_id AS record_id
                  FROM scores AS sc
                  WHERE sc.run_id = {{run:String}} AND ({{all:Bool}} OR has({{judges:Array(String)}}, sc.judge))
                  ORDER BY sc.created_at_ms DESC NULLS LAST LIMIT 1 BY sc.judge, key) AS s
            LEFT JOIN (SELECT t.trace_id, t.model, t.prompt_version, t.environment, t.name, t.status, t.metadata
                       FROM traces AS t WHERE t.trace_id IN (SELECT trace_id FROM scores
                                                             WHERE run_id = {{run:String}})) AS t
                ON t.trace_id = s.trace_id
            {' '.join(joins)}
            ORDER BY s.judge, s.key
            SETTINGS join_use_nulls = 1""", params)
        out = []
        for r in rows:
            slices = {field: (None if v is None else str(v)) for field, v in zip(slice_by, r[8:])}
            out.append(RunScore(key=r[0], trace_id=r[1], judge=r[2], judge_version=r[3], verdict=r[4], score=r[5],
                                rationale=r[6], error=r[7], slices=slices))
        return out

    @staticmethod
    def _slice_sql(field: str, i: int, params: dict[str, Any], joins: list[str]) -> str:
        """The SQL of one slice value (joins it needs appended to ``joins``); values are parameters."""
        if field in _SLICE_COLUMNS:
            return _SLICE_COLUMNS[field]
        kind, _, name = field.partition(":")
        params[f"k{i}"] = name
        if kind == "tag":
            joins.append(f"LEFT JOIN (SELECT g.trace_id, g.value FROM tags AS g WHERE g.key = {{k{i}:String}}) AS g{i} "
                         f"ON g{i}.trace_id = s.trace_id")
            return f"g{i}.value"
        if kind == "metadata":
            return json_text("t.metadata", f"k{i}")
        # strata: the dataset record's strata (datasets feature), when the scores name a record
        joins.append(f"""LEFT JOIN (SELECT r.record_id, any(coalesce(
                             if(JSONType(r.strata, 'stratum') = 'String', JSONExtractString(r.strata, 'stratum'), NULL),
                             r.strata)) AS strata
                         FROM dataset_records AS r WHERE r.records_batch IN {{batches:Array(String)}}
                           AND r.record_id IN (SELECT record_id FROM scores
                                               WHERE run_id = {{run:String}} AND record_id != '')
                         GROUP BY r.record_id) AS r{i} ON r{i}.record_id = s.record_id""")
        return f"r{i}.strata"

    def latest_calibrations(self, judges: list[str]) -> dict[str, CalibrationStatus]:
        if not judges:
            return {}
        with self.control.reading() as conn:
            rows = conn.execute(sa.text(
                "SELECT judge, judge_version, mcc, n, verdict, computed_at_ms FROM calibrations WHERE judge IN :judges "
                "ORDER BY judge, computed_at_ms DESC, calibration_id DESC"
            ).bindparams(sa.bindparam("judges", expanding=True)), {"judges": list(judges)}).all()
        latest: dict[str, CalibrationStatus] = {}
        for r in rows:
            latest.setdefault(r[0], CalibrationStatus(judge=r[0], judge_version=r[1], mcc=r[2], n=r[3], verdict=r[4],
                                                      computed_at_ms=r[5]))
        return latest
