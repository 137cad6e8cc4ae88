"""Known labels, judge scores and calibrations written straight into a backend of any engine.

The calibration and monitor contract tests need rows the labels and judges families would write;
writing them here (as those families store them: DuckDB SQL, or ClickHouse ``labels``/``scores``
rows and control-plane ``calibrations``) keeps these tests independent of those adapters, and
lets every statistic be checked against scikit-learn/scipy on exactly the rows written.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from server.storage.backend import Backend
from server.storage.clickhouse.client import next_version
from tests import calibration_data as duck

T0 = duck.T0
_SCORE_COLUMNS = ("run_id", "judge", "trace_id", "record_id", "verdict", "score", "rationale", "created_at_ms",
                  "judge_version", "error", "input_tokens", "output_tokens", "cost_usd", "cache_key", "cached",
                  "version")


def is_duckdb(backend: Backend) -> bool:
    return backend.engine == "duckdb"


def control(backend: Backend) -> Any:
    """The control plane of a ClickHouse backend (held by its calibration adapter)."""
    return backend.features.calibration.control  # type: ignore[union-attr]


def add_scores(backend: Backend, run_id: str, judge: str, verdicts: dict[str, str], *,
               scores: dict[str, float] | None = None, version: str | None = None,
               record_ids: dict[str, str] | None = None, errors: dict[str, str] | None = None,
               spend: dict[str, tuple[int, int, float, str | None, bool]] | None = None, at_ms: int = T0) -> None:
    """Scores as ``run_judges`` writes them; ``spend`` maps a trace to (input tokens, output tokens,
    usd, cache key, cached)."""
    if is_duckdb(backend) and not spend:
        duck.add_scores(backend.traces, run_id, judge, verdicts, scores=scores, version=version,  # type: ignore
                        record_ids=record_ids, errors=errors, at_ms=at_ms)
        return
    rows = []
    for tid, verdict in verdicts.items():
        tokens_in, tokens_out, usd, cache_key, cached = (spend or {}).get(tid, (None, None, None, None, False))
        rows.append((run_id, judge, tid, (record_ids or {}).get(tid, ""), verdict, (scores or {}).get(tid),
                     f"{judge} says {verdict}", at_ms, version, (errors or {}).get(tid), tokens_in, tokens_out, usd,
                     cache_key, int(cached), next_version()))
    if is_duckdb(backend):
        with backend.traces.writing() as con:  # type: ignore[attr-defined]
            con.executemany(f"INSERT INTO scores ({', '.join(_SCORE_COLUMNS[:-1])}) VALUES "
                            f"({', '.join('?' for _ in _SCORE_COLUMNS[:-1])})",
                            [(*r[:3], r[3] or None, *r[4:14], bool(r[14])) for r in rows])
        return
    backend.traces.client.insert("scores", rows, _SCORE_COLUMNS)  # type: ignore[attr-defined]


def add_labels(backend: Backend, criterion: str, values: dict[str, str | float], *, reviewer: str = "ana",
               at_ms: int = T0) -> None:
    if is_duckdb(backend):
        duck.add_labels(backend.traces, criterion, values, reviewer=reviewer, at_ms=at_ms)  # type: ignore[arg-type]
        return
    rows = []
    for tid, value in values.items():
        text, numeric = (value, None) if isinstance(value, str) else (f"{value:g}", float(value))
        rows.append((f"lab-{uuid.uuid4().hex}", tid, criterion, text, numeric, reviewer, f"human says {text}", at_ms,
                     "test", next_version()))
    backend.traces.client.insert("labels", rows, ("label_id", "trace_id", "criterion", "value",  # type: ignore
                                                  "numeric_value", "reviewer", "rationale", "created_at_ms",
                                                  "source", "version"))


def add_calibration(backend: Backend, judge: str, mcc: float | None, *, n: int = 40, version: str | None = None,
                    at_ms: int = T0) -> None:
    if is_duckdb(backend):
        duck.add_calibration(backend.traces, judge, mcc, n=n, version=version, at_ms=at_ms)  # type: ignore
        return
    verdict = "gate" if (mcc or 0) >= 0.6 else "signal" if (mcc or 0) >= 0.4 else "revise"
    with control(backend).transaction() as conn:
        conn.execute(sa.text("INSERT INTO calibrations (calibration_id, judge, judge_version, criterion, n, mcc, "
                             "verdict, gate_threshold, signal_threshold, computed_at_ms, summary) VALUES (:id, :j, "
                             ":v, 'c', :n, :mcc, :verdict, 0.6, 0.4, :at, '{}')"),
                     {"id": f"cal-{judge}-{at_ms}", "j": judge, "v": version, "n": n, "mcc": mcc, "verdict": verdict,
                      "at": at_ms})


def stored_calibrations(backend: Backend) -> list[tuple]:
    """(judge, judge_version, n, verdict) of every stored calibration."""
    sql = "SELECT judge, judge_version, n, verdict FROM calibrations ORDER BY computed_at_ms, judge"
    if is_duckdb(backend):
        with backend.traces.reading() as con:  # type: ignore[attr-defined]
            return con.execute(sql).fetchall()
    with control(backend).reading() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]
