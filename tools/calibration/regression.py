"""compare_runs: did the candidate run get worse than the baseline, judge by judge?

Items are paired by ``item_id`` (the dataset record, or the trace in monitoring mode), else by
``trace_id``. When the two runs share most items (and at least ``min_items``) the comparison is
paired: exact McNemar on the discordant pairs and a paired bootstrap interval on the pass-rate
delta. When they do not (two monitoring windows, two datasets) the runs are *not comparable*:
Fisher's exact test and an unpaired interval are shown for information, but the verdict is
``undecided`` (exit 2), never ``regressed``: different items differ for reasons no judge
measured (the audit saw "regressed, p = 4e-9" on two runs sharing no item). p-values are
Holm-adjusted across the gating judges.

A judge gates only if its latest calibration (``calibration_report``) has MCC at or above the
gate threshold and is for the judge version the runs used; other judges are reported but do not
gate. Verdicts: ``regressed`` (some gating judge dropped significantly, by at least
``min_delta``), ``improved``, ``no significant change``, or ``undecided`` when the data cannot
decide (too few items, no calibrated judge, too many errors): the CI gate's exit 2.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tools.calibration import stats_paired as sp
from tools.errors import InvalidInputError, NotFoundError
from tools.calibration.stats import DEFAULT_RESAMPLES, DEFAULT_SEED

RunVerdict = Literal["regressed", "improved", "no significant change", "undecided"]
SLICE_FIELDS = ("model", "prompt_version", "environment", "name", "status", "strata")
_SLICE = re.compile(r"^(model|prompt_version|environment|name|status|strata|(tag|metadata):[\w.\-]{1,100})$")

RunRef = Annotated[str, Field(min_length=1, description="A run id from run_judges / list_runs, e.g. 'run-3f2a…'.")]
Alpha = Annotated[float, Field(gt=0, lt=0.5, description="Significance level after Holm correction (default 0.05).")]
MinDelta = Annotated[float, Field(ge=0, le=1, description="Smallest pass-rate drop that counts as a regression, "
                                                          "e.g. 0.02 for two points (default 0).")]
JudgeList = Annotated[list[str] | None, Field(description="Only these judges (default every judge in both runs).")]
SliceBy = Annotated[list[str] | None, Field(description=(
    "Per-slice breakdown fields: model, prompt_version, environment, name, status, strata, tag:<key>, "
    "metadata:<key> (default model and environment)."))]
AllowUncalibrated = Annotated[bool, Field(description="Let judges without a passing calibration gate too (default "
                                                      "false: they are reported only).")]
GateThreshold = Annotated[float, Field(ge=-1, le=1, description="Calibration MCC a judge needs to gate (0.6).")]
MinItems = Annotated[int, Field(ge=1, le=100_000, description="Items a judge needs in both runs to decide "
                                                              "(default 20).")]
MaxFlips = Annotated[int, Field(ge=0, le=500, description="Flipped items listed (default 20; regressions first).")]


@dataclass(frozen=True, slots=True)
class RunScore:
    """One judge verdict in a run, with the item's slice values."""

    key: str
    trace_id: str
    judge: str
    judge_version: str | None
    verdict: str
    score: float | None
    rationale: str | None
    error: str | None
    slices: dict[str, str | None] = field(default_factory=dict)


class CalibrationStatus(BaseModel):
    judge: str
    judge_version: str | None
    mcc: float | None
    n: int
    verdict: str
    computed_at_ms: int


class RegressionStore(Protocol):
    def run_ids(self, judge: str | None = None) -> list[str]: ...

    def run_scores(self, run_id: str, judges: list[str] | None, slice_by: list[str]) -> list[RunScore]: ...

    def latest_calibrations(self, judges: list[str]) -> dict[str, CalibrationStatus]: ...


class CompareRunsInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline_run: RunRef
    candidate_run: RunRef
    alpha: Alpha = 0.05
    min_delta: MinDelta = 0.0
    judges: JudgeList = None
    slice_by: SliceBy = None
    allow_uncalibrated: AllowUncalibrated = False
    gate_threshold: GateThreshold = 0.6
    min_items: MinItems = 20
    max_flips: MaxFlips = 20
    resamples: Annotated[int, Field(ge=100, le=20_000, description="Bootstrap resamples (default 2000).")] = \
        DEFAULT_RESAMPLES
    seed: Annotated[int, Field(description="Bootstrap seed.")] = DEFAULT_SEED


class JudgeComparison(BaseModel):
    judge: str
    gating: bool = Field(description="Counts toward the verdict (calibrated, or allow_uncalibrated).")
    calibration: str = Field(description="Why it gates or not, e.g. 'MCC 0.71 (n=40) ≥ 0.6'.")
    paired: bool
    n: int = Field(description="Paired items with a verdict on both sides (paired), else baseline+candidate items.")
    baseline_pass_rate: float | None
    candidate_pass_rate: float | None
    delta: float | None = Field(description="Candidate − baseline pass rate.")
    delta_low: float | None
    delta_high: float | None
    pass_to_fail: int = Field(description="Items that regressed (paired only).")
    fail_to_pass: int = Field(description="Items that improved (paired only).")
    p_value: float | None = Field(description="Exact McNemar (paired) or Fisher exact (unpaired).")
    p_adjusted: float | None = Field(description="Holm-adjusted across gating judges.")
    errors: int = Field(description="Items whose judge call failed (both runs); over 20% of the items make the "
                                    "judge undecided.")
    unknown: int = Field(description="Items the judge abstained on ('unknown', e.g. no output to judge), both "
                                     "runs; left out of the rates.")
    verdict: RunVerdict
    reason: str


class SliceRow(BaseModel):
    field: str
    value: str
    judge: str
    n: int
    baseline_pass_rate: float | None
    candidate_pass_rate: float | None
    delta: float | None
    p_value: float | None = Field(description="Unadjusted; exploratory.")


class Flip(BaseModel):
    judge: str
    item: str
    trace_id: str
    direction: Literal["pass→fail", "fail→pass"]
    baseline_rationale: str | None
    candidate_rationale: str | None


class CompareRunsResult(BaseModel):
    baseline_run: str
    candidate_run: str
    verdict: RunVerdict
    exit_code: int = Field(description="What `tracesieve gate` exits with: 0 ok, 1 regression, 2 undecided.")
    summary: str
    paired: bool
    shared_items: int
    judges: list[JudgeComparison]
    only_in_one_run: list[str] = Field(description="Judges scored in just one of the runs (not compared).")
    slices: list[SliceRow]
    flips: list[Flip]
    flips_total: int
    alpha: float
    min_delta: float


def _check_run(run: str, runs: list[str]) -> None:
    if run not in runs:
        near = difflib.get_close_matches(run, runs, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(r) for r in near)}?" if near else ""
        raise NotFoundError(f"No scores for run '{run}'.{hint} Runs: {', '.join(runs[:10]) or 'none yet'} "
                            "(list_runs shows them).")


def _calibration(judge: str, status: CalibrationStatus | None, versions: set[str | None],
                 inp: CompareRunsInput) -> tuple[bool, str]:
    if status is None:
        return inp.allow_uncalibrated, "not calibrated (run calibration_report)"
    text = f"MCC {status.mcc:.2f} (n={status.n})" if status.mcc is not None else f"MCC undefined (n={status.n})"
    run_versions = {v for v in versions if v}
    if status.judge_version and run_versions and run_versions != {status.judge_version}:
        return inp.allow_uncalibrated, f"calibrated version {status.judge_version} ≠ run version(s) " \
                                       f"{', '.join(sorted(run_versions))}: recalibrate"
    if status.verdict == "insufficient":  # whatever its MCC: too few labels of one class to trust it
        return inp.allow_uncalibrated, f"{text} from too few labels of one class (calibration verdict " \
                                       "'insufficient'): reported, not gating; label more, then recalibrate"
    if status.mcc is not None and status.mcc >= inp.gate_threshold:
        return True, f"{text} ≥ {inp.gate_threshold:g}"
    return inp.allow_uncalibrated, f"{text} below the gate threshold {inp.gate_threshold:g}: reported, not gating"


def _known(rows: list[RunScore]) -> dict[str, RunScore]:
    return {r.key: r for r in rows if r.verdict in ("pass", "fail") and not r.error}


def _compare(base: list[RunScore], cand: list[RunScore], paired: bool, inp: CompareRunsInput) -> dict:
    b, c = _known(base), _known(cand)
    errors = sum(1 for r in base + cand if r.error)
    unknown = sum(1 for r in base + cand if not r.error and r.verdict not in ("pass", "fail"))
    total = len(base) + len(cand)
    if paired:
        keys = sorted(b.keys() & c.keys())
        cells = {"pp": 0, "pf": 0, "fp": 0, "ff": 0}
        for k in keys:
            cells[b[k].verdict[0] + c[k].verdict[0]] += 1
        n = len(keys)
        out = dict(n=n, errors=errors, unknown=unknown, total=total, pass_to_fail=cells["pf"],
                   fail_to_pass=cells["fp"], keys=keys)
        if n == 0:
            return {**out, "base": None, "cand": None, "delta": None, "ci": (None, None), "p": None}
        ci = sp.paired_delta_interval(cells["pp"], cells["pf"], cells["fp"], cells["ff"], resamples=inp.resamples,
                                      seed=inp.seed)
        return {**out, "base": (cells["pp"] + cells["pf"]) / n, "cand": (cells["pp"] + cells["fp"]) / n,
                "delta": (cells["fp"] - cells["pf"]) / n, "ci": (ci.low, ci.high),
                "p": sp.mcnemar_exact(cells["pf"], cells["fp"])}
    bp, cp = sum(r.verdict == "pass" for r in b.values()), sum(r.verdict == "pass" for r in c.values())
    out = dict(n=min(len(b), len(c)), errors=errors, unknown=unknown, total=total, pass_to_fail=0, fail_to_pass=0,
               keys=[])
    if not b or not c:
        return {**out, "base": None, "cand": None, "delta": None, "ci": (None, None), "p": None}
    ci = sp.unpaired_delta_interval(bp, len(b), cp, len(c), resamples=inp.resamples, seed=inp.seed)
    return {**out, "base": bp / len(b), "cand": cp / len(c), "delta": cp / len(c) - bp / len(b),
            "ci": (ci.low, ci.high), "p": sp.fisher_exact(bp, len(b) - bp, cp, len(c) - cp)}


def _judge_verdict(stat: dict, p_adj: float | None, inp: CompareRunsInput, paired: bool) -> tuple[str, str]:
    if not paired:
        seen = (f"; unpaired pass rate {stat['base']:.1%} → {stat['cand']:.1%} (Fisher p={stat['p']:.3g}) is shown "
                "for information only" if stat["base"] is not None and stat["p"] is not None else "")
        return "undecided", (f"not comparable: the runs share {stat['shared']} items (< min_items {inp.min_items}, "
                             f"or under half of either run){seen}. Judge the same dataset version or traces in both runs")
    if stat["errors"] > 0.2 * stat["total"]:
        return "undecided", f"{stat['errors']} of {stat['total']} items had judge errors (> 20%)"
    if stat["n"] < inp.min_items:
        return "undecided", f"only {stat['n']} comparable items (< min_items {inp.min_items})"
    p = p_adj if p_adj is not None else stat["p"]
    d = stat["delta"]
    if p is not None and p < inp.alpha and d is not None and d < 0 and -d >= inp.min_delta:
        return "regressed", f"pass rate {stat['base']:.1%} → {stat['cand']:.1%} (p={p:.3g} < {inp.alpha:g})"
    if p is not None and p < inp.alpha and d is not None and d > 0 and d >= inp.min_delta:
        return "improved", f"pass rate {stat['base']:.1%} → {stat['cand']:.1%} (p={p:.3g} < {inp.alpha:g})"
    return "no significant change", f"Δ {d:+.1%}, p={p:.3g}" if d is not None and p is not None else "no data"


def _slices(base: list[RunScore], cand: list[RunScore], paired: bool, fields: list[str],
            inp: CompareRunsInput) -> list[SliceRow]:
    rows: list[SliceRow] = []
    for f in fields:
        groups: dict[tuple[str, str], tuple[list[RunScore], list[RunScore]]] = defaultdict(lambda: ([], []))
        base_slice = {r.key: r.slices.get(f) for r in base}
        for r in base:
            groups[(r.judge, str(r.slices.get(f)))][0].append(r)
        for r in cand:
            value = base_slice.get(r.key, r.slices.get(f)) if paired else r.slices.get(f)
            groups[(r.judge, str(value))][1].append(r)
        per_field = []
        for (judge, value), (b, c) in groups.items():
            s = _compare(b, c, paired, inp)
            if s["n"] == 0:
                continue
            per_field.append(SliceRow(field=f, value=value, judge=judge, n=s["n"], baseline_pass_rate=s["base"],
                                      candidate_pass_rate=s["cand"], delta=s["delta"], p_value=s["p"]))
        per_field.sort(key=lambda r: (r.judge, -r.n, r.value))
        rows += per_field[:30]
    return rows


def compare_runs(store: RegressionStore, inp: CompareRunsInput) -> CompareRunsResult:
    """Per-judge paired (or unpaired) comparison, Holm across gating judges, slices and flips."""
    if inp.baseline_run == inp.candidate_run:
        raise InvalidInputError(f"baseline_run and candidate_run are both '{inp.baseline_run}'; compare two runs.")
    slice_by = list(inp.slice_by) if inp.slice_by is not None else ["model", "environment"]
    for f in slice_by:
        if not _SLICE.match(f):
            near = difflib.get_close_matches(f, list(SLICE_FIELDS), n=1)
            raise InvalidInputError(f"Unknown slice field '{f}'.{' Did you mean ' + repr(near[0]) + '?' if near else ''}"
                                    f" Use {', '.join(SLICE_FIELDS)}, tag:<key> or metadata:<key>.")
    runs = store.run_ids()
    _check_run(inp.baseline_run, runs)
    _check_run(inp.candidate_run, runs)
    base_all = store.run_scores(inp.baseline_run, inp.judges, slice_by)
    cand_all = store.run_scores(inp.candidate_run, inp.judges, slice_by)
    by_judge: dict[str, tuple[list[RunScore], list[RunScore]]] = defaultdict(lambda: ([], []))
    for r in base_all:
        by_judge[r.judge][0].append(r)
    for r in cand_all:
        by_judge[r.judge][1].append(r)
    if inp.judges:
        missing = [j for j in inp.judges if j not in by_judge]
        if missing:
            raise NotFoundError(f"Judge(s) {', '.join(repr(j) for j in missing)} have no scores in either run. "
                                f"Judges in these runs: {', '.join(sorted(by_judge)) or 'none'}.")
    compared = sorted(j for j, (b, c) in by_judge.items() if b and c)
    one_sided = sorted(j for j in by_judge if j not in compared)
    base_keys, cand_keys = {r.key for r in base_all}, {r.key for r in cand_all}
    shared = len(base_keys & cand_keys)
    paired = shared >= max(1, inp.min_items) and shared >= 0.5 * min(len(base_keys), len(cand_keys))
    calibrations = store.latest_calibrations(compared)
    stats_by = {j: {**_compare(*by_judge[j], paired, inp), "shared": shared} for j in compared}
    gating = {}
    for j in compared:
        versions = {r.judge_version for r in by_judge[j][0] + by_judge[j][1]}
        gating[j] = _calibration(j, calibrations.get(j), versions, inp)
    family = [j for j in compared if paired and gating[j][0] and stats_by[j]["p"] is not None and
              stats_by[j]["n"] >= inp.min_items]
    adjusted = dict(zip(family, sp.holm([stats_by[j]["p"] for j in family])))
    comparisons, flips = [], []
    for j in compared:
        s = stats_by[j]
        verdict, reason = _judge_verdict(s, adjusted.get(j), inp, paired)
        comparisons.append(JudgeComparison(
            judge=j, gating=gating[j][0], calibration=gating[j][1], paired=paired, n=s["n"],
            baseline_pass_rate=s["base"], candidate_pass_rate=s["cand"], delta=s["delta"], delta_low=s["ci"][0],
            delta_high=s["ci"][1], pass_to_fail=s["pass_to_fail"], fail_to_pass=s["fail_to_pass"],
            p_value=s["p"], p_adjusted=adjusted.get(j), errors=s["errors"], unknown=s["unknown"], verdict=verdict,  # type: ignore[arg-type]
            reason=reason))
        b, c = _known(by_judge[j][0]), _known(by_judge[j][1])
        for k in s["keys"]:
            if b[k].verdict != c[k].verdict:
                flips.append(Flip(judge=j, item=k, trace_id=c[k].trace_id,
                                  direction="pass→fail" if b[k].verdict == "pass" else "fail→pass",
                                  baseline_rationale=b[k].rationale, candidate_rationale=c[k].rationale))
    flips.sort(key=lambda f: (f.direction != "pass→fail", f.judge, f.item))
    gate = [c for c in comparisons if c.gating]
    if any(c.verdict == "regressed" for c in gate):
        verdict: RunVerdict = "regressed"
    elif not gate or any(c.verdict == "undecided" for c in gate):
        verdict = "undecided"
    elif any(c.verdict == "improved" for c in gate):
        verdict = "improved"
    else:
        verdict = "no significant change"
    summary = _summary(verdict, comparisons, paired, shared)
    return CompareRunsResult(
        baseline_run=inp.baseline_run, candidate_run=inp.candidate_run, verdict=verdict,
        exit_code={"regressed": 1, "undecided": 2}.get(verdict, 0), summary=summary, paired=paired,
        shared_items=shared, judges=comparisons, only_in_one_run=one_sided,
        slices=_slices(base_all, cand_all, paired, slice_by, inp) if compared else [],
        flips=flips[:inp.max_flips], flips_total=len(flips), alpha=inp.alpha, min_delta=inp.min_delta)


def _summary(verdict: str, comparisons: list[JudgeComparison], paired: bool, shared: int) -> str:
    gate = [c for c in comparisons if c.gating]
    how = f"paired on {shared} shared items" if paired else "unpaired (the runs judged different items)"
    if verdict == "regressed":
        bad = ", ".join(f"{c.judge} ({c.reason})" for c in gate if c.verdict == "regressed")
        return f"Regressed: {bad}; {how}."
    if verdict == "undecided":
        if not gate:
            reasons = "; ".join(f"{c.judge}: {c.calibration}" for c in comparisons) or "no judge scored both runs"
            return (f"Undecided: no judge may gate ({reasons}). Calibrate judges with calibration_report or pass "
                    "allow_uncalibrated.")
        why = "; ".join(f"{c.judge}: {c.reason}" for c in gate if c.verdict == "undecided")
        return f"Undecided: {why}; {how}."
    return f"{verdict[0].upper() + verdict[1:]} across {len(gate)} gating judge(s); {how}."
