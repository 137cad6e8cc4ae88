"""calibration_report on a store with known pairs: numbers equal scikit-learn/scipy on the same data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score, matthews_corrcoef

from server.storage.duckdb.calibration_sql import DuckDBCalibrationStore
from server.storage.duckdb.store import DuckDBTraceStore
from tests.calibration_data import AGREEMENT_IDS, HUMAN, JUDGE, SCORES, T0, add_labels, add_scores, build_store
from tools.calibration import agreement as cal
from tools.calibration import stats
from tools.calibration.render import render_calibration
from tools.errors import InvalidInputError, NotFoundError

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


def test_report_equals_sklearn_on_the_same_pairs(cstore: DuckDBTraceStore) -> None:
    r = report(cstore)
    y = stats.as_fail([HUMAN[t] for t in IDS[:40]])
    p = stats.as_fail([JUDGE[t] for t in IDS[:40]])
    assert (r.confusion.tp, r.confusion.fp, r.confusion.fn, r.confusion.tn) == (8, 3, 2, 27)
    assert r.metrics["mcc"].value == pytest.approx(matthews_corrcoef(y, p)) == pytest.approx(210 / 95700 ** 0.5)
    assert r.metrics["kappa"].value == pytest.approx(cohen_kappa_score(y, p))
    assert (r.metrics["tpr"].value, r.metrics["tnr"].value) == (pytest.approx(0.8), pytest.approx(0.9))
    assert r.metrics["mcc"].low < r.metrics["mcc"].value < r.metrics["mcc"].high
    assert (r.n, r.labelled_traces, r.unknown_verdicts, r.unscored) == (40, 42, 1, 1)
    assert r.coverage == pytest.approx(40 / 41)
    assert (r.verdict, r.judge_version) == ("gate", "v1")
    assert r.labels_for_mcc_pm_0_1 > 0
    assert r.disagreements_total == 5
    assert sorted((d.kind, d.trace_id) for d in r.disagreements)[:2] == [("false alarm", "c10"),
                                                                         ("false alarm", "c11")]
    d = next(d for d in r.disagreements if d.trace_id == "c08")
    assert (d.kind, d.judge_rationale, d.human_rationale) == ("missed failure", "grounded_judge says pass",
                                                              "human says fail")
    markdown = render_calibration(r)
    assert "**GATE**" in markdown and "Positive class = **fail**" in markdown and "| **judge fail** | 8 (TP)" in markdown
    with cstore.reading() as con:
        assert con.execute("SELECT judge, judge_version, n, verdict FROM calibrations").fetchall() == [
            ("grounded_judge", "v1", 40, "gate")]


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


def test_a_run_can_be_chosen_and_the_newest_verdict_is_the_default(cstore: DuckDBTraceStore) -> None:
    flipped = {t: {"pass": "fail", "fail": "pass"}.get(v, v) for t, v in JUDGE.items()}
    add_scores(cstore, "r2", "grounded_judge", flipped, version="v2", at_ms=T0 + 1)
    newest = report(cstore)
    assert newest.verdict == "revise" and newest.metrics["mcc"].value < 0 and newest.judge_version == "v2"
    assert report(cstore, run_id="r1").verdict == "gate"
    assert report(cstore, judge_version="v1").verdict == "gate"
    with pytest.raises(NotFoundError, match="Judge 'grounded_judge' has no scores in run 'r3'. Did you mean"):
        report(cstore, run_id="r3")


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


def test_unknown_names_get_the_closest_ones(cstore: DuckDBTraceStore) -> None:
    calib = DuckDBCalibrationStore(cstore)
    with pytest.raises(NotFoundError, match="No scores from a judge named 'grounded_judeg'. Did you mean "
                                            "'grounded_judge'"):
        cal.calibration_report(calib, cal.CalibrationReportInput(judge="grounded_judeg"), now_ms=T0)
    with pytest.raises(NotFoundError, match="No human labels for criterion 'grounde'. Did you mean 'grounded'"):
        cal.calibration_report(calib, cal.CalibrationReportInput(judge="grounded_judge", criterion="grounde"),
                               now_ms=T0)
