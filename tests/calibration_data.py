"""Stores with known labels, judge scores and calibrations for the calibration-feature tests.

Scores are inserted with SQL (as ``run_judges`` would write them), so every statistic can be
checked against scikit-learn/scipy on exactly the pairs the test wrote.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.labels_sql import DuckDBLabelStore
from tests.factory import trace
from tools.labels.labelling import NewLabel

T0 = 1_763_000_000_000

#: One judge against human labels on c00..c41, with known agreement (calibration tests on any engine).
AGREEMENT_IDS = [f"c{i:02d}" for i in range(42)]
HUMAN = {t: ("fail" if i < 10 else "pass") for i, t in enumerate(AGREEMENT_IDS)}
# tp: c00-c07, fn: c08-c09, fp: c10-c12, tn: c13-c39; c40 'unknown'; c41 never scored
JUDGE = {t: ("fail" if i < 8 or 10 <= i < 13 else "pass")
         for i, t in enumerate(AGREEMENT_IDS[:40])} | {"c40": "unknown"}
SCORES = {t: round(0.15 + 0.02 * (i % 5), 2) if JUDGE[t] == "fail" else round(0.6 + 0.05 * (i % 7), 2)
          for i, t in enumerate(AGREEMENT_IDS[:40])}

#: Two runs of two judges on c00..c59 with known flips (run comparison tests on any engine).
RUN_IDS = [f"c{i:02d}" for i in range(60)]
BASE_J1 = {t: ("fail" if i >= 50 else "pass") for i, t in enumerate(RUN_IDS)}                 # 50/60 pass
CAND_J1 = {t: ("fail" if i < 12 or i >= 52 else "pass") for i, t in enumerate(RUN_IDS)}       # 12 p→f, 2 f→p
BASE_J2 = {t: ("fail" if i == 0 else "pass") for i, t in enumerate(RUN_IDS)}
CAND_J2 = {t: ("fail" if i == 1 else "pass") for i, t in enumerate(RUN_IDS)}                 # 1 p→f, 1 f→p


_TEMPLATES: dict[int, Path] = {}


def build_store(tmp_path: Path, n: int = 40) -> DuckDBTraceStore:
    """``n`` ordinary traces ``c00``, ``c01``, … one minute apart; every third on claude-sonnet-4.

    Built once per ``n`` and copied: creating and migrating a store costs far more than a file copy.
    """
    if n not in _TEMPLATES:
        path = Path(tempfile.mkdtemp(prefix="tracesieve-cal-")) / f"template-{n}.duckdb"
        template = DuckDBTraceStore(path)
        template.write_traces([
            trace(f"c{i:02d}", i, model="claude-sonnet-4" if i % 3 == 0 else "gpt-4o-mini",
                  duration_ms=1400 + (i * 37) % 300) for i in range(n)])
        template.release()  # a kept connection holds the writes in its WAL, which a file copy would miss
        _TEMPLATES[n] = path
    shutil.copy(_TEMPLATES[n], tmp_path / "cal.duckdb")
    return DuckDBTraceStore(tmp_path / "cal.duckdb")


def add_scores(store: DuckDBTraceStore, run_id: str, judge: str, verdicts: dict[str, str], *,
               scores: dict[str, float] | None = None, version: str | None = None,
               record_ids: dict[str, str] | None = None, errors: dict[str, str] | None = None,
               at_ms: int = T0) -> None:
    ids = list(verdicts)
    columns = {"trace_id": ids, "verdict": [verdicts[t] for t in ids], "score": [(scores or {}).get(t) for t in ids],
               "rationale": [f"{judge} says {verdicts[t]}" for t in ids],
               "record_id": [(record_ids or {}).get(t) for t in ids], "error": [(errors or {}).get(t) for t in ids]}
    with store.writing() as con:  # one statement: executemany costs a round trip per row
        con.execute("INSERT INTO scores (run_id, judge, trace_id, verdict, score, rationale, created_at_ms, "
                    "judge_version, record_id, error) SELECT $run, $judge, unnest($trace_id), unnest($verdict), "
                    "unnest($score)::DOUBLE, unnest($rationale), $at, $version, unnest($record_id)::VARCHAR, "
                    "unnest($error)::VARCHAR",
                    {**columns, "run": run_id, "judge": judge, "at": at_ms, "version": version})


def add_labels(store: DuckDBTraceStore, criterion: str, values: dict[str, str | float], *,
               reviewer: str = "ana", at_ms: int = T0) -> None:
    labels = []
    for tid, value in values.items():
        text, numeric = (value, None) if isinstance(value, str) else (f"{value:g}", float(value))
        labels.append(NewLabel(trace_id=tid, criterion=criterion, value=text, numeric_value=numeric, reviewer=reviewer,
                               rationale=f"human says {text}", source="test", created_at_ms=at_ms))
    DuckDBLabelStore(store).append_labels(labels, now_ms=at_ms)


def add_calibration(store: DuckDBTraceStore, judge: str, mcc: float | None, *, n: int = 40,
                    version: str | None = None, verdict: str | None = None, at_ms: int = T0) -> None:
    if verdict is None:
        verdict = "gate" if (mcc or 0) >= 0.6 else "signal" if (mcc or 0) >= 0.4 else "revise"
    with store.writing() as con:
        con.execute("INSERT INTO calibrations VALUES ($id, $judge, $version, 'c', NULL, $n, $mcc, NULL, NULL, NULL, "
                    "$verdict, 0.6, 0.4, $at, '{}')", {"id": f"cal-{judge}-{at_ms}", "judge": judge,
                                                         "version": version, "n": n, "mcc": mcc, "verdict": verdict,
                                                         "at": at_ms})


def split(ids: list[str], *counts: int) -> list[list[str]]:
    """Consecutive chunks of ``ids`` with the given sizes."""
    out, start = [], 0
    for count in counts:
        out.append(ids[start:start + count])
        start += count
    return out
