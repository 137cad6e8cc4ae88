"""run_judges: run judge versions over a dataset version or a sampled live window, resumably.

Order of work per judge: rules go to the store in one SQL statement when it can evaluate them
(``bulk_rule_scores``), else they run here page by page; classifiers run here; LLM judges call
the model with at most ``concurrency`` calls in flight. Scores are written as they finish
(coalesced into small batches), so a killed run keeps its work: resuming skips finished items,
retries errored ones, and identical (judge version, prompt, model) calls come from the cache.
Blocking store calls run on worker threads so progress notifications keep flowing.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from tools import clock
from tools.judges import classifier as classifier_judge, registry, llm as llm_judge, rules as rule_judges
from tools.errors import ConflictError, InvalidInputError, TracesieveError
from tools.errors import ProviderError
from tools.judges.ports import (CachedReply, DeferredCall, Item, ItemSource, JudgeModel, JudgeRecord, JudgeStore,
                               ResolvedTarget, RunRecord, ScoreRow, Target, Verdict)
from tools.judges.specs import JudgeSpec
from tools.judges.run_reports import STALE_MS, RunEstimate, RunReport, effective_status, load_run, report
from tools.privacy import switches

Progress = Callable[[float, float, str], Awaitable[None]]
PAGE = 200
FLUSH_ROWS = 50             # write scores at least every this many rows ...
FLUSH_SECONDS = 0.5         # ... or this often, so a hard kill loses at most this much work
GIVE_UP_AFTER = 5          # consecutive failed model calls before the run stops
_WINDOW = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_SPEC = TypeAdapter(JudgeSpec)

JudgeRefs = Annotated[list[registry.JudgeRef] | None, Field(min_length=1, max_length=20, description=(
    "Judges to run: names (latest version) or pinned refs like 'citations@2' (omit only with resume_run_id)."))]
DatasetRef = Annotated[str | None, Field(description="Dataset version to judge, 'name@version' (e.g. 'golden@3'). "
                                                     "Omit for monitoring mode (filter/window).")]
MonitorFilter = Annotated[str | None, Field(description="Monitoring mode: a search_traces filter selecting live "
                                                        "traces, e.g. \"tags.environment = 'production'\".")]
Window = Annotated[str | None, Field(description="Monitoring mode: only traces from the last N minutes/hours/days/"
                                                 "weeks, e.g. '24h', '7d', '90m'.")]
SampleRate = Annotated[float, Field(gt=0, le=1, description="Monitoring mode: judge this share of the matching "
                                                            "traces (0-1), chosen by a stable hash of the trace id.")]
MaxItems = Annotated[int | None, Field(ge=1, le=1_000_000, description="Cap on items judged (a stable sample).")]
Concurrency = Annotated[int, Field(ge=1, le=64, description="LLM calls in flight at once (default 4).")]
DryRun = Annotated[bool, Field(description="Only count items and estimate tokens/cost; call nothing, store nothing.")]
ResumeRunId = Annotated[str | None, Field(description="Continue an interrupted or failed run (its target and judge "
                                                      "versions are reused; other target arguments are ignored).")]


class RunJudgesInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    judges: JudgeRefs = None
    dataset: DatasetRef = None
    filter: MonitorFilter = None
    window: Window = None
    sample_rate: SampleRate = 1.0
    max_items: MaxItems = None
    concurrency: Concurrency = 4
    dry_run: DryRun = False
    resume_run_id: ResumeRunId = None

    @model_validator(mode="after")
    def _target(self) -> RunJudgesInput:
        if self.resume_run_id:
            return self
        if not self.judges:
            raise ValueError("give judges, e.g. ['citations', 'tool_errors@2'] (list_judges shows them)")
        if self.dataset and (self.filter or self.window):
            raise ValueError("give either dataset (dev-time eval) or filter/window (monitoring), not both")
        if not self.dataset and not (self.filter or self.window):
            raise ValueError("give dataset='name@version', or filter and/or window (e.g. window='24h') to judge "
                             "live traces")
        return self


def parse_window(window: str) -> int:
    m = _WINDOW.match(window)
    if not m or int(m.group(1)) == 0:
        raise InvalidInputError(f"window {window!r} is not a duration. Use a number and a unit m, h, d or w, "
                                "e.g. '90m', '24h', '7d'.")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def cache_key(judge_version: str, model: str, content_hash: str) -> str:
    return hashlib.sha256(f"{judge_version}\x00{model}\x00{content_hash}".encode()).hexdigest()


def _cost(model: JudgeModel, tokens_in: int | None, tokens_out: int | None) -> float | None:
    if model.price_in_per_mtok is None or model.price_out_per_mtok is None or tokens_in is None:
        return None
    return round((tokens_in * model.price_in_per_mtok + (tokens_out or 0) * model.price_out_per_mtok) / 1e6, 8)


async def _thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))


class _Run:
    """One run's state: the writer that coalesces score rows, progress and error accounting."""

    def __init__(self, store: JudgeStore, run: RunRecord, progress: Progress | None, total: int) -> None:
        self.store, self.run, self.progress, self.total = store, run, progress, total
        self.done = 0
        self.pending: list[ScoreRow] = []
        self.cache_entries: list[tuple[str, str, str, CachedReply]] = []
        self.lock = anyio.Lock()
        self.consecutive_errors = 0
        self.deferred = 0
        self.last_flush = time.monotonic()

    async def add(self, rows: list[ScoreRow], cache: list[tuple[str, str, str, CachedReply]] = ()) -> None:
        """Queue rows; write when enough piled up or enough time passed."""
        self.pending.extend(rows)
        self.cache_entries.extend(cache)
        if len(self.pending) >= FLUSH_ROWS or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            await self.flush()

    async def flush(self, *, wait: bool = False) -> None:
        """Write whatever is pending. A caller finding a flush under way leaves its rows to that flush,
        unless ``wait`` (the end of a judge, or a run being stopped): then it waits its turn."""
        if self.lock.locked() and not wait:
            return
        async with self.lock:
            while self.pending or self.cache_entries:
                rows, self.pending = self.pending, []
                cache, self.cache_entries = self.cache_entries, []
                with anyio.CancelScope(shield=True):   # never tear a batch in half on cancel
                    await _thread(self.store.write_scores, rows, cache=cache, heartbeat_ms=clock.now_ms())
                    self.last_flush = time.monotonic()
                    self.done += len(rows)
                    await self.report(f"{self.done}/{self.total} scored")

    async def report(self, message: str) -> None:
        if self.progress is not None:
            await self.progress(min(self.done, self.total), self.total, message)


def _row(run: _Run, judge: JudgeRecord, item: Item, verdict: Verdict, **extra: Any) -> ScoreRow:
    return ScoreRow(run_id=run.run.run_id, judge=judge.name, judge_version=judge.version, item_id=item.item_id,
                    trace_id=item.trace_id, verdict=verdict.label, score=verdict.score, rationale=verdict.reason,
                    created_at_ms=clock.now_ms(), **extra)


async def _grade(run: _Run, judge: JudgeRecord, spec: Any, items: list[Item], prompt: Any, key: str,
                 model: JudgeModel, limiter: anyio.CapacityLimiter) -> None:
    """One model call for ``items`` (identical prompts): the first pays, the rest are cache hits."""
    async with limiter:
        started = time.perf_counter()
        try:
            reply = await model.grade(prompt, max_tokens=spec.max_output_tokens)
        except DeferredCall:
            run.deferred += len(items)
            return
        except ProviderError as error:
            if not error.retryable:
                raise
            run.consecutive_errors += 1
            if run.consecutive_errors >= GIVE_UP_AFTER:
                raise ProviderError(f"{GIVE_UP_AFTER} judge calls in a row failed; the last: {error}",
                                    retryable=True) from error
            latency = (time.perf_counter() - started) * 1000
            await run.add([_row(run, judge, i, Verdict(label="unknown", reason="model call failed"),
                                error=str(error)[:500], latency_ms=latency) for i in items])
            return
    run.consecutive_errors = 0
    verdict = llm_judge.parse_reply(reply, pass_threshold=spec.pass_threshold)
    cost = _cost(model, reply.input_tokens, reply.output_tokens)
    cached = CachedReply(verdict=verdict.label, score=verdict.score, rationale=verdict.reason,
                         input_tokens=reply.input_tokens, output_tokens=reply.output_tokens, cost_usd=cost)
    rows = [_row(run, judge, items[0], verdict, latency_ms=round((time.perf_counter() - started) * 1000, 3),
                 input_tokens=reply.input_tokens, output_tokens=reply.output_tokens, cost_usd=cost, cache_key=key)]
    rows += [_row(run, judge, i, verdict, cache_key=key, cached=True, input_tokens=0, output_tokens=0, cost_usd=0.0)
             for i in items[1:]]
    await run.add(rows, [(key, judge.version, model.name, cached)])


async def _llm_page(run: _Run, judge: JudgeRecord, spec: Any, items: list[Item], model: JudgeModel,
                    limiter: anyio.CapacityLimiter) -> None:
    prompts = {i.item_id: llm_judge.build_prompt(spec, i) for i in items}
    keys = {iid: cache_key(judge.version, model.name, llm_judge.prompt_hash(p)) for iid, p in prompts.items()}
    hits = await _thread(run.store.cache_get, list(set(keys.values())))
    served = [_row(run, judge, i, Verdict(label=h.verdict, score=h.score, reason=h.rationale or ""),
                   cache_key=keys[i.item_id], cached=True, input_tokens=0, output_tokens=0, cost_usd=0.0)
              for i in items if (h := hits.get(keys[i.item_id])) is not None]
    if served:
        await run.add(served)
    groups: dict[str, list[Item]] = {}
    for item in items:
        if keys[item.item_id] not in hits:
            groups.setdefault(keys[item.item_id], []).append(item)
    try:
        async with anyio.create_task_group() as tg:
            for key, group in groups.items():
                tg.start_soon(_grade, run, judge, spec, group, prompts[group[0].item_id], key, model, limiter)
    except BaseExceptionGroup as group:
        raise _first_error(group) from None


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The exception that stopped a task group (its siblings were only cancelled because of it)."""
    cancelled = anyio.get_cancelled_exc_class()
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first_error(error)
        if not isinstance(error, cancelled):
            return error
    return group.exceptions[0]


def _redacts(judge: JudgeRecord, resolved: ResolvedTarget) -> bool:
    """Redacted datasets stay redacted for every judge; an LLM judge's prompt leaves for an external
    model, so its items are redacted unless the operator turned that off."""
    return resolved.redacted or (judge.kind == "llm" and switches.judge_inputs_redacted())


async def _judge(run: _Run, source: ItemSource, judge: JudgeRecord, resolved: ResolvedTarget,
                 model: JudgeModel | None, concurrency: int) -> str:
    """Score every unfinished item with one judge; returns where it was evaluated."""
    spec = _SPEC.validate_python(judge.spec)
    target = resolved.target
    finished = await _thread(run.store.finished_items, run.run.run_id, judge.version)
    if judge.kind == "rule" and not resolved.redacted:
        written = await _thread(run.store.bulk_rule_scores, run.run.run_id, judge, target, clock.now_ms())
        if written is not None:
            run.done += resolved.items
            await run.report(f"{judge.ref}: {resolved.items} items evaluated in the store")
            return "store"
    limiter = anyio.CapacityLimiter(concurrency)
    after: str | None = None
    page_size = PAGE
    while page_size == PAGE:
        page = await _thread(source.items, target, after=after, limit=PAGE)
        page_size = len(page)
        if not page:
            break
        after = page[-1].item_id
        todo = [i for i in page if i.item_id not in finished]
        run.done += len(page) - len(todo)
        if _redacts(judge, resolved):
            todo = [llm_judge.redact_item(i) for i in todo]
        if not todo:
            continue
        if judge.kind == "rule":
            await run.add([_row(run, judge, i, rule_judges.evaluate(spec, i)) for i in todo])
        elif judge.kind == "classifier":
            verdicts = await _thread(classifier_judge.predict, spec, todo)
            await run.add([_row(run, judge, i, v) for i, v in zip(todo, verdicts)])
        else:
            assert model is not None
            await _llm_page(run, judge, spec, todo, model, limiter)
    await run.flush(wait=True)
    return "model" if judge.kind == "llm" else "python"


async def estimate(source: ItemSource, judges: list[JudgeRecord], resolved: ResolvedTarget,
                   model: JudgeModel | None) -> RunEstimate:
    """Rough tokens and cost from the prompts of the first page of items."""
    llm = [(j, _SPEC.validate_python(j.spec)) for j in judges if j.kind == "llm"]
    tokens = out_max = 0
    if llm and resolved.items:
        sample = (await _thread(source.items, resolved.target, after=None, limit=50))
        if resolved.redacted or switches.judge_inputs_redacted():
            sample = [llm_judge.redact_item(i) for i in sample]
        for _, spec in llm:
            per_item = sum(llm_judge.estimate_tokens(llm_judge.build_prompt(spec, i)) for i in sample)
            tokens += round(per_item / max(1, len(sample)) * resolved.items)
            out_max += spec.max_output_tokens * resolved.items
    cost = _cost(model, tokens, out_max) if model is not None and llm else (0.0 if not llm else None)
    return RunEstimate(items=resolved.items, llm_calls=len(llm) * resolved.items, est_input_tokens=tokens,
                       max_output_tokens=out_max, est_cost_usd=cost)


def _target(inp: RunJudgesInput, now_ms: int) -> Target:
    if inp.dataset:
        return Target(dataset=inp.dataset.strip(), max_items=inp.max_items)
    return Target(filter=inp.filter, window_ms=parse_window(inp.window) if inp.window else None, now_ms=now_ms,
                  sample_rate=inp.sample_rate, max_items=inp.max_items)


async def run_judges(store: JudgeStore, source: ItemSource, inp: RunJudgesInput, *, model: JudgeModel | None,
                     no_model_hint: str, now_ms: int, progress: Progress | None = None,
                     next_round: bool = False) -> RunReport:
    """Create (or resume) a run, score every item with every judge, and return the per-judge summary.

    ``next_round`` marks a sampling round trip of a run this server is driving (it may look active).
    """
    if inp.resume_run_id:
        run = await _thread(load_run, store, inp.resume_run_id)
        if run.status == "completed":
            return await _thread(report, store, run, now_ms=now_ms)
        if not next_round and effective_status(run, now_ms) == "running":
            raise ConflictError(f"Run {run.run_id} is still running (last heartbeat "
                                f"{(now_ms - (run.heartbeat_ms or run.started_at_ms)) // 1000}s ago). Wait for it and "
                                f"call get_run(run_id='{run.run_id}'); a run whose process died can be resumed "
                                f"{STALE_MS // 1000}s after its last heartbeat.")
        judges = [await _thread(registry.resolve, store, ref) for ref in run.judges]
        target = run.target
    else:
        judges = [await _thread(registry.resolve, store, ref) for ref in dict.fromkeys(inp.judges or [])]
        names = [j.name for j in judges]
        if len(set(names)) < len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise InvalidInputError(f"Judge {', '.join(repr(n) for n in twice)} is listed in two versions. Run one "
                                    "version per run (scores are keyed by judge name), then compare the runs with "
                                    "compare_runs.")
        target = _target(inp, now_ms)
    llm = [j for j in judges if j.kind == "llm"]
    if llm and model is None:
        what = "is an LLM judge" if len(llm) == 1 else "are LLM judges"
        raise InvalidInputError(f"{', '.join(j.ref for j in llm)} {what} and no judge model is available. "
                                f"{no_model_hint}")
    resolved: ResolvedTarget = await _thread(source.resolve, target)
    est = await estimate(source, judges, resolved, model if llm else None)
    model_name = model.name if llm and model is not None else None
    if inp.dry_run:
        return RunReport(run_id="", status="dry_run", target=resolved.target.label(), model=model_name,
                         items=resolved.items, judges=[], started_at_ms=None, finished_at_ms=None, input_tokens=0,
                         output_tokens=0, cost_usd=None, estimate=est,
                         next="Call run_judges again without dry_run to run it.")
    if resolved.items == 0:
        raise InvalidInputError(f"The target ({resolved.target.label()}) selects no items. Widen the window or "
                                "the filter, or check the dataset name with list_datasets.")
    stats: dict[str, Any] = {"judges": [{"ref": j.ref, "version": j.version, "kind": j.kind,
                                         "criterion": j.criterion} for j in judges],
                             "skipped_in_progress": resolved.skipped_in_progress}
    if inp.resume_run_id:
        run = run.model_copy(update={"status": "running", "error": None, "model": model_name or run.model})
        await _thread(store.update_run, run.run_id, status="running", error=None, heartbeat_ms=clock.now_ms(),
                      model=run.model)
        stats = run.stats or stats
    else:
        run = RunRecord(run_id=f"run-{uuid.uuid4().hex[:12]}", target=resolved.target,
                        target_label=resolved.target.label(), judges=[f"{j.name}@{j.version}" for j in judges],
                        model=model_name, status="running", started_at_ms=now_ms, heartbeat_ms=now_ms,
                        items_total=resolved.items, stats=stats)
        await _thread(store.create_run, run)
    state = _Run(store, run, progress, resolved.items * len(judges))
    await state.report(f"run {run.run_id}: {resolved.items} items x {len(judges)} judges")
    try:
        for judge, entry in zip(judges, stats["judges"]):
            started = time.perf_counter()
            entry["evaluated_in"] = await _judge(state, source, judge, resolved, model, inp.concurrency)
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000)
            await _thread(store.update_run, run.run_id, stats=stats, heartbeat_ms=clock.now_ms())
    except BaseException as error:
        with anyio.CancelScope(shield=True):
            await state.flush(wait=True)
            failed = isinstance(error, Exception)
            message = f"{type(error).__name__}: {error}" if not isinstance(error, TracesieveError) else str(error)
            await _thread(store.update_run, run.run_id, status="failed" if failed else "interrupted",
                          error=message[:1000] if failed else "interrupted", finished_at_ms=clock.now_ms(), stats=stats)
        if isinstance(error, TracesieveError):
            error.args = (f"Run {run.run_id} stopped after {state.done} of {state.total} scores: {error}\n"
                          f"Finished scores are kept. Fix the cause, then call "
                          f"run_judges(resume_run_id='{run.run_id}') to continue.",)
        raise
    if state.deferred:   # answers come in the next round (MCP sampling): the run stays open
        await _thread(store.update_run, run.run_id, heartbeat_ms=clock.now_ms(), stats=stats)
        pending = await _thread(report, store, run, now_ms=clock.now_ms(), estimate=est)
        return pending.model_copy(update={"status": "awaiting_input"})
    finished = clock.now_ms()
    await _thread(store.update_run, run.run_id, status="completed", finished_at_ms=finished, error=None, stats=stats)
    run = run.model_copy(update={"status": "completed", "finished_at_ms": finished, "error": None, "stats": stats})
    return await _thread(report, store, run, now_ms=finished, estimate=est)
