"""compare_runs: paired McNemar + Holm on known flips, calibration gating, unpaired runs, slices, verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy import stats as sps

from server.storage.duckdb.calibration_sql import DuckDBCalibrationStore
from server.storage.duckdb.store import DuckDBTraceStore
from tests.calibration_data import (BASE_J1, BASE_J2, CAND_J1, CAND_J2, RUN_IDS, add_calibration, add_scores,
                                    build_store)
from tools.calibration import regression as rg
from tools.calibration.render import render_compare
from tools.errors import InvalidInputError, NotFoundError

IDS = RUN_IDS


@pytest.fixture
def rstore(tmp_path: Path) -> DuckDBTraceStore:
    store = build_store(tmp_path, n=60)
    add_scores(store, "base", "j1", BASE_J1, version="v1")
    add_scores(store, "base", "j2", BASE_J2)
    add_scores(store, "cand", "j1", CAND_J1, version="v1")
    add_scores(store, "cand", "j2", CAND_J2)
    return store


def compare(store: DuckDBTraceStore, baseline: str = "base", candidate: str = "cand", **kw) -> rg.CompareRunsResult:
    kw.setdefault("resamples", 500)
    return rg.compare_runs(DuckDBCalibrationStore(store), rg.CompareRunsInput(
        baseline_run=baseline, candidate_run=candidate, **kw))


def test_a_paired_regression_with_exact_mcnemar_and_holm(rstore: DuckDBTraceStore) -> None:
    add_calibration(rstore, "j1", 0.7, version="v1")
    add_calibration(rstore, "j2", 0.8)
    r = compare(rstore, slice_by=["model"])
    j1, j2 = r.judges
    assert (r.verdict, r.exit_code, r.paired, r.shared_items) == ("regressed", 1, True, 60)
    assert (j1.judge, j1.n, j1.pass_to_fail, j1.fail_to_pass) == ("j1", 60, 12, 2)
    assert (j1.baseline_pass_rate, j1.candidate_pass_rate) == (pytest.approx(50 / 60), pytest.approx(40 / 60))
    assert j1.delta == pytest.approx(-10 / 60) and j1.delta_low < -10 / 60 < j1.delta_high < 0
    p1 = sps.binomtest(12, 14, 0.5).pvalue
    assert j1.p_value == pytest.approx(p1) == pytest.approx(2 * (1 + 14 + 91) / 2 ** 14)
    assert j2.p_value == 1.0
    assert (j1.p_adjusted, j2.p_adjusted) == (pytest.approx(2 * p1), 1.0)  # Holm over the two gating judges
    assert (j1.verdict, j2.verdict) == ("regressed", "no significant change")
    assert j1.gating and "MCC 0.70 (n=40) ≥ 0.6" == j1.calibration
    claude = next(s for s in r.slices if s.judge == "j1" and s.value == "claude-sonnet-4")
    assert claude.n == 20 and claude.p_value == pytest.approx(sps.binomtest(4, 5, 0.5).pvalue)
    assert r.flips_total == 16 and [f.direction for f in r.flips] == ["pass→fail"] * 13 + ["fail→pass"] * 3
    assert "**regressed** (exit 1)" in render_compare(r)


def test_min_delta_and_the_reverse_direction(rstore: DuckDBTraceStore) -> None:
    add_calibration(rstore, "j1", 0.7)
    add_calibration(rstore, "j2", 0.8)
    assert compare(rstore, min_delta=0.2).verdict == "no significant change"
    improved = compare(rstore, baseline="cand", candidate="base")
    assert (improved.verdict, improved.exit_code) == ("improved", 0)


def test_uncalibrated_or_weak_judges_are_reported_but_do_not_gate(rstore: DuckDBTraceStore) -> None:
    r = compare(rstore)
    assert (r.verdict, r.exit_code) == ("undecided", 2)
    assert not any(j.gating for j in r.judges) and "not calibrated" in r.judges[0].calibration
    assert compare(rstore, allow_uncalibrated=True).verdict == "regressed"
    add_calibration(rstore, "j1", 0.5)
    add_calibration(rstore, "j2", 0.8)
    r = compare(rstore)
    j1 = r.judges[0]
    assert (r.verdict, j1.gating, j1.verdict) == ("no significant change", False, "regressed")
    assert j1.calibration == "MCC 0.50 (n=40) below the gate threshold 0.6: reported, not gating"
    assert j1.p_adjusted is None and r.judges[1].p_adjusted == 1.0


def test_a_calibration_of_another_judge_version_does_not_count(rstore: DuckDBTraceStore) -> None:
    add_calibration(rstore, "j1", 0.9, version="v0")
    j1 = compare(rstore).judges[0]
    assert not j1.gating and j1.calibration.startswith("calibrated version v0 ≠ run version(s) v1")


def test_runs_on_different_items_are_not_comparable_and_never_a_regression(tmp_path: Path) -> None:
    """The audit's case: no shared item, a large unpaired drop, and "regressed (exit 1)" with p = 4e-9."""
    store = build_store(tmp_path, n=120)
    add_scores(store, "week1", "j1", {f"c{i:02d}": "fail" if i < 5 else "pass" for i in range(60)})
    add_scores(store, "week2", "j1", {f"c{i:02d}": "fail" if i < 80 else "pass"
                                      for i in range(60, 120)})
    r = compare(store, baseline="week1", candidate="week2", allow_uncalibrated=True)
    j1 = r.judges[0]
    assert (r.paired, r.shared_items, j1.paired) == (False, 0, False)
    assert j1.p_value == pytest.approx(sps.fisher_exact([[55, 5], [40, 20]]).pvalue)
    assert (r.verdict, r.exit_code, j1.verdict) == ("undecided", 2, "undecided")
    assert j1.reason.startswith("not comparable: the runs share 0 items (< min_items 20, or under half of either "
                                "run); unpaired pass rate 91.7% → 66.7% (Fisher p=")
    assert r.flips == [] and "unpaired" in r.summary


def test_a_few_shared_items_below_min_items_are_not_comparable_either(tmp_path: Path) -> None:
    store = build_store(tmp_path, n=40)
    add_scores(store, "a", "j1", {f"c{i:02d}": "pass" for i in range(10)})
    add_scores(store, "b", "j1", {f"c{i:02d}": "fail" for i in range(10)})
    r = compare(store, baseline="a", candidate="b", allow_uncalibrated=True)
    assert (r.paired, r.shared_items, r.verdict, r.exit_code) == (False, 10, "undecided", 2)
    assert r.judges[0].reason.startswith("not comparable: the runs share 10 items (< min_items 20")
    paired = compare(store, baseline="a", candidate="b", allow_uncalibrated=True, min_items=10)
    assert (paired.paired, paired.verdict) == (True, "regressed")


def test_too_few_items_or_too_many_errors_cannot_decide(tmp_path: Path) -> None:
    store = build_store(tmp_path, n=30)
    ids = [f"c{i:02d}" for i in range(30)]
    add_scores(store, "a", "j1", {t: "pass" for t in ids})
    add_scores(store, "b", "j1", {t: "fail" if i < 3 else "pass" for i, t in enumerate(ids)},
               errors={t: "timeout" for t in ids[15:]})
    add_scores(store, "c", "j1", {t: "unknown" if i >= 20 else "pass" for i, t in enumerate(ids)})
    add_calibration(store, "j1", 0.9)
    r = compare(store, baseline="a", candidate="b", min_items=5)
    assert (r.verdict, r.exit_code) == ("undecided", 2)
    assert r.judges[0].reason == "15 of 60 items had judge errors (> 20%)"
    assert (r.judges[0].errors, r.judges[0].unknown) == (15, 0)
    r = compare(store, baseline="a", candidate="c", min_items=25)  # abstentions are left out, not errors
    assert r.judges[0].reason == "only 20 comparable items (< min_items 25)" and r.judges[0].unknown == 10


def test_items_pair_by_dataset_record_when_scores_carry_one(tmp_path: Path) -> None:
    store = build_store(tmp_path, n=40)
    ids = [f"c{i:02d}" for i in range(40)]
    records = {t: f"rec-{i}" for i, t in enumerate(ids)}
    add_scores(store, "a", "j1", {t: "pass" for t in ids}, record_ids=records)
    add_scores(store, "b", "j1", {t: "fail" if i < 15 else "pass" for i, t in enumerate(ids)}, record_ids=records)
    r = compare(store, baseline="a", candidate="b", allow_uncalibrated=True)
    assert r.paired and r.flips[0].item.startswith("rec-") and r.judges[0].pass_to_fail == 15


def test_bad_arguments_say_how_to_fix_them(rstore: DuckDBTraceStore) -> None:
    with pytest.raises(NotFoundError, match="No scores for run 'cnad'. Did you mean 'cand'"):
        compare(rstore, candidate="cnad")
    with pytest.raises(InvalidInputError, match="baseline_run and candidate_run are both 'base'"):
        compare(rstore, candidate="base")
    with pytest.raises(InvalidInputError, match="Unknown slice field 'modle'. Did you mean 'model'"):
        compare(rstore, slice_by=["modle"])
    with pytest.raises(NotFoundError, match="Judge\\(s\\) 'j9' have no scores in either run"):
        compare(rstore, judges=["j9"])


def test_slices_by_a_tag_read_the_trace_tags(rstore: DuckDBTraceStore) -> None:
    rstore.set_tag(trace_ids=IDS[:20], expr=None, key="cohort", value="early", by="t", now_ms=1)
    r = compare(rstore, slice_by=["tag:cohort"])
    early = next(s for s in r.slices if s.judge == "j1" and s.value == "early")
    assert (early.n, early.baseline_pass_rate, early.candidate_pass_rate) == (20, 1.0, pytest.approx(8 / 20))


def test_an_insufficient_calibration_does_not_gate_and_says_so_whatever_its_mcc() -> None:
    """Three labelled failures can give MCC 1.0; the verdict 'insufficient' is the reason it does not gate
    (compare_runs and monitors alike), not an MCC 'below' the threshold."""
    from tools.monitors.alerts import gates

    status = rg.CalibrationStatus(judge="j", judge_version=None, mcc=1.0, n=40, verdict="insufficient",
                                  computed_at_ms=0)
    monitored, why_monitor = gates("j", status, None, 0.6)
    compared, why_compare = rg._calibration("j", status, set(), rg.CompareRunsInput(baseline_run="a",
                                                                                    candidate_run="b"))
    assert (monitored, compared) == (False, False)
    for why in (why_monitor, why_compare):
        assert "insufficient" in why and "label more" in why and "below" not in why
