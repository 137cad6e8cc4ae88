"""run_monitors: judge every due window of every monitor, exactly once, in order, resumably.

A window (start, end] of a monitor version is due once ``end + settle <= now``. Windows run oldest
first; a monitor whose window cannot finish now (another process holds it, the model failed)
stops there, so later windows never build their baseline without it. Per window:

1. claim the window row (exactly once: the row is the lock; a claim older than the judge run
   staleness window can be taken over after a kill);
2. resolve the sample: the monitor's filter AND ``attributes.status != 'IN_PROGRESS'`` (a trace
   still running is left alone; ``settle`` gives late roots time to arrive), hash-of-trace-id
   sampling, cut to the call budget in the same stable hash order. The exact target is stored
   on the window before the judge run starts, so a resumed window finds its run and judges the
   same traces;
3. run the judges through ``tools.judges.runs.run_judges`` (the same code, cache and resume as a
   hand-started run), with the model wrapped in the window's token/money budget;
4. measure (verdict counts per judge and slice, error rate, p95, error groups), test against
   the baseline (``alerts.evaluate``), and store stats, status and alert changes in one
   transaction. An alert whose condition persists is updated, not raised again; one whose
   condition is clearly gone for ``alerts.CLEAR_WINDOWS`` windows in a row is resolved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from tools import clock
from tools.errors import ConflictError, TracesieveError
from tools.filters import parser
from tools.analysis.error_patterns import ErrorRequest
from tools.judges import registry, runs
from tools.judges.ports import ItemSource, JudgeRecord, JudgeStore, Target
from tools.judges.run_reports import STALE_MS
from tools.monitors import alerts as A
from tools.monitors.budget import BudgetedModel
from tools.monitors.ports import AlertRecord, JudgeCount, MonitorRecord, MonitorStore, Spend, WindowRecord, WindowStats
from tools.monitors.specs import MonitorSpec, resolve_monitor
from tools.traces.search import iso_ms

FINISHED = "attributes.status != 'IN_PROGRESS'"
PATTERNS = 20

MonitorRefs = Annotated[list[str] | None, Field(description="Monitors to run (names or 'name@2'); omit for all.")]
MaxWindows = Annotated[int, Field(ge=1, le=10_000, description="At most this many windows per monitor in this "
                                                               "call (catch-up after long downtime); the rest "
                                                               "run next time.")]


class RunMonitorsInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    monitors: MonitorRefs = None
    max_windows: MaxWindows = 1000


class AlertView(BaseModel):
    alert_id: str
    monitor: str
    kind: str
    subject: str
    status: str
    summary: str
    first_window_end: str | None
    last_window_end: str | None
    windows_seen: int
    evidence: dict[str, Any]


class WindowOutcome(BaseModel):
    monitor: str = Field(description="'name@seq'.")
    start: str | None
    end: str | None
    status: str = Field(description="'completed' | 'budget_stopped' | 'busy' (another process holds it) | "
                                     "'failed' (will be resumed by the next run).")
    run_id: str | None
    traces: int = 0
    sampled: int = 0
    pass_rates: dict[str, float | None] = Field(default_factory=dict, description="Per judge, this window.")
    spend: Spend = Spend()
    tests: int = Field(0, description="Hypothesis tests under the window's Holm correction.")
    new_alerts: list[AlertView] = Field(default_factory=list)
    firing: list[str] = Field(default_factory=list, description="Every condition this window showed, 'kind: subject'"
                                                                 " (new alerts and open ones seen again).")
    note: str | None = None


class RunMonitorsResult(BaseModel):
    windows: list[WindowOutcome]
    new_alerts: int
    new_regressions: int = Field(description="New 'regression' alerts: `monitor run --once` exits 1 when > 0.")
    next_due: dict[str, str | None] = Field(description="Per monitor, when its next window becomes due (UTC).")


def alert_view(a: AlertRecord) -> AlertView:
    return AlertView(alert_id=a.alert_id, monitor=a.monitor, kind=a.kind, subject=a.subject, status=a.status,
                     summary=a.summary, first_window_end=iso_ms(a.first_window_end),
                     last_window_end=iso_ms(a.last_window_end), windows_seen=a.windows_seen, evidence=a.evidence)


def selection(spec: MonitorSpec) -> str:
    """The monitor's filter restricted to finished traces."""
    return f"({spec.filter}) AND {FINISHED}" if spec.filter else FINISHED


def due_windows(record: MonitorRecord, spec: MonitorSpec, now_ms: int) -> list[tuple[int, int]]:
    """Every (start, end] from since whose end + settle has passed."""
    last = (now_ms - spec.settle_ms - record.since_ms) // spec.every_ms
    start = record.since_ms
    return [(start + k * spec.every_ms, start + (k + 1) * spec.every_ms) for k in range(max(0, last))]


class _Context:
    def __init__(self, store: MonitorStore, judges: JudgeStore, source: ItemSource, model: Any, hint: str,
                 progress: Callable[[str], Awaitable[None]] | None) -> None:
        self.store, self.judges, self.source, self.model, self.hint = store, judges, source, model, hint
        self.progress = progress


async def _thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))


def _target(spec: MonitorSpec, end: int, sample_rate: float, max_items: int | None = None) -> Target:
    return Target(filter=selection(spec), window_ms=spec.window_ms, now_ms=end, sample_rate=sample_rate,
                  max_items=max_items)


def _plan(ctx: _Context, spec: MonitorSpec, llm_judges: int, end: int) -> tuple[Target, int, int, str | None]:
    """The window's target (sample cut to the call budget), its traffic and sample sizes."""
    traces = ctx.source.resolve(_target(spec, end, 1.0)).items
    sampled = ctx.source.resolve(_target(spec, end, spec.sample_rate)).items if spec.sample_rate < 1 else traces
    cap, note = None, None
    calls = spec.budget.max_judge_calls
    if calls and llm_judges and sampled * llm_judges > calls:
        cap = max(1, calls // llm_judges)
        note = (f"call budget {calls}: judged {cap} of {sampled} sampled traces (stable hash order, so still a "
                f"uniform sample)")
        sampled = cap
    return _target(spec, end, spec.sample_rate, cap), traces, sampled, note


async def _judge_window(ctx: _Context, spec: MonitorSpec, window: WindowRecord, target: Target,
                        judges: list[JudgeRecord]) -> tuple[str | None, BudgetedModel | None, bool]:
    """Run (or resume) the window's judge run. Returns (run_id, budgeted model, budget stopped)."""
    llm_judges = sum(j.kind == "llm" for j in judges)
    run_id = window.run_id or await _thread(ctx.store.find_run, target.model_dump(mode="json"),
                                            [f"{j.name}@{j.version}" for j in judges])
    budgeted = None
    if llm_judges and ctx.model is not None:
        spent = await _thread(ctx.store.run_spend, run_id) if run_id else Spend()
        budgeted = BudgetedModel(ctx.model, spec.budget, spent)
    if run_id:
        run = await _thread(ctx.judges.load_run, run_id)
        if run is not None and run.status == "completed":
            return run_id, budgeted, False
        inp = runs.RunJudgesInput(resume_run_id=run_id)
        now = clock.now_ms()
    else:
        inp = runs.RunJudgesInput(judges=spec.judges, filter=target.filter, window=f"{spec.window_ms // 60_000}m",
                                  sample_rate=target.sample_rate, max_items=target.max_items)
        now = int(target.now_ms or 0)
    if budgeted is not None and budgeted.exhausted():
        return run_id, budgeted, True
    report = await runs.run_judges(ctx.judges, ctx.source, inp, model=budgeted if budgeted else ctx.model,
                                   no_model_hint=ctx.hint, now_ms=now)
    stopped = report.status == "awaiting_input" and budgeted is not None and budgeted.declined > 0
    if stopped:
        await _thread(ctx.judges.update_run, report.run_id, status="interrupted", finished_at_ms=clock.now_ms(),
                      error=f"monitor budget: {budgeted.exhausted()}")
    return report.run_id, budgeted, stopped


def _baseline(ctx: _Context, record: MonitorRecord, spec: MonitorSpec, window: WindowRecord,
              refs: dict[str, str]) -> tuple[list[JudgeCount], str]:
    rules = spec.alerts
    if rules.baseline_run:
        counts = ctx.store.window_counts(rules.baseline_run, list(rules.slice_by))
        return [c.model_copy(update={"judge": refs.get(c.judge, c.judge)}) for c in counts], \
            f"run {rules.baseline_run}"
    previous = ctx.store.finished_windows(record.name, record.version, before_end_ms=window.end_ms,
                                          limit=rules.baseline_windows)
    counts = [c for w in previous if w.stats for c in w.stats.judges]
    return A.pool(counts), f"the previous {len(previous)} window(s)"


def _evaluate(ctx: _Context, record: MonitorRecord, spec: MonitorSpec, window: WindowRecord, run_id: str | None,
              judges: list[JudgeRecord], traces: int,
              sampled: int) -> tuple[WindowStats, list[A.Candidate], int, A.WindowEvidence]:
    rules = spec.alerts
    refs = {j.name: j.ref for j in judges}
    counts = [c.model_copy(update={"judge": refs.get(c.judge, c.judge)})
              for c in (ctx.store.window_counts(run_id, list(rules.slice_by)) if run_id else [])]
    expr = parser.parse(selection(spec))
    span_start = window.start_ms - rules.baseline_windows * spec.every_ms
    errors = ctx.store.error_data(ErrorRequest(expr=expr, now_ms=window.end_ms, previous_start_ms=span_start,
                                               current_start_ms=window.start_ms, end_ms=window.end_ms, top=PATTERNS))
    slower = ctx.store.count_slower(expr, window.end_ms, window.start_ms, window.end_ms, errors.previous.p95_ms) \
        if errors.previous.p95_ms else 0
    baseline, label = _baseline(ctx, record, spec, window, refs)
    examples = {j.ref: [r["trace_id"] for r in ctx.judges.run_results(run_id, judge=j.name, verdict="fail", after=None,
                                                                      limit=5)] for j in judges} if run_id else {}
    ev = A.WindowEvidence(window=counts, baseline=baseline, baseline_label=label, errors=errors, slower=slower,
                          calibrations=ctx.store.latest_calibrations([j.name for j in judges]),
                          judge_versions={j.name: j.version for j in judges}, fail_examples=examples)
    candidates, tests = A.evaluate(ev, rules)
    stats = WindowStats(traces=traces, sampled=sampled, selection_probability=round(sampled / traces, 6) if traces
                        else 0.0, judges=counts, errors=errors.current.errors, p50_ms=errors.current.p50_ms,
                        p95_ms=errors.current.p95_ms, spend=ctx.store.run_spend(run_id) if run_id else Spend())
    return stats, candidates, tests, ev


def _settle_alerts(ctx: _Context, record: MonitorRecord, spec: MonitorSpec, window: WindowRecord,
                   candidates: list[A.Candidate], ev: A.WindowEvidence,
                   now: int) -> tuple[list[AlertRecord], list[AlertRecord], list[str]]:
    """New alerts; open ones seen again (or counting clear windows); ones clear long enough to resolve."""
    live = {a.key: a for a in ctx.store.live_alerts(record.name, record.version)}
    new, seen = [], []
    for c in candidates:
        if (old := live.pop(c.key, None)) is not None:
            if old.last_window_end < window.end_ms:
                kept = {k: old.evidence[k] for k in ("baseline_pass_rate", "baseline", "baseline_p95_ms")
                        if k in old.evidence}     # resolution compares with the pre-alert baseline
                seen.append(old.model_copy(update={"last_window_end": window.end_ms,
                                                   "evidence": {**c.evidence, **kept, "clear_windows": 0},
                                                   "windows_seen": old.windows_seen + 1}))
            continue
        new.append(AlertRecord(alert_id=A.alert_id(record.name, record.version, c.key, window.end_ms),
                               monitor=record.name, version=record.version, key=c.key, kind=c.kind,
                               subject=c.subject, status="open", first_window_end=window.end_ms,
                               last_window_end=window.end_ms, windows_seen=1, evidence=c.evidence,
                               summary=c.summary, created_at_ms=now))
    resolved = []
    for old in live.values():
        clear = A.recovered(old.key, old.evidence, ev, spec.alerts)
        streak = old.evidence.get("clear_windows", 0) + 1 if clear else 0 if clear is False else \
            old.evidence.get("clear_windows", 0)
        if streak >= A.CLEAR_WINDOWS:
            resolved.append(old.alert_id)
        elif streak != old.evidence.get("clear_windows", 0):
            seen.append(old.model_copy(update={"evidence": {**old.evidence, "clear_windows": streak}}))
    return new, seen, resolved


async def run_window(ctx: _Context, record: MonitorRecord, start: int, end: int) -> WindowOutcome:
    spec = MonitorSpec.model_validate(record.spec)
    ref = f"{record.name}@{record.seq}"
    outcome = WindowOutcome(monitor=ref, start=iso_ms(start), end=iso_ms(end), status="busy", run_id=None)
    now = clock.now_ms()
    claim = WindowRecord(monitor=record.name, version=record.version, start_ms=start, end_ms=end, status="running",
                         claimed_at_ms=now)
    if not await _thread(ctx.store.claim_window, claim, stale_before_ms=now - STALE_MS):
        return outcome.model_copy(update={"note": "another process is judging this window; it is resumable "
                                                  f"{STALE_MS // 1000}s after that process stops"})
    window = await _thread(ctx.store.get_window, record.name, record.version, end)
    judges = [await _thread(registry.resolve, ctx.judges, r) for r in spec.judges]
    target, traces, sampled, note = await _thread(_plan, ctx, spec, sum(j.kind == "llm" for j in judges), end)
    if window.target:     # a resumed window judges exactly what it set out to judge
        target = Target.model_validate(window.target)
        sampled = min(sampled, target.max_items) if target.max_items else sampled
    run_id, stopped = window.run_id, False
    if sampled:
        await _thread(ctx.store.set_window_run, record.name, record.version, end, run_id,
                      target.model_dump(mode="json"))
        try:
            run_id, budgeted, stopped = await _judge_window(ctx, spec, window, target, judges)
        except (ConflictError, TracesieveError) as error:
            busy = isinstance(error, ConflictError)
            if not busy:
                await _thread(ctx.store.release_window, record.name, record.version, end)
            return outcome.model_copy(update={"status": "busy" if busy else "failed", "note": str(error)[:500]})
        if stopped:
            note = "; ".join(x for x in (note, f"stopped by its budget: {budgeted.exhausted()}" if budgeted else "")
                             if x)
    stats, candidates, tests, ev = await _thread(_evaluate, ctx, record, spec, window, run_id, judges, traces,
                                                 sampled)
    finished = window.model_copy(update={"status": "budget_stopped" if stopped else "completed", "run_id": run_id,
                                         "finished_at_ms": clock.now_ms(), "stats": stats, "note": note})
    new, seen, resolved = await _thread(_settle_alerts, ctx, record, spec, window, candidates, ev, clock.now_ms())
    await _thread(ctx.store.finish_window, finished, new_alerts=new, seen_alerts=seen, resolved_ids=resolved,
                  now_ms=clock.now_ms())
    rates = {c.judge: round(c.passed / c.known, 4) if c.known else None for c in stats.judges if c.slice is None}
    return outcome.model_copy(update={"status": finished.status, "run_id": run_id, "traces": traces,
                                      "sampled": sampled, "pass_rates": rates, "spend": stats.spend, "tests": tests,
                                      "new_alerts": [alert_view(a) for a in new], "note": note,
                                      "firing": [f"{c.kind}: {c.subject}" for c in candidates]})


async def run_monitors(store: MonitorStore, judges: JudgeStore, source: ItemSource, inp: RunMonitorsInput, *,
                       model: Any, no_model_hint: str, now_ms: int,
                       progress: Callable[[str], Awaitable[None]] | None = None) -> RunMonitorsResult:
    """Run every due window (oldest first) of the chosen monitors' latest versions."""
    ctx = _Context(store, judges, source, model, no_model_hint, progress)
    if inp.monitors:
        records = [await _thread(resolve_monitor, store, ref) for ref in inp.monitors]
    else:
        records = await _thread(store.latest_monitors)
    outcomes: list[WindowOutcome] = []
    next_due: dict[str, str | None] = {}
    for record in records:
        spec = MonitorSpec.model_validate(record.spec)
        done = await _thread(store.finished_ends, record.name, record.version)
        todo = [(s, e) for s, e in due_windows(record, spec, now_ms) if e not in done][:inp.max_windows]
        for start, end in todo:
            outcome = await run_window(ctx, record, start, end)
            outcomes.append(outcome)
            if progress is not None:
                await progress(f"{outcome.monitor} {outcome.end}: {outcome.status}")
            if outcome.status in ("busy", "failed"):
                break     # later windows need this one in their baseline
        n_due = len(due_windows(record, spec, now_ms))
        next_due[f"{record.name}@{record.seq}"] = iso_ms(record.since_ms + (n_due + 1) * spec.every_ms
                                                         + spec.settle_ms)
    new = [a for o in outcomes for a in o.new_alerts]
    return RunMonitorsResult(windows=outcomes, new_alerts=len(new),
                             new_regressions=sum(a.kind == "regression" for a in new), next_due=next_due)
