"""calibration_report: does a judge agree with the humans on the same traces and criterion?

Each labelled trace with a judge verdict is one pair: the current human label (pass/fail) and
the judge's verdict (from ``run_id``, or the judge's newest score on that trace). With
**positive = fail** (a judge detects failures) the report gives the confusion matrix, TPR/TNR,
precision/recall/F1, accuracy, MCC and Cohen's kappa with bootstrap 95% intervals, and the
seed's verdict: MCC ≥ 0.6 **gate**, 0.4–0.6 **signal**, < 0.4 **revise** (configurable);
**insufficient** when there are fewer than ``min_labels`` pairs, fewer than ``min_per_class``
human labels of either class, or the MCC interval reaches 0 (the sample cannot tell the judge
from chance: the audit saw "gate" for a window whose interval was [0.00, 1.00]). The interval
stands beside every verdict; ``gate_on='lower_bound'`` judges by its lower bound instead of the
point estimate. ``unknown`` verdicts are left out of agreement and reported as a count and coverage.
Graded judges also get Spearman and Kendall against the human labels (numeric labels where
given, else pass = 1 / fail = 0; a higher judge score means "more pass").

The judge-bias-corrected pass rate of a run applies Rogan–Gladen with the judge's TPR/TNR;
when every pair's trace came from ``annotation_queue`` those rates are reweighted by
1/selection probability, so the anomaly-heavy labelled set stands for the population.
Every report is stored (``calibrations``): ``compare_runs`` gates only on calibrated judges.
"""

from __future__ import annotations

import difflib
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools.calibration import stats
from tools.calibration.verdicts import CalibrationVerdict, Thresholds, per_class_counts, classify
from tools.errors import InvalidInputError, NotFoundError

Window = Literal["day", "week", "month", "none"]
_WINDOW_MS = {"day": 86_400_000, "week": 7 * 86_400_000, "month": 30 * 86_400_000}

JudgeName = Annotated[str, Field(min_length=1, description="Judge name as in the scores (list_judges / "
                                                            "describe_store show them), e.g. 'citations'.")]
CriterionOpt = Annotated[str | None, Field(description="Human-label criterion to compare with; default the judge's "
                                                       "own criterion, else a criterion named like the judge.")]
RunId = Annotated[str | None, Field(description="Use this run's verdicts; default each trace's newest verdict of "
                                                "the judge.")]
JudgeVersion = Annotated[str | None, Field(description="Only verdicts of this judge version (hash).")]
GateThreshold = Annotated[float, Field(ge=-1, le=1, description="MCC at or above which the judge may gate "
                                                                "releases (seed: 0.6).")]
SignalThreshold = Annotated[float, Field(ge=-1, le=1, description="MCC at or above which it is a useful signal "
                                                                  "(seed: 0.4); below is 'revise'.")]
MinLabels = Annotated[int, Field(ge=2, le=100_000, description="Pairs needed before any verdict (default 10).")]
MinPerClass = Annotated[int, Field(ge=1, le=100_000, description="Human labels of each class (pass and fail) needed "
                                                                 "before any verdict (default 5).")]
GateOn = Annotated[Literal["point", "lower_bound"], Field(
    description="Verdict from the MCC point estimate (the seed's rule) or from its 95% interval's lower bound "
                "(stricter).")]
Resamples = Annotated[int, Field(ge=100, le=20_000, description="Bootstrap resamples (default 2000).")]
SeedParam = Annotated[int, Field(description="Bootstrap seed; the same seed gives the same intervals.")]
WindowParam = Annotated[Window, Field(description="Drift table: agreement per 'day', 'week' (default) or 'month' "
                                                  "of trace time; 'none' skips it.")]
MaxDisagreements = Annotated[int, Field(ge=0, le=200, description="Disagreeing traces listed (default 20).")]
Reweight = Annotated[bool | None, Field(description="Reweight the corrected pass rate by 1/selection probability: "
                                                    "default when every pair came from annotation_queue.")]
CorrectRun = Annotated[str | None, Field(description="Run whose pass rate to correct for judge bias; default "
                                                     "run_id, else the judge's latest run.")]


@dataclass(frozen=True, slots=True)
class Pair:
    """One labelled trace with the judge's verdict on it (as the store returns it)."""

    trace_id: str
    verdict: str
    score: float | None
    judge_version: str | None
    judge_rationale: str | None
    label_value: str
    label_numeric: float | None
    label_rationale: str | None
    reviewer: str | None
    trace_ms: int
    selection_probability: float | None


class CalibrationStore(Protocol):
    """What calibration needs from the store (``server/storage/duckdb/calibration_sql.py``)."""

    def judge_names(self) -> list[str]: ...

    def judge_criterion(self, judge: str) -> str | None: ...

    def label_criteria(self) -> list[str]: ...

    def run_ids(self, judge: str | None = None) -> list[str]:
        """Run ids, newest first."""
        ...

    def calibration_pairs(self, judge: str, criterion: str, run_id: str | None,
                          judge_version: str | None) -> tuple[list[Pair], int]: ...

    def run_verdict_counts(self, run_id: str, judge: str) -> tuple[int, int, int]: ...

    def save_calibration(self, result: CalibrationReportResult, *, now_ms: int) -> str: ...


class Metric(BaseModel):
    value: float | None = Field(description="Point estimate; null where undefined on these data.")
    low: float | None = None
    high: float | None = None


class Confusion(BaseModel):
    positive: Literal["fail"] = Field("fail", description="The positive class: the judge is a failure detector.")
    tp: float = Field(description="Judge fail, human fail (caught failures).")
    fp: float = Field(description="Judge fail, human pass (false alarms).")
    fn: float = Field(description="Judge pass, human fail (missed failures).")
    tn: float = Field(description="Judge pass, human pass.")


class RankStat(BaseModel):
    value: float | None
    p_value: float | None
    low: float | None
    high: float | None


class Correlations(BaseModel):
    against: Literal["numeric label", "pass/fail label"]
    n: int
    spearman: RankStat
    kendall: RankStat


class ScoreHistogram(BaseModel):
    """Judge scores split by the human label: the data behind the score-vs-label plot."""

    edges: list[float] = Field(description="Bin edges (10 bins).")
    human_pass: list[int]
    human_fail: list[int]


class GroupRow(BaseModel):
    group: str = Field(description="Judge version, or the window's start date.")
    n: int
    mcc: float | None
    mcc_low: float | None
    mcc_high: float | None
    kappa: float | None
    accuracy: float | None
    verdict: CalibrationVerdict


class Disagreement(BaseModel):
    trace_id: str
    kind: Literal["missed failure", "false alarm"]
    judge_verdict: str
    judge_score: float | None
    judge_rationale: str | None
    human_value: str
    human_rationale: str | None
    reviewer: str | None


class CorrectedPassRate(BaseModel):
    run_id: str
    items: int = Field(description="Run items with a pass/fail verdict.")
    observed_pass_rate: float
    corrected_pass_rate: float | None = Field(description="Rogan–Gladen estimate of the true pass rate.")
    low: float | None
    high: float | None
    reweighted: bool = Field(description="TPR/TNR weighted by 1/selection probability of the labelled traces.")
    note: str


class CalibrationReportInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    judge: JudgeName
    criterion: CriterionOpt = None
    run_id: RunId = None
    judge_version: JudgeVersion = None
    gate_threshold: GateThreshold = 0.6
    signal_threshold: SignalThreshold = 0.4
    min_labels: MinLabels = 10
    min_per_class: MinPerClass = 5
    gate_on: GateOn = "point"
    resamples: Resamples = stats.DEFAULT_RESAMPLES
    seed: SeedParam = stats.DEFAULT_SEED
    window: WindowParam = "week"
    max_disagreements: MaxDisagreements = 20
    reweight: Reweight = None
    correct_run_id: CorrectRun = None


class CalibrationReportResult(BaseModel):
    judge: str
    criterion: str
    run_id: str | None
    judge_version: str | None = Field(description="The version asked for, or the only one seen; null if several.")
    n: int = Field(description="Pairs used: labelled traces with a pass/fail label and a pass/fail verdict.")
    labelled_traces: int = Field(description="Traces with a current label for the criterion.")
    unscored: int = Field(description="Labelled traces the judge never scored (in the run).")
    unknown_verdicts: int = Field(description="Pairs left out because the judge said 'unknown'.")
    non_binary_labels: int = Field(description="Pairs left out of agreement because the label is a number.")
    coverage: float | None = Field(description="Share of scored labelled traces with a pass/fail verdict.")
    confusion: Confusion
    metrics: dict[str, Metric] = Field(description="tpr, tnr, precision, recall, f1, accuracy, mcc, kappa with "
                                                   "bootstrap 95% intervals.")
    verdict: CalibrationVerdict
    verdict_reason: str
    thresholds: Thresholds
    labels_for_mcc_pm_0_1: int | None = Field(description="About how many more labels would narrow the MCC "
                                                          "interval to ±0.1 (width ∝ 1/√n).")
    correlations: Correlations | None
    score_histogram: ScoreHistogram | None
    by_version: list[GroupRow]
    by_window: list[GroupRow]
    disagreements: list[Disagreement]
    disagreements_total: int
    corrected_pass_rate: CorrectedPassRate | None
    warnings: list[str]
    bootstrap: str = Field(description="How intervals were computed.")
    calibration_id: str | None = Field(None, description="Stored record (compare_runs reads the latest per judge).")


def _closest(name: str, options: list[str]) -> str:
    near = difflib.get_close_matches(name, options, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(o) for o in near)}?" if near else ""


def _metric_block(y: np.ndarray, p: np.ndarray, resamples: int, seed: int) -> tuple[dict[str, Metric], np.ndarray]:
    point = stats.point_metrics(y, p)
    ci = stats.bootstrap_intervals(y, p, resamples=resamples, seed=seed) if len(y) else {}
    metrics = {k: Metric(value=point[k], low=ci[k].low if k in ci and point[k] is not None else None,
                         high=ci[k].high if k in ci and point[k] is not None else None) for k in stats.METRICS}
    return metrics, stats.cells_of(y, p)


def _groups(pairs: list[Pair], key, th: Thresholds, resamples: int, seed: int) -> list[GroupRow]:
    grouped: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        grouped[key(pair)].append(pair)
    rows = []
    for group, members in sorted(grouped.items()):
        y, p = stats.as_fail([m.label_value for m in members]), stats.as_fail([m.verdict for m in members])
        # the count formulas (checked against scikit-learn in test_stats) avoid its per-call overhead
        point = {k: stats.finite_or_none(float(v)) for k, v in stats.metrics_from_cells(stats.fast_cells(y, p)).items()}
        mcc_ci = stats.bootstrap_intervals(y, p, resamples=resamples, seed=seed)["mcc"]
        defined = point["mcc"] is not None
        verdict, _ = classify(point["mcc"], len(members), th, one_class_truth=len(set(y.tolist())) < 2,
                              low=mcc_ci.low if defined else None, high=mcc_ci.high if defined else None,
                              per_class=per_class_counts(y))
        rows.append(GroupRow(group=group, n=len(members), mcc=point["mcc"], mcc_low=mcc_ci.low if defined else None,
                             mcc_high=mcc_ci.high if defined else None,
                             kappa=point["kappa"], accuracy=point["accuracy"], verdict=verdict))
    return rows


def _window_key(window: Window):
    size = _WINDOW_MS.get(window, 0)
    return lambda p: datetime.fromtimestamp(p.trace_ms // size * size / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def _correlations(pairs: list[Pair]) -> Correlations | None:
    scored = [p for p in pairs if p.score is not None and math.isfinite(p.score)]
    if len(scored) < 3 or len({p.score for p in scored}) < 2:
        return None
    numeric = [p for p in scored if p.label_numeric is not None]
    use_numeric = len(numeric) >= max(3, len(scored) // 2)
    rows = numeric if use_numeric else [p for p in scored if p.label_value in ("pass", "fail")]
    x = np.array([p.score for p in rows], dtype=float)
    y = np.array([p.label_numeric if use_numeric else float(p.label_value == "pass") for p in rows], dtype=float)
    if len(rows) < 3 or np.ptp(y) == 0:
        return None
    result = stats.rank_correlations(x, y)

    def rank(name: str) -> RankStat:
        r = result[name]
        return RankStat(value=r.statistic, p_value=r.p_value, low=r.interval.low, high=r.interval.high)

    return Correlations(against="numeric label" if use_numeric else "pass/fail label", n=len(rows),
                        spearman=rank("spearman"), kendall=rank("kendall"))


def _histogram(pairs: list[Pair]) -> ScoreHistogram | None:
    scored = [p for p in pairs if p.score is not None and math.isfinite(p.score) and p.label_value in ("pass", "fail")]
    if not scored:
        return None
    values = np.array([p.score for p in scored], dtype=float)
    low, high = min(0.0, float(values.min())), max(1.0, float(values.max()))
    edges = np.linspace(low, high, 11)
    fail = np.array([p.label_value == "fail" for p in scored])
    return ScoreHistogram(edges=[round(float(e), 6) for e in edges],
                          human_pass=np.histogram(values[~fail], edges)[0].tolist(),
                          human_fail=np.histogram(values[fail], edges)[0].tolist())


def _corrected(store: CalibrationStore, inp: CalibrationReportInput, binary: list[Pair], run_id: str | None,
               reweight: bool, warnings: list[str]) -> CorrectedPassRate | None:
    if run_id is None or not binary:
        return None
    n_pass, n_fail, _ = store.run_verdict_counts(run_id, inp.judge)
    if n_pass + n_fail == 0:
        return None
    y, p = stats.as_fail([b.label_value for b in binary]), stats.as_fail([b.verdict for b in binary])
    weights = np.array([1 / (b.selection_probability or 1.0) for b in binary]) if reweight else None
    value, interval = stats.corrected_pass_rate(n_pass + n_fail, n_fail, y, p, weights, resamples=inp.resamples,
                                                seed=inp.seed)
    note = ("Rogan–Gladen: (observed fail rate + TNR − 1)/(TPR + TNR − 1), 95% bootstrap over run items and "
            "labelled pairs")
    if value is None:
        note = "undefined: the judge is no better than chance on the labels (TPR + TNR ≤ 1)"
        warnings.append("The corrected pass rate is undefined because TPR + TNR ≤ 1 on the labelled traces.")
    return CorrectedPassRate(run_id=run_id, items=n_pass + n_fail, observed_pass_rate=n_pass / (n_pass + n_fail),
                             corrected_pass_rate=value, low=interval.low, high=interval.high, reweighted=reweight,
                             note=note)


def calibration_report(store: CalibrationStore, inp: CalibrationReportInput, *, now_ms: int,
                       record: bool = True) -> CalibrationReportResult:
    """Join the judge's verdicts to the current human labels and compute the agreement report."""
    if inp.signal_threshold > inp.gate_threshold:
        raise InvalidInputError(f"signal_threshold {inp.signal_threshold:g} is above gate_threshold "
                                f"{inp.gate_threshold:g}; the signal band lies below the gate (seed: 0.4 and 0.6).")
    judges = store.judge_names()
    if inp.judge not in judges:
        raise NotFoundError(f"No scores from a judge named '{inp.judge}'.{_closest(inp.judge, judges)} Judges with "
                            f"scores: {', '.join(sorted(judges)[:10]) or 'none yet (run run_judges first)'}.")
    criteria = store.label_criteria()
    criterion = inp.criterion or store.judge_criterion(inp.judge) or inp.judge
    if criterion not in criteria:
        hint = _closest(criterion, criteria)
        raise NotFoundError(f"No human labels for criterion '{criterion}'.{hint} Labelled criteria: "
                            f"{', '.join(sorted(criteria)[:10]) or 'none yet'}. Pass criterion=..., or label traces "
                            "with annotation_queue + label_trace.")
    if inp.run_id is not None and inp.run_id not in (runs := store.run_ids(inp.judge)):
        raise NotFoundError(f"Judge '{inp.judge}' has no scores in run '{inp.run_id}'.{_closest(inp.run_id, runs)} "
                            f"Its runs: {', '.join(runs[:10]) or 'none'}.")
    pairs, labelled = store.calibration_pairs(inp.judge, criterion, inp.run_id, inp.judge_version)
    th = Thresholds(gate=inp.gate_threshold, signal=inp.signal_threshold, min_labels=inp.min_labels,
                    min_per_class=inp.min_per_class, gate_on=inp.gate_on)
    known = [p for p in pairs if p.verdict in ("pass", "fail")]
    binary = [p for p in known if p.label_value in ("pass", "fail")]
    y, pred = stats.as_fail([b.label_value for b in binary]), stats.as_fail([b.verdict for b in binary])
    metrics, cells = _metric_block(y, pred, inp.resamples, inp.seed)
    one_class = len(set(y.tolist())) < 2
    verdict, reason = classify(metrics["mcc"].value, len(binary), th, one_class_truth=one_class,
                               low=metrics["mcc"].low, high=metrics["mcc"].high, per_class=per_class_counts(y))
    warnings: list[str] = []
    if binary and len(set(pred.tolist())) < 2:
        warnings.append(f"The judge said '{binary[0].verdict}' on every labelled trace: MCC is undefined (treated as 0).")
    for name, denominator, what in (("TPR", cells[0] + cells[2], "human-labelled failures"),
                                    ("TNR", cells[1] + cells[3], "human-labelled passes")):
        if 0 < denominator < 10:
            warnings.append(f"{name} rests on {denominator:g} {what}; its interval is rough. Label more of them "
                            "(annotation_queue surfaces likely failures).")
    mcc = metrics["mcc"]
    half = None if mcc.low is None or mcc.high is None else (mcc.high - mcc.low) / 2
    if verdict == "gate" and mcc.low is not None and mcc.low < th.gate:
        warnings.append(f"The MCC interval reaches down to {mcc.low:.2f}, below the gate threshold: more labels "
                        "would make the gate verdict firmer.")
    reweight = inp.reweight if inp.reweight is not None else bool(binary) and all(
        b.selection_probability for b in binary)
    correct_run = inp.correct_run_id or inp.run_id or next(iter(store.run_ids(inp.judge)), None)
    versions = {p.judge_version for p in pairs}
    disagreeing = [b for b in binary if b.verdict != b.label_value]
    result = CalibrationReportResult(
        judge=inp.judge, criterion=criterion, run_id=inp.run_id,
        judge_version=inp.judge_version or (next(iter(versions)) if len(versions) == 1 else None),
        n=len(binary), labelled_traces=labelled, unscored=labelled - len(pairs),
        unknown_verdicts=len(pairs) - len(known), non_binary_labels=len(known) - len(binary),
        coverage=len(known) / len(pairs) if pairs else None,
        confusion=Confusion(tp=cells[0], fp=cells[1], fn=cells[2], tn=cells[3]), metrics=metrics,
        verdict=verdict, verdict_reason=reason, thresholds=th,
        labels_for_mcc_pm_0_1=stats.labels_to_half_width(len(binary), half),
        correlations=_correlations(known), score_histogram=_histogram(known),
        by_version=_groups(binary, lambda p: p.judge_version or "unversioned", th, min(inp.resamples, 1000), inp.seed)
        if len(versions) > 1 else [],
        by_window=_groups(binary, _window_key(inp.window), th, min(inp.resamples, 1000), inp.seed)
        if inp.window != "none" else [],
        disagreements=[Disagreement(trace_id=b.trace_id, kind="missed failure" if b.label_value == "fail" else
                                    "false alarm", judge_verdict=b.verdict, judge_score=b.score,
                                    judge_rationale=b.judge_rationale, human_value=b.label_value,
                                    human_rationale=b.label_rationale, reviewer=b.reviewer)
                       for b in disagreeing[:inp.max_disagreements]],
        disagreements_total=len(disagreeing),
        corrected_pass_rate=_corrected(store, inp, binary, correct_run, reweight, warnings),
        warnings=warnings,
        bootstrap=f"percentile, {inp.resamples} pair resamples, seed {inp.seed}; rank correlations use Fisher-z "
                  "intervals")
    if record:
        result = result.model_copy(update={"calibration_id": store.save_calibration(result, now_ms=now_ms)})
    return result
