"""calibration_report on DuckDB beyond the contract suite (tests/contract/test_calibration_contract.py, which
checks the report against scikit-learn on every engine): graded scores, thresholds, corrections, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from server.storage.duckdb.calibration_sql import DuckDBCalibrationStore
from server.storage.duckdb.store import DuckDBTraceStore
from tests.calibration_data import AGREEMENT_IDS, HUMAN, JUDGE, SCORES, T0, add_labels, add_scores, build_store
from tools.calibration import agreement as cal
from tools.calibration import stats
from tools.errors import InvalidInputError

IDS = AGREEMENT_IDS


@pytest.fixture
def cstore(tmp_path: Path) -> DuckDBTraceStore:
    store = build_store(tmp_path, n=42)
    add_labels(store, "grounded", HUMAN)
    add_scores(store, "r1", "grounded_judge", JUDGE, scores=SCORES, version="v1")
    return store


def report(store: DuckDBTraceStore, **kw) -> cal.CalibrationReportResult:
    kw.setdefault("resamples", 500)
    calib = DuckDBCalibrationStore(store)
    with calib.session():
        return cal.calibration_report(calib, cal.CalibrationReportInput(judge="grounded_judge", criterion="grounded",
                                                                         **kw), now_ms=T0 + 5)


def test_graded_scores_get_spearman_and_kendall_like_scipy(cstore: DuckDBTraceStore) -> None:
    r = report(cstore)
    x = np.array([SCORES[t] for t in IDS[:40]])
    y = np.array([HUMAN[t] == "pass" for t in IDS[:40]], dtype=float)
    assert r.correlations is not None and r.correlations.against == "pass/fail label"
    assert r.correlations.spearman.value == pytest.approx(sps.spearmanr(x, y)[0])
    assert r.correlations.kendall.value == pytest.approx(sps.kendalltau(x, y)[0])
    assert sum(r.score_histogram.human_fail) == 10 and sum(r.score_histogram.human_pass) == 30


def test_thresholds_min_labels_and_one_class_decide_the_verdict(cstore: DuckDBTraceStore) -> None:
    assert report(cstore, gate_threshold=0.7).verdict == "signal"
    assert report(cstore, gate_threshold=0.9, signal_threshold=0.8).verdict == "revise"
    r = report(cstore, min_labels=41)
    assert r.verdict == "insufficient" and "only 40 labelled pairs" in r.verdict_reason
    with pytest.raises(InvalidInputError, match="signal_threshold 0.7 is above gate_threshold 0.6"):
        report(cstore, signal_threshold=0.7)


def test_a_correction_changes_the_pair_and_the_history_stays(cstore: DuckDBTraceStore) -> None:
    add_labels(cstore, "grounded", {"c10": "fail"}, reviewer="bo", at_ms=T0 + 1)  # the judge was right after all
    r = report(cstore)
    assert (r.confusion.tp, r.confusion.fp) == (9, 2)
    with cstore.reading() as con:
        assert con.execute("SELECT count(*) FROM labels WHERE trace_id = 'c10'").fetchone()[0] == 2


def test_humans_with_one_class_give_insufficient(tmp_path: Path) -> None:
    store = build_store(tmp_path, n=20)
    add_labels(store, "grounded", {f"c{i:02d}": "pass" for i in range(20)})
    add_scores(store, "r1", "grounded_judge", {f"c{i:02d}": "fail" if i < 2 else "pass" for i in range(20)})
    r = report(store)
    assert r.verdict == "insufficient" and "one class" in r.verdict_reason
    assert r.metrics["mcc"].value is None and r.metrics["tpr"].value is None


def test_versions_and_windows_are_tabled(tmp_path: Path) -> None:
    store = build_store(tmp_path, n=42)
    add_labels(store, "grounded", HUMAN)
    first, second = dict(list(JUDGE.items())[::2]), dict(list(JUDGE.items())[1::2])
    add_scores(store, "r1", "grounded_judge", first, version="v1")
    add_scores(store, "r1", "grounded_judge", second, version="v2")
    r = report(store, window="day")
    assert [g.group for g in r.by_version] == ["v1", "v2"] and sum(g.n for g in r.by_version) == 40
    assert r.judge_version is None
    assert [g.group for g in r.by_window] == ["2025-11-13"]


def test_corrected_pass_rate_reweights_by_queue_probabilities(cstore: DuckDBTraceStore) -> None:
    probabilities = {t: (1.0 if HUMAN[t] == "fail" else 0.25) for t in IDS}
    with cstore.writing() as con:
        con.executemany("INSERT INTO queue_items VALUES ('q1', 'grounded', ?, 1, 1.0, 'anomaly', ?, '[]', 100, '', ?)",
                        [(t, p, T0) for t, p in probabilities.items()])
    r = report(cstore, run_id="r1")
    c = r.corrected_pass_rate
    assert c is not None and c.reweighted and c.run_id == "r1" and c.items == 40
    assert c.observed_pass_rate == pytest.approx(29 / 40)
    # weights 1/p: fails weigh 1, passes 4 -> TPR 8/10, TNR (27*4)/(30*4): unchanged rates here
    expected = 1 - stats.rogan_gladen(11 / 40, 0.8, 0.9)
    assert c.corrected_pass_rate == pytest.approx(expected)
    assert c.low <= expected <= c.high
    assert report(cstore, run_id="r1", reweight=False).corrected_pass_rate.reweighted is False
