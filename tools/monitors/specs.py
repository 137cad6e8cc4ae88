"""define_monitor: a monitor is a versioned definition, like a judge.

A monitor = which judges (pinned to versions when defined), which live traces (a filter, a
hash-of-trace-id sample rate), how often (``every``: tumbling windows of that length starting at
``since``), what a window may spend (``budget``) and when to alert (``alerts``). The version is a
hash of the definition without its start, so defining the same monitor again is a no-op and a
changed one is ``name@2`` whose windows start fresh (its baseline never mixes judge versions).
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tools.errors import InvalidInputError, NotFoundError
from tools.filters import parser
from tools.judges import registry
from tools.judges.ports import JudgeStore
from tools.judges.runs import parse_window
from tools.monitors.ports import MonitorRecord, MonitorStore

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MINUTE_MS = 60_000
SliceField = Literal["model", "environment", "prompt_version", "name"]


class Budget(BaseModel):
    """What one window may spend on LLM judges. Rule and classifier judges cost nothing and always run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_judge_calls: int | None = Field(None, ge=1, description=(
        "LLM judge calls per window. The window's sample is cut to fit before anything runs (a stable hash "
        "order, so the cut is itself a uniform sample and its selection probability is recorded)."))
    max_tokens: int | None = Field(None, ge=1, description="Input + output tokens per window; the run stops "
                                                           "cleanly before a call once this is spent.")
    max_usd: float | None = Field(None, gt=0, description="USD per window (needs TRACESIEVE_JUDGE_PRICE_IN/_OUT); "
                                                          "the run stops cleanly before a call once this is spent.")


class AlertRules(BaseModel):
    """When a window raises an alert. Defaults aim at <= 5% of stable windows raising anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline_windows: int = Field(6, ge=1, le=200, description="Baseline = the previous K completed windows "
                                                               "(pooled), unless baseline_run is set.")
    baseline_run: str | None = Field(None, description="Pin the baseline to a judge run instead (e.g. the run "
                                                       "of the release candidate on golden@3).")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="Family-wise error rate per window: Holm's correction "
                                                          "runs across every judge x slice and the error-rate "
                                                          "and p95 tests.")
    min_drop: float = Field(0.05, ge=0, le=1, description="Smallest pass-rate drop (0-1) worth an alert, on top "
                                                         "of significance.")
    min_items: int = Field(20, ge=1, description="Scored items a judge (or slice) needs in a window to be tested.")
    slice_by: list[SliceField] = Field(default_factory=list, max_length=2, description=(
        "Also test pass rates per value of these trace fields (model, environment, prompt_version, name)."))
    error_rate: bool = Field(True, description="Alert when the window's trace error rate rose (Fisher exact).")
    latency_ratio: float | None = Field(1.25, gt=1, description="Alert when p95 latency is at least this times "
                                                               "the baseline's and significantly more traces "
                                                               "exceed the baseline p95 than 5%; null = off.")
    emerging_min_traces: int = Field(5, ge=1, description="An error pattern absent from the baseline alerts once "
                                                          "this many traces in one window show it ...")
    emerging_min_share: float = Field(0.01, ge=0, le=1, description="... and they are at least this share of the "
                                                                   "window's traffic.")
    gate_threshold: float = Field(0.6, ge=-1, le=1, description="Calibration MCC a judge needs for its drops to "
                                                               "be 'regression' (others raise 'signal').")


BUDGET_TEXT = ("Per-window cap on LLM judges: {'max_judge_calls': 500, 'max_tokens': 400000, 'max_usd': 2.0} "
               "(any subset; default none).")
ALERTS_TEXT = ("Alert rules, any subset of {'baseline_windows': 6, 'baseline_run': null, 'alpha': 0.05, "
               "'min_drop': 0.05, 'min_items': 20, 'slice_by': ['model'], 'error_rate': true, 'latency_ratio': 1.25, "
               "'emerging_min_traces': 5, 'emerging_min_share': 0.01, 'gate_threshold': 0.6}.")
OptionalBudget = Annotated[Budget | None, Field(description=BUDGET_TEXT)]
OptionalAlerts = Annotated[AlertRules | None, Field(description=ALERTS_TEXT)]
MonitorName = Annotated[str, Field(min_length=1, max_length=64, description=(
    "Monitor name: letters, digits, '_', '-', '.', e.g. 'prod_quality'. Redefining it with changes makes a new "
    "version."))]
JudgeList = Annotated[list[str], Field(min_length=1, max_length=20, description=(
    "Judges to run each window: names (pinned to their latest version now) or refs like 'grounded@2'."))]
TrafficFilter = Annotated[str, Field(description=(
    "search_traces filter for the live traffic, e.g. \"tags.environment = 'production'\". Traces still "
    "IN_PROGRESS are always left for a later window."))]
MonitorSampleRate = Annotated[float, Field(gt=0, le=1, description=(
    "Share of matching traces judged (0-1), chosen by a hash of the trace id: a rerun picks the same traces, "
    "and each judged trace's selection probability is recorded."))]
Every = Annotated[str, Field(description="Window length and cadence, whole minutes or more: '15m', '1h', '1d'. "
                                         "Windows are (start, end], end = since + k x every.")]
WindowLen = Annotated[str | None, Field(description="Only judge the last part of each window, e.g. every='1h', "
                                                    "window='15m'; default = the whole window. Never longer "
                                                    "than every (overlapping windows would count traces twice).")]
Settle = Annotated[str, Field(description="Wait this long after a window ends before judging it, so late spans "
                                          "and still-running traces arrive (default '5m').")]
Since = Annotated[int | None, Field(description="Epoch ms where the first window starts. In the past = backfill: "
                                                "the first run judges every window since then and the early "
                                                "windows become the baseline. Default: now, rounded down to every.")]


class MonitorSpec(BaseModel):
    """The stored definition (judges already pinned)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    judges: list[str]
    filter: str = ""
    sample_rate: float = Field(1.0, gt=0, le=1)
    every_ms: int
    window_ms: int
    settle_ms: int
    budget: Budget = Budget()
    alerts: AlertRules = AlertRules()


class DefineMonitorInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: MonitorName
    judges: JudgeList
    filter: TrafficFilter = ""
    sample_rate: MonitorSampleRate = 1.0
    every: Every = "1h"
    window: WindowLen = None
    settle: Settle = "5m"
    since: Since = None
    budget: Annotated[Budget, Field(description=BUDGET_TEXT)] = Budget()
    alerts: Annotated[AlertRules, Field(description=ALERTS_TEXT)] = AlertRules()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"monitor name {value!r} may only hold letters, digits, '_', '-' and '.'")
        return value


class MonitorVersion(BaseModel):
    ref: str = Field(description="'name@seq'.")
    version: str
    seq: int
    since: int = Field(description="Epoch ms where window 1 starts.")
    spec: MonitorSpec
    explained: str


class DefineMonitorResult(BaseModel):
    monitor: MonitorVersion
    created: bool = Field(description="False when this exact definition already existed (nothing changed).")
    next: str


def _minutes(text: str, what: str) -> int:
    ms = parse_window(text)
    if ms % MINUTE_MS:
        raise InvalidInputError(f"{what} {text!r} must be whole minutes, e.g. '15m' or '1h'.")
    return ms


def explain(spec: MonitorSpec) -> str:
    parts = [f"every {spec.every_ms // MINUTE_MS} min judge "
             f"{'all' if spec.sample_rate >= 1 else f'{spec.sample_rate:.0%} (hash of trace id)'} of "
             f"{spec.filter or 'all traces'} with {', '.join(spec.judges)}"]
    if spec.window_ms < spec.every_ms:
        parts.append(f"only the last {spec.window_ms // MINUTE_MS} min of each window")
    b = spec.budget
    caps = [f"{b.max_judge_calls} calls" if b.max_judge_calls else "", f"{b.max_tokens} tokens" if b.max_tokens
            else "", f"${b.max_usd:g}" if b.max_usd else ""]
    if any(caps):
        parts.append("budget " + ", ".join(c for c in caps if c) + " per window")
    a = spec.alerts
    parts.append(f"baseline {'run ' + a.baseline_run if a.baseline_run else f'previous {a.baseline_windows} windows'}"
                 f", alpha {a.alpha:g} (Holm), min drop {a.min_drop:.0%}")
    return "; ".join(parts)


def version_hash(spec: MonitorSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:12]


def to_version(record: MonitorRecord) -> MonitorVersion:
    spec = MonitorSpec.model_validate(record.spec)
    return MonitorVersion(ref=f"{record.name}@{record.seq}", version=record.version, seq=record.seq,
                          since=record.since_ms, spec=spec, explained=explain(spec))


def define_monitor(store: MonitorStore, judges: JudgeStore, inp: DefineMonitorInput, *,
                   now_ms: int) -> DefineMonitorResult:
    """Validate everything before storing: the filter parses, judges exist, durations make sense."""
    if inp.filter.strip():
        parser.parse(inp.filter)
    pinned = [registry.resolve(judges, ref) for ref in dict.fromkeys(inp.judges)]
    names = [j.name for j in pinned]
    if len(set(names)) < len(names):
        raise InvalidInputError("A monitor runs one version per judge; list each judge once.")
    every = _minutes(inp.every, "every")
    window = _minutes(inp.window, "window") if inp.window else every
    if window > every:
        raise InvalidInputError(f"window {inp.window!r} is longer than every {inp.every!r}: windows would overlap "
                                "and count traces twice. Use window <= every.")
    settle = _minutes(inp.settle, "settle") if inp.settle.strip() not in ("0", "0m") else 0
    spec = MonitorSpec(judges=[j.ref for j in pinned], filter=inp.filter.strip(), sample_rate=inp.sample_rate,
                       every_ms=every, window_ms=window, settle_ms=settle, budget=inp.budget, alerts=inp.alerts)
    version = version_hash(spec)
    existing = store.monitor_versions(inp.name)
    for record in existing:
        if record.version == version:
            return DefineMonitorResult(monitor=to_version(record), created=False,
                                       next="Unchanged. `tracesieve monitor run --once` runs its due windows.")
    since = inp.since if inp.since is not None else now_ms - now_ms % every
    record = store.save_monitor(MonitorRecord(name=inp.name, version=version,
                                              seq=existing[0].seq + 1 if existing else 1,
                                              spec=spec.model_dump(mode="json"), since_ms=since, created_at_ms=now_ms))
    return DefineMonitorResult(monitor=to_version(record), created=True,
                               next="Run its due windows with `tracesieve monitor run --once` (cron) or "
                                    "`--follow`, or serve with `tracesieve serve --monitor`; then monitor_status.")


def resolve_monitor(store: MonitorStore, ref: str) -> MonitorRecord:
    """'name' -> latest version, 'name@2' -> that version."""
    name, _, want = ref.strip().partition("@")
    versions = store.monitor_versions(name)
    if not versions:
        known = sorted({m.name for m in store.latest_monitors()})
        raise NotFoundError(f"No monitor named {name!r}. " + (f"Existing: {', '.join(known[:10])}." if known else
                                                               "Define one with define_monitor."))
    if not want:
        return versions[0]
    for record in versions:
        if (want.isdigit() and record.seq == int(want)) or record.version.startswith(want):
            return record
    raise NotFoundError(f"Monitor {name!r} has no version {want!r}. Versions: "
                        f"{', '.join(f'{name}@{r.seq}' for r in versions)}.")
