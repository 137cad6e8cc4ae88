"""Markdown for people in chat: calibration reports, queues and run comparisons.

Agents get the structured results; these renderings are what a person reads in a chat window
or a CI log, so they lead with the verdict and say which class is positive.
"""

from __future__ import annotations

from tools.labels.annotation_queue import AnnotationQueueResult
from tools.calibration.agreement import CalibrationReportResult, GroupRow
from tools.calibration.regression import CompareRunsResult

_NAMES = {"tpr": "TPR (recall on fails)", "tnr": "TNR", "precision": "precision", "f1": "F1",
          "accuracy": "accuracy", "mcc": "**MCC**", "kappa": "Cohen's κ"}


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _ci(low: float | None, high: float | None, fmt=_num) -> str:
    return "" if low is None or high is None else f"[{fmt(low)}, {fmt(high)}]"


def _cell(text: str | None, limit: int = 90) -> str:
    text = " ".join((text or "").split())
    return (text[:limit] + "…" if len(text) > limit else text).replace("|", "\\|") or "–"


def _groups(title: str, rows: list[GroupRow]) -> list[str]:
    if len(rows) < 2:
        return []
    out = [f"**{title}**", "", "| | n | MCC | 95% CI | κ | verdict |", "|---|---:|---:|---|---:|---|"]
    out += [f"| {r.group} | {r.n} | {_num(r.mcc)} | {_ci(r.mcc_low, r.mcc_high)} | {_num(r.kappa)} | {r.verdict} |"
            for r in rows]
    return out + [""]


def render_calibration(r: CalibrationReportResult) -> str:
    c = r.confusion
    mcc = r.metrics["mcc"]
    lines = [
        f"### Judge `{r.judge}` vs human labels on `{r.criterion}`: **{r.verdict.upper()}**",
        r.verdict_reason[0].upper() + r.verdict_reason[1:] + (f" (MCC 95% CI {_ci(mcc.low, mcc.high)})."
                                                               if mcc.low is not None else "."),
        f"Positive class = **fail** (the judge as a failure detector). n = {r.n} pairs from {r.labelled_traces} "
        f"labelled traces; {r.unknown_verdicts} 'unknown' verdicts left out (coverage {_pct(r.coverage)}), "
        f"{r.unscored} labelled traces not scored" + (f", run `{r.run_id}`" if r.run_id else "") + ".",
        "",
        "| | human fail | human pass |", "|---|---:|---:|",
        f"| **judge fail** | {c.tp:g} (TP) | {c.fp:g} (FP) |",
        f"| **judge pass** | {c.fn:g} (FN) | {c.tn:g} (TN) |",
        "",
        "| metric | value | 95% CI |", "|---|---:|---|",
    ]
    lines += [f"| {_NAMES[k]} | {_num(r.metrics[k].value)} | {_ci(r.metrics[k].low, r.metrics[k].high)} |"
              for k in _NAMES]
    lines.append("")
    if r.labels_for_mcc_pm_0_1:
        lines.append(f"About {r.labels_for_mcc_pm_0_1} more labels would narrow the MCC interval to ±0.1.")
    if r.correlations:
        k = r.correlations
        lines.append(f"Graded scores vs {k.against} (n={k.n}): Spearman ρ {_num(k.spearman.value)} "
                     f"{_ci(k.spearman.low, k.spearman.high)}, Kendall τ {_num(k.kendall.value)} "
                     f"{_ci(k.kendall.low, k.kendall.high)}.")
    if r.corrected_pass_rate:
        p = r.corrected_pass_rate
        lines.append(f"Pass rate of run `{p.run_id}` ({p.items} items): observed {_pct(p.observed_pass_rate)}, "
                     f"judge-bias-corrected {_pct(p.corrected_pass_rate)} {_ci(p.low, p.high, _pct)}"
                     + (" (reweighted by selection probability)" if p.reweighted else "") + ".")
    lines.append("")
    lines += _groups("By judge version", r.by_version)
    lines += _groups("By time window (drift)", r.by_window)
    if r.disagreements:
        lines += [f"**Disagreements** ({len(r.disagreements)} of {r.disagreements_total})", "",
                  "| trace | kind | judge | judge rationale | human rationale |", "|---|---|---|---|---|"]
        lines += [f"| `{d.trace_id}` | {d.kind} | {d.judge_verdict} ({_num(d.judge_score)}) | "
                  f"{_cell(d.judge_rationale)} | {_cell(d.human_rationale)} ({d.reviewer or '?'}) |"
                  for d in r.disagreements]
        lines.append("")
    lines += [f"⚠ {w}" for w in r.warnings]
    lines.append(f"_Intervals: {r.bootstrap}._")
    return "\n".join(lines).strip() + "\n"


def render_queue(q: AnnotationQueueResult) -> str:
    lines = [f"### Annotation queue `{q.queue_id}` for `{q.criterion}`: {len(q.items)} of {q.population} "
             f"unlabelled traces ({q.anomalous} with signals, {q.already_labelled} already labelled)", "",
             "| # | trace | priority | picked | p | reasons |", "|---:|---|---:|---|---:|---|"]
    for i in q.items:
        reasons = "; ".join(r.text for r in i.reasons[:3]) or "(uniform random pick)"
        lines.append(f"| {i.rank} | `{i.trace_id}` | {i.priority:.2f} | {i.selected_by} | "
                     f"{i.selection_probability:.3g} | {_cell(reasons, 160)} |")
    lines += ["", q.next_step]
    return "\n".join(lines) + "\n"


def render_compare(r: CompareRunsResult) -> str:
    icon = {"regressed": "❌", "improved": "✅", "no significant change": "✅", "undecided": "⚠"}[r.verdict]
    lines = [f"### {icon} `{r.candidate_run}` vs `{r.baseline_run}`: **{r.verdict}** (exit {r.exit_code})",
             r.summary, "",
             "| judge | gates | baseline | candidate | Δ | 95% CI | pass→fail | fail→pass | p (Holm) | verdict |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---|"]
    for j in r.judges:
        p = j.p_adjusted if j.p_adjusted is not None else j.p_value
        adj = "" if j.p_adjusted is not None else " raw"
        lines.append(
            f"| {j.judge} | {'yes' if j.gating else 'no'} | {_pct(j.baseline_pass_rate)} | "
            f"{_pct(j.candidate_pass_rate)} | {'–' if j.delta is None else f'{j.delta:+.1%}'} | "
            f"{_ci(j.delta_low, j.delta_high, lambda v: f'{v:+.1%}')} | {j.pass_to_fail} | {j.fail_to_pass} | "
            f"{'–' if p is None else f'{p:.3g}{adj}'} | {j.verdict} |")
    notes = [f"- `{j.judge}`: {j.calibration}" for j in r.judges if not j.gating]
    if notes:
        lines += ["", "Not gating:"] + notes
    if r.only_in_one_run:
        lines += ["", f"Scored in one run only (not compared): {', '.join(r.only_in_one_run)}"]
    worst = sorted((s for s in r.slices if s.delta is not None), key=lambda s: s.delta)[:5]
    if worst:
        lines += ["", "**Largest drops by slice** (unadjusted p, exploratory)", "",
                  "| slice | judge | n | baseline | candidate | Δ | p |", "|---|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {s.field}={s.value} | {s.judge} | {s.n} | {_pct(s.baseline_pass_rate)} | "
                  f"{_pct(s.candidate_pass_rate)} | {s.delta:+.1%} | {_num(s.p_value, 3)} |" for s in worst]
    if r.flips:
        lines += ["", f"**Flipped items** ({len(r.flips)} of {r.flips_total}, regressions first)", ""]
        lines += [f"- {f.direction} `{f.judge}` item `{f.item}`: {_cell(f.candidate_rationale, 120)}"
                  for f in r.flips[:10]]
    return "\n".join(lines) + "\n"
