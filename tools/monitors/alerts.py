"""Which alerts a finished window raises: tested shifts against a baseline, one family per window.

Tests (all one-sided: only a change for the worse alerts):

* **pass rate**, per judge and per slice: Fisher's exact test on (baseline pass/fail, window
  pass/fail). Exact at any count, so a 30-item window is tested as honestly as a 3,000-item one.
* **error rate** of all finished traces in the window: Fisher's exact test against the baseline
  span (the previous K windows of time), the counts ``error_patterns`` computes.
* **p95 latency**: under "nothing changed" a window trace exceeds the baseline p95 with
  probability 5%, so the number that do is Binomial(n, 0.05): an exact binomial test, plus an
  effect floor (window p95 >= ratio x baseline p95) so a significant but tiny shift stays quiet.

Holm's step-down correction runs over every test of the window (judges x slices, error rate,
p95), so the chance that a stable window raises anything is at most ``alpha``. An alert also
needs the effect floor (``min_drop`` points). Only judges whose latest calibration clears the
gate threshold (for the version the monitor runs) raise ``regression``; the rest raise
``signal``: the drop is real in the judge's eyes, but the judge is not trusted to gate.

An open alert resolves after ``CLEAR_WINDOWS`` windows in a row show its condition gone
(``recovered``: back near the alert's own pre-alert baseline), never merely because one small
window was not significant.

**Emerging failure patterns** are not a test: an error group (type x where x normalised
message, from ``error_patterns``) with no trace in the baseline span that reaches a floor of
traces and share of traffic in this window, once the baseline span has seen at least three
times the window's traffic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from tools.analysis.error_patterns import ErrorData
from tools.calibration.regression import CalibrationStatus
from tools.calibration.stats_paired import holm
from tools.monitors.ports import AlertKind, JudgeCount
from tools.monitors.specs import AlertRules

NULL_EXCEED = 0.05   # share of traces above the baseline p95 when nothing changed
MIN_ERROR_RISE = 0.02
#: Emerging patterns need a baseline span of at least this many times the window's traffic: a pattern
#: on >= 5 of the window's n traces (rate ~5/n) is then absent from it by chance with p ~ e^-15.
BASELINE_SPAN_FACTOR = 3
CLEAR_WINDOWS = 2


@dataclass
class Candidate:
    """An alert this window would raise (before deduplication against open alerts)."""

    key: str
    kind: AlertKind
    subject: str
    summary: str
    evidence: dict[str, Any]


@dataclass
class _Test:
    key: str
    p: float
    effect_ok: bool
    build: Any                     # (p_adjusted) -> Candidate
    p_adjusted: float = 1.0


@dataclass
class WindowEvidence:
    """Everything the tests look at for one window."""

    window: list[JudgeCount]
    baseline: list[JudgeCount]
    baseline_label: str
    errors: ErrorData
    slower: int = 0
    calibrations: dict[str, CalibrationStatus] = field(default_factory=dict)
    judge_versions: dict[str, str] = field(default_factory=dict)    # name -> version hash the monitor runs
    fail_examples: dict[str, list[str]] = field(default_factory=dict)


def alert_id(monitor: str, version: str, key: str, first_window_end: int) -> str:
    """Stable: the same alert raised again for the same window (a resumed run) gets the same id."""
    return "al-" + hashlib.sha256(f"{monitor}@{version}|{key}|{first_window_end}".encode()).hexdigest()[:12]


def gates(judge: str, status: CalibrationStatus | None, version: str | None, threshold: float) -> tuple[bool, str]:
    """Does this judge's calibration allow it to raise ``regression``? (compare_runs' rule.)"""
    if status is None:
        return False, "not calibrated (calibration_report)"
    if status.judge_version and version and status.judge_version != version:
        return False, f"calibrated version {status.judge_version} is not the monitored {version}: recalibrate"
    if status.verdict == "insufficient":  # whatever its MCC: too few labels of one class to trust it
        return False, f"calibration insufficient (n={status.n}, too few labels of one class): label more, recalibrate"
    if status.mcc is None or status.mcc < threshold:
        return False, f"MCC {status.mcc if status.mcc is not None else 'undefined'} below {threshold:g}"
    return True, f"MCC {status.mcc:.2f} (n={status.n}) >= {threshold:g}"


def _pooled(counts: list[JudgeCount]) -> dict[tuple[str, str | None], JudgeCount]:
    out: dict[tuple[str, str | None], JudgeCount] = {}
    for c in counts:
        key = (c.judge, c.slice)
        cur = out.setdefault(key, JudgeCount(judge=c.judge, slice=c.slice))
        cur.passed += c.passed
        cur.failed += c.failed
        cur.unknown += c.unknown
    return out


def pool(counts: list[JudgeCount]) -> list[JudgeCount]:
    return list(_pooled(counts).values())


def _fisher_greater(a_pass: int, a_fail: int, b_pass: int, b_fail: int) -> float:
    """P(a's pass odds exceed b's this much by chance): small when b (the window) dropped."""
    from scipy.stats import fisher_exact  # imported on use: scipy.stats takes seconds to import

    return float(fisher_exact([[a_pass, a_fail], [b_pass, b_fail]], alternative="greater").pvalue)


def _pass_rate_tests(ev: WindowEvidence, rules: AlertRules) -> list[_Test]:
    tests: list[_Test] = []
    base = _pooled(ev.baseline)
    for (judge, slice_), cur in sorted(_pooled(ev.window).items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        ref = base.get((judge, slice_))
        if ref is None or cur.known < rules.min_items or ref.known < rules.min_items:
            continue
        base_rate, cur_rate = ref.passed / ref.known, cur.passed / cur.known
        drop = base_rate - cur_rate
        p = _fisher_greater(ref.passed, ref.failed, cur.passed, cur.failed)
        name = judge.split("@")[0]
        ok, why = gates(name, ev.calibrations.get(name), ev.judge_versions.get(name), rules.gate_threshold)
        kind: AlertKind = "regression" if ok else "signal"
        subject = judge + (f" [{slice_}]" if slice_ else "")

        def build(p_adj: float, *, judge=judge, slice_=slice_, cur=cur, ref=ref, base_rate=base_rate,
                  cur_rate=cur_rate, drop=drop, p=p, kind=kind, subject=subject, why=why) -> Candidate:
            return Candidate(
                key=f"pass_rate:{judge.split('@')[0]}:{slice_ or '*'}", kind=kind, subject=subject,
                summary=(f"{subject} pass rate {cur_rate:.1%} ({cur.passed}/{cur.known}) vs {base_rate:.1%} "
                         f"({ref.passed}/{ref.known}) in {ev.baseline_label}: -{drop * 100:.1f} pts, "
                         f"p={p:.2g} (Holm {p_adj:.2g}); {kind} — {why}."),
                evidence={"judge": judge, "slice": slice_, "window": cur.model_dump(), "baseline": ref.model_dump(),
                          "window_pass_rate": round(cur_rate, 4), "baseline_pass_rate": round(base_rate, 4),
                          "effect_pts": round(-drop * 100, 2), "p_value": p, "p_adjusted": p_adj,
                          "test": "Fisher exact, one-sided", "calibration": why, "baseline_from": ev.baseline_label,
                          "example_trace_ids": ev.fail_examples.get(judge, [])[:5] if not slice_ else []})

        tests.append(_Test(key=f"{judge}|{slice_}", p=p, effect_ok=drop >= rules.min_drop, build=build))
    return tests


def _error_rate_test(ev: WindowEvidence, rules: AlertRules) -> list[_Test]:
    cur, prev = ev.errors.current, ev.errors.previous
    if not rules.error_rate or cur.traces < rules.min_items or prev.traces < rules.min_items:
        return []
    cur_rate, prev_rate = cur.errors / cur.traces, prev.errors / prev.traces
    # "window's OK odds are lower than the baseline's" = the error rate rose
    p = _fisher_greater(prev.traces - prev.errors, prev.errors, cur.traces - cur.errors, cur.errors)

    def build(p_adj: float) -> Candidate:
        return Candidate(key="error_rate", kind="error_rate", subject="trace error rate",
                         summary=(f"Error rate {cur_rate:.1%} ({cur.errors}/{cur.traces}) vs {prev_rate:.1%} "
                                  f"({prev.errors}/{prev.traces}) in the baseline span: "
                                  f"+{(cur_rate - prev_rate) * 100:.1f} pts, p={p:.2g} (Holm {p_adj:.2g})."),
                         evidence={"window": cur.model_dump(), "baseline": prev.model_dump(),
                                   "effect_pts": round((cur_rate - prev_rate) * 100, 2), "p_value": p,
                                   "p_adjusted": p_adj, "test": "Fisher exact, one-sided"})

    return [_Test(key="error_rate", p=p, effect_ok=cur_rate - prev_rate >= MIN_ERROR_RISE, build=build)]


def _latency_test(ev: WindowEvidence, rules: AlertRules) -> list[_Test]:
    cur, prev = ev.errors.current, ev.errors.previous
    if rules.latency_ratio is None or not prev.p95_ms or cur.p95_ms is None or cur.traces < rules.min_items \
            or prev.traces < rules.min_items:
        return []
    from scipy.stats import binomtest

    p = float(binomtest(ev.slower, cur.traces, NULL_EXCEED, alternative="greater").pvalue)
    ratio = cur.p95_ms / prev.p95_ms

    def build(p_adj: float) -> Candidate:
        return Candidate(key="latency_p95", kind="latency_p95", subject="p95 latency",
                         summary=(f"p95 latency {cur.p95_ms:.0f} ms vs {prev.p95_ms:.0f} ms in the baseline span "
                                  f"(x{ratio:.2f}); {ev.slower}/{cur.traces} traces slower than the baseline p95 "
                                  f"(5% expected), p={p:.2g} (Holm {p_adj:.2g})."),
                         evidence={"window_p95_ms": cur.p95_ms, "baseline_p95_ms": prev.p95_ms,
                                   "ratio": round(ratio, 3), "slower_than_baseline_p95": ev.slower,
                                   "traces": cur.traces, "p_value": p, "p_adjusted": p_adj,
                                   "test": "exact binomial vs 5%, one-sided"})

    return [_Test(key="latency_p95", p=p, effect_ok=ratio >= rules.latency_ratio, build=build)]


def _emerging(ev: WindowEvidence, rules: AlertRules) -> list[Candidate]:
    cur, prev = ev.errors.current, ev.errors.previous
    if not cur.traces or prev.traces < BASELINE_SPAN_FACTOR * cur.traces:
        return []      # too little history: a pattern at the floor could be missing from it by chance
    out = []
    for row in ev.errors.patterns:
        share = row.traces / cur.traces
        if row.previous_traces or row.traces < rules.emerging_min_traces or share < rules.emerging_min_share:
            continue
        where = f"{row.error_type} at '{row.location}'"
        out.append(Candidate(
            key=f"pattern:{row.error_type}|{row.location}|{row.message or ''}", kind="emerging_pattern",
            subject=where, summary=(f"New failure pattern {where}: {row.message or '(no message)'} — {row.traces} "
                                    f"traces ({share:.1%} of the window), none in the baseline span."),
            evidence={"error_type": row.error_type, "location": row.location, "message": row.message,
                      "traces": row.traces, "share_of_traffic": round(share, 4), "occurrences": row.occurrences,
                      "failed_traces": row.failed_traces, "baseline_traces": 0,
                      "example_trace_ids": row.example_trace_ids}))
    return out


def recovered(key: str, evidence: dict[str, Any], ev: WindowEvidence, rules: AlertRules) -> bool | None:
    """Is an open alert's condition clearly gone in this window? None = the window cannot tell (too few
    items). Judged against the alert's own pre-alert baseline (a rolling baseline absorbs a lasting drop,
    so "no longer significant" would resolve a regression that is still there)."""
    cur = ev.errors.current
    if key.startswith("pass_rate:"):
        _, judge, slice_ = key.split(":", 2)
        rows = [c for c in ev.window if c.judge.split("@")[0] == judge and (c.slice or "*") == slice_]
        if not rows or rows[0].known < rules.min_items:
            return None
        return rows[0].passed / rows[0].known >= evidence["baseline_pass_rate"] - rules.min_drop / 2
    if cur.traces < rules.min_items:
        return None
    if key == "error_rate":
        base = evidence["baseline"]
        return cur.errors / cur.traces <= base["errors"] / max(1, base["traces"]) + MIN_ERROR_RISE / 2
    if key == "latency_p95":
        ratio = rules.latency_ratio or 1.0
        return cur.p95_ms is not None and cur.p95_ms < evidence["baseline_p95_ms"] * (1 + (ratio - 1) / 2)
    if key.startswith("pattern:"):
        return not any(f"pattern:{r.error_type}|{r.location}|{r.message or ''}" == key for r in ev.errors.patterns)
    return None


def evaluate(ev: WindowEvidence, rules: AlertRules) -> tuple[list[Candidate], int]:
    """The window's alerts and how many hypothesis tests the correction covered."""
    tests = _pass_rate_tests(ev, rules) + _error_rate_test(ev, rules) + _latency_test(ev, rules)
    for test, p_adj in zip(tests, holm([t.p for t in tests])):
        test.p_adjusted = p_adj
    raised = [t.build(t.p_adjusted) for t in tests if t.p_adjusted < rules.alpha and t.effect_ok]
    return raised + _emerging(ev, rules), len(tests)
