"""What run_judges, get_run, list_runs and get_run_results return, and the read-side tools.

Kept apart from the orchestration in ``runs.py``: these are the typed, compact shapes an agent
reads (a summary per judge, the first failing traces, paged results), built from what the store
aggregates in SQL.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from tools.errors import InvalidInputError, NotFoundError
from tools.judges.ports import JudgeStore, RunRecord

#: A 'running' run whose heartbeat is older than this was killed (its process is gone).
STALE_MS = 120_000

RunId = Annotated[str, Field(min_length=1, max_length=64, description="Run id returned by run_judges, e.g. 'run-3f9a0c12b4de'.")]
VerdictFilter = Annotated[Literal["pass", "fail", "unknown"] | None, Field(
    description="Only results with this verdict, e.g. 'fail' to read the failures; omit for all.")]
JudgeFilter = Annotated[str | None, Field(description="Only this judge's results (its name); omit for all judges.")]
ResultLimit = Annotated[int, Field(ge=1, le=200, description="Results per page (1-200).")]
RunLimit = Annotated[int, Field(ge=1, le=100, description="Runs per page (1-100), newest first.")]
PageToken = Annotated[str | None, Field(description="`next_page_token` from the previous page; omit for page 1.")]


class ScoreDistribution(BaseModel):
    min: float | None
    p25: float | None
    median: float | None
    p75: float | None
    max: float | None
    mean: float | None


class JudgeRunSummary(BaseModel):
    judge: str = Field(description="'name@seq' of the version that ran.")
    version: str
    kind: str
    criterion: str
    scored: int = Field(description="Items with a stored score (including unknown and errors).")
    passed: int
    failed: int
    unknown: int
    pass_rate: float | None = Field(description="passed / (passed + failed); null when nothing was graded.")
    score_distribution: ScoreDistribution
    first_failing_trace_ids: list[str] = Field(description="Up to 5; read them with get_trace.")
    errors: int = Field(description="Items whose model call failed (verdict unknown); a resume retries them.")
    first_error: str | None
    cache_hits: int = Field(description="Items served from the judge-call cache (no model call, no cost).")
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = Field(description="Null when the model's price is unknown.")
    duration_ms: int | None
    evaluated_in: Literal["store", "python", "model"] = Field(
        description="'store': a rule compiled to SQL; 'python': rule/classifier in process; 'model': LLM calls.")


class RunEstimate(BaseModel):
    items: int
    llm_calls: int = Field(description="Model calls if nothing is cached.")
    est_input_tokens: int = Field(description="Rough prompt tokens (chars / 4).")
    max_output_tokens: int = Field(description="Upper bound of answer tokens.")
    est_cost_usd: float | None = Field(description="Upper-bound cost; null when the price is unknown "
                                                   "(set TRACESIEVE_JUDGE_PRICE_IN / _OUT, USD per 1M tokens).")


class RunReport(BaseModel):
    run_id: str
    status: Literal["running", "completed", "failed", "interrupted", "dry_run", "awaiting_input"]
    target: str = Field(description="What was judged, in words.")
    model: str | None
    items: int
    judges: list[JudgeRunSummary]
    started_at_ms: int | None
    finished_at_ms: int | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    estimate: RunEstimate | None = None
    error: str | None = None
    skipped_in_progress: int = Field(0, description="Traces the filter/window matched but left out because their "
                                                    "root span had not arrived (status IN_PROGRESS).")
    next: str = Field(description="What to call next.")


class RunListEntry(BaseModel):
    run_id: str
    status: str
    target: str
    judges: list[str]
    model: str | None
    items: int
    started_at_ms: int
    finished_at_ms: int | None


class ListRunsResult(BaseModel):
    runs: list[RunListEntry]
    next_page_token: str | None = Field(description="Pass as page_token for older runs; null when done.")


class ScoreResult(BaseModel):
    judge: str
    trace_id: str
    item_id: str
    verdict: str
    score: float | None
    rationale: str | None = Field(description="Cut to 300 characters.")
    error: str | None
    cached: bool
    latency_ms: float | None


class GetRunResultsResult(BaseModel):
    run_id: str
    results: list[ScoreResult]
    next_page_token: str | None = Field(description="Pass as page_token for the next page; null when done.")


def effective_status(run: RunRecord, now_ms: int) -> str:
    if run.status == "running" and (run.heartbeat_ms or run.started_at_ms) < now_ms - STALE_MS:
        return "interrupted"
    return run.status


def load_run(store: JudgeStore, run_id: str) -> RunRecord:
    run = store.load_run(run_id)
    if run is None:
        recent = [r.run_id for r in store.list_runs(limit=5, before=None)]
        listing = f" Recent runs: {', '.join(recent)}." if recent else " No runs exist yet: call run_judges."
        raise NotFoundError(f"No run {run_id!r}.{listing}")
    return run


def summaries(store: JudgeStore, run: RunRecord, stats: dict[str, Any]) -> list[JudgeRunSummary]:
    rows = {r["judge_version"]: r for r in store.run_summary(run.run_id)}
    out = []
    for entry in stats.get("judges", []):
        r = rows.get(entry["version"], {})
        passed, failed = int(r.get("passed") or 0), int(r.get("failed") or 0)
        out.append(JudgeRunSummary(
            judge=entry["ref"], version=entry["version"], kind=entry["kind"], criterion=entry["criterion"],
            scored=int(r.get("scored") or 0), passed=passed, failed=failed, unknown=int(r.get("unknown") or 0),
            pass_rate=round(passed / (passed + failed), 4) if passed + failed else None,
            score_distribution=ScoreDistribution(**{k: r.get(k) for k in ScoreDistribution.model_fields}),
            first_failing_trace_ids=list(r.get("first_failing") or []), errors=int(r.get("errors") or 0),
            first_error=r.get("first_error"), cache_hits=int(r.get("cache_hits") or 0),
            input_tokens=int(r.get("input_tokens") or 0), output_tokens=int(r.get("output_tokens") or 0),
            cost_usd=r.get("cost_usd") if entry["kind"] == "llm" else 0.0, duration_ms=entry.get("duration_ms"),
            evaluated_in=entry.get("evaluated_in", "model" if entry["kind"] == "llm" else "python")))
    return out


def report(store: JudgeStore, run: RunRecord, *, now_ms: int, estimate: RunEstimate | None = None) -> RunReport:
    judges = summaries(store, run, run.stats)
    status = effective_status(run, now_ms)
    costs = [j.cost_usd for j in judges if j.cost_usd is not None]
    if status == "completed":
        nxt = (f"get_run_results(run_id='{run.run_id}', verdict='fail') lists the failures; "
               "calibration_report compares a judge with human labels.")
    elif status in ("failed", "interrupted"):
        nxt = (f"Finished scores are kept. Fix the cause, then run_judges(resume_run_id='{run.run_id}') "
               "continues without re-paying for finished items.")
    else:
        nxt = f"The run is still going; call get_run(run_id='{run.run_id}') again later."
    return RunReport(
        run_id=run.run_id, status=status, target=run.target_label, model=run.model, items=run.items_total,
        judges=judges, started_at_ms=run.started_at_ms, finished_at_ms=run.finished_at_ms,
        input_tokens=sum(j.input_tokens for j in judges), output_tokens=sum(j.output_tokens for j in judges),
        cost_usd=round(sum(costs), 6) if costs else None, estimate=estimate, error=run.error,
        skipped_in_progress=(run.stats or {}).get("skipped_in_progress", 0), next=nxt)


def get_run(store: JudgeStore, run_id: str) -> RunReport:
    return report(store, load_run(store, run_id), now_ms=int(time.time() * 1000))


def _encode(values: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(token: str, size: int) -> list[str]:
    try:
        values = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
        if isinstance(values, list) and len(values) == size and all(isinstance(v, str) for v in values):
            return values
    except ValueError:
        pass
    raise InvalidInputError("page_token is not one this server issued. Pass the `next_page_token` of the previous "
                            "result unchanged, or omit page_token to start from page 1.")


def list_runs(store: JudgeStore, *, limit: int, page_token: str | None) -> ListRunsResult:
    before = _decode(page_token, 1)[0] if page_token else None
    runs = store.list_runs(limit=limit + 1, before=before)
    now = int(time.time() * 1000)
    entries = [RunListEntry(run_id=r.run_id, status=effective_status(r, now), target=r.target_label,
                            judges=r.judges, model=r.model, items=r.items_total, started_at_ms=r.started_at_ms,
                            finished_at_ms=r.finished_at_ms) for r in runs[:limit]]
    token = _encode([f"{runs[limit - 1].started_at_ms:020d}|{runs[limit - 1].run_id}"]) if len(runs) > limit else None
    return ListRunsResult(runs=entries, next_page_token=token)


def get_run_results(store: JudgeStore, run_id: str, *, judge: str | None, verdict: str | None, limit: int,
                    page_token: str | None) -> GetRunResultsResult:
    load_run(store, run_id)
    after = tuple(_decode(page_token, 2)) if page_token else None
    rows = store.run_results(run_id, judge=judge, verdict=verdict, after=after, limit=limit + 1)  # type: ignore[arg-type]
    results = [ScoreResult(**{**r, "rationale": (r["rationale"] or "")[:300] or None}) for r in rows[:limit]]
    token = _encode([rows[limit - 1]["judge"], rows[limit - 1]["item_id"]]) if len(rows) > limit else None
    return GetRunResultsResult(run_id=run_id, results=results, next_page_token=token)
