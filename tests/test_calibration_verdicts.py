"""A calibration verdict never claims more than its sample: no 'gate' on an interval that reaches
0 or on a handful of labels of one class; the interval is shown beside the verdict; and the
lower-bound rule is there for those who want the whole interval above the threshold."""

from __future__ import annotations

from pathlib import Path

from tests.calibration_data import add_labels, add_scores, build_store
from tests.test_calibration import cstore, report  # noqa: F401 (cstore is a fixture)
from tools.calibration.verdicts import Thresholds, classify

SEED = Thresholds(gate=0.6, signal=0.4, min_labels=10)


def test_the_audits_uninformative_window_is_not_a_gate() -> None:
    verdict, reason = classify(0.82, 10, SEED, one_class_truth=False, low=0.0, high=1.0, per_class=(5, 5))
    assert (verdict, reason) == ("insufficient", "MCC 0.82 [0.00, 1.00]: the interval reaches 0, so this sample "
                                                 "cannot tell the judge from chance; label more traces "
                                                 "(annotation_queue) before gating on it")


def test_too_few_labels_of_one_class_give_no_verdict() -> None:
    verdict, reason = classify(0.9, 30, SEED, one_class_truth=False, low=0.5, high=1.0, per_class=(3, 27))
    assert (verdict, reason) == ("insufficient", "only 3 human-labelled failures; label at least 5 of each class "
                                                 "before trusting any verdict")
    assert classify(0.9, 30, SEED, one_class_truth=False, low=0.5, high=1.0, per_class=(26, 4))[1].startswith(
        "only 4 human-labelled passes")


def test_the_interval_stands_beside_every_verdict_and_the_lower_bound_rule_is_stricter() -> None:
    args = dict(one_class_truth=False, low=0.45, high=0.93, per_class=(20, 40))
    assert classify(0.72, 60, SEED, **args) == ("gate", "MCC 0.72 [0.45, 0.93] ≥ 0.6: reliable enough to gate releases")
    strict = SEED.model_copy(update={"gate_on": "lower_bound"})
    assert classify(0.72, 60, strict, **args) == (
        "signal", "MCC lower bound 0.45 (MCC 0.72 [0.45, 0.93]) in [0.4, 0.6): use as a signal, not a gate")
    assert classify(0.3, 60, SEED, one_class_truth=False, low=0.05, high=0.5, per_class=(20, 40))[0] == "revise"


def test_the_report_shows_the_interval_and_honours_the_options(cstore) -> None:  # noqa: F811
    point = report(cstore)
    mcc = point.metrics["mcc"]
    assert point.verdict == "gate"
    assert point.verdict_reason == f"MCC {mcc.value:.2f} [{mcc.low:.2f}, {mcc.high:.2f}] ≥ 0.6: reliable enough to gate releases"
    assert mcc.low < 0.6, "the fixture's interval straddles the gate, so the stricter rule must not gate"
    strict = report(cstore, gate_on="lower_bound")
    assert strict.verdict != "gate" and strict.verdict_reason.startswith(f"MCC lower bound {mcc.low:.2f}")
    assert strict.thresholds.gate_on == "lower_bound"
    few = report(cstore, min_per_class=11)  # the fixture has 10 human failures
    assert (few.verdict, few.verdict_reason.split(";")[0]) == ("insufficient", "only 10 human-labelled failures")


def test_a_small_window_in_the_drift_table_is_never_a_gate(tmp_path: Path) -> None:
    """Twelve pairs that agree perfectly: MCC 1.0, but with 2 failures the window proves little."""
    store = build_store(tmp_path, n=12)
    labels = {f"c{i:02d}": "fail" if i < 2 else "pass" for i in range(12)}
    add_labels(store, "grounded", labels)
    add_scores(store, "r1", "grounded_judge", labels)
    r = report(store, min_labels=10)
    assert r.metrics["mcc"].value == 1.0
    assert r.verdict == "insufficient" and r.verdict_reason.startswith("only 2 human-labelled failures")
    assert [row.verdict for row in r.by_window] == ["insufficient"]
