"""Ports of the judges feature: what judging needs from the store and from a model.

``server`` implements them (``server/storage/duckdb/judges_sql.py`` over DuckDB; ``server/providers``
for OpenAI-compatible endpoints, the Anthropic Messages API and MCP sampling). Keeping them as
Protocols lets ``tools/judges/runs.py`` orchestrate a run without knowing DuckDB, HTTP or MCP exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field



VerdictLabel = Literal["pass", "fail", "unknown"]


class DeferredCall(Exception):
    """Raised by a JudgeModel whose answer arrives in a later round (MCP sampling over the
    2026 multi-round-trip protocol): the item is left unscored and the run asks again."""


class Verdict(BaseModel):
    """One judge's answer on one item (shaped like pydantic_evals' GradingOutput)."""

    label: VerdictLabel
    score: float | None = Field(None, ge=0, le=1, description="0-1; null when unknown.")
    reason: str = Field("", description="A concise justification.")


class ToolCall(BaseModel):
    name: str
    arguments: str | None = Field(None, description="JSON-encoded arguments as recorded.")
    status: str = "UNSET"
    error: str | None = None


class ErrorSpan(BaseModel):
    type: str
    name: str = ""
    message: str | None = None


class Item(BaseModel):
    """What a judge looks at: a dataset record, or a live trace in monitoring mode."""

    item_id: str = Field(description="Dataset record id, or the trace id in monitoring mode.")
    trace_id: str
    input: str | None = None
    output: str | None = None
    retrieved: list[str] = Field(default_factory=list, description="Raw outputs of the trace's RETRIEVER spans.")
    retriever_names: list[str] = Field(default_factory=list, description="Span name per entry of `retrieved`.")
    tool_calls: list[ToolCall] = Field(default_factory=list)
    status: str | None = None
    latency_ms: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error_spans: list[ErrorSpan] = Field(default_factory=list, description="Spans with status ERROR, in time order.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    expectations: dict[str, Any] = Field(default_factory=dict)


class ModelReply(BaseModel):
    text: str = Field(description="The model's raw answer ('' when it refused without text).")
    input_tokens: int | None = None
    output_tokens: int | None = None
    refusal: str | None = Field(None, description="Set when the provider flagged the answer as a refusal.")


class JudgePrompt(BaseModel):
    system: str
    user: str


class JudgeModel(Protocol):
    """A model that grades prompts. ``name`` goes into cache keys and run records."""

    name: str
    price_in_per_mtok: float | None
    price_out_per_mtok: float | None

    async def grade(self, prompt: JudgePrompt, *, max_tokens: int) -> ModelReply: ...


class JudgeRecord(BaseModel):
    """One stored judge version."""

    name: str
    version: str = Field(description="Content hash of the spec (12 hex digits).")
    seq: int = Field(description="1 for the first version of this name, 2 for the next, ...")
    kind: str
    criterion: str
    spec: dict[str, Any]
    description: str | None = None
    created_at_ms: int

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.seq}"


class Target(BaseModel):
    """What a run judges: a dataset version, or a sampled live time window."""

    dataset: str | None = Field(None, description="'name@version' for a dataset run.")
    filter: str | None = None
    window_ms: int | None = None
    now_ms: int | None = None
    sample_rate: float = 1.0
    max_items: int | None = None
    include_in_progress: bool = Field(False, description="Also judge traces whose root span has not arrived.")

    def label(self) -> str:
        if self.dataset:
            return f"dataset {self.dataset}"
        parts = [f"the {_duration(self.window_ms)} before {_iso(self.now_ms or 0)}" if self.window_ms else "all time"]
        if self.filter:
            parts.append(f"filter {self.filter!r}")
        if self.sample_rate < 1:
            parts.append(f"sample {self.sample_rate:g}")
        if self.max_items:
            parts.append(f"max {self.max_items}")
        return "live traces, " + ", ".join(parts)


def _duration(ms: int) -> str:
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms // 60_000}m"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class ResolvedTarget(BaseModel):
    target: Target
    items: int = Field(description="Items the target selects.")
    redacted: bool = Field(False, description="True when the dataset's records were PII-redacted.")
    skipped_in_progress: int = Field(0, description="Traces left out because they are still IN_PROGRESS.")


class ScoreRow(BaseModel):
    run_id: str
    judge: str
    judge_version: str
    item_id: str
    trace_id: str
    verdict: VerdictLabel
    score: float | None = None
    rationale: str | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    cache_key: str | None = None
    cached: bool = False
    created_at_ms: int


class CachedReply(BaseModel):
    verdict: VerdictLabel
    score: float | None
    rationale: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


class RunRecord(BaseModel):
    run_id: str
    target: Target
    target_label: str
    judges: list[str] = Field(description="'name@version-hash' of each judge.")
    model: str | None
    status: Literal["running", "completed", "failed", "interrupted"]
    started_at_ms: int
    finished_at_ms: int | None = None
    heartbeat_ms: int | None = None
    items_total: int = 0
    error: str | None = None
    stats: dict[str, Any] = Field(default_factory=dict, description="{'judges': [{ref, version, kind, criterion, "
                                                                    "duration_ms, evaluated_in}]}")


class ItemSource(Protocol):
    """Items of a dataset version, or of live traces for a filter + window with sampling."""

    def resolve(self, target: Target) -> ResolvedTarget: ...

    def items(self, target: Target, *, after: str | None, limit: int) -> list[Item]: ...

    def labeled_items(self, criterion: str) -> list[tuple[Item, str]]: ...


class JudgeStore(Protocol):
    """Judge versions, runs, scores and the model-call cache."""

    def save_judge(self, record: JudgeRecord) -> JudgeRecord: ...

    def judge_versions(self, name: str) -> list[JudgeRecord]: ...

    def latest_judges(self) -> list[tuple[JudgeRecord, int]]: ...

    def create_run(self, run: RunRecord) -> None: ...

    def update_run(self, run_id: str, **fields: Any) -> None: ...

    def load_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(self, *, limit: int, before: str | None) -> list[RunRecord]: ...

    def finished_items(self, run_id: str, judge_version: str) -> set[str]: ...

    def write_scores(self, rows: Sequence[ScoreRow], *, cache: Sequence[tuple[str, str, str, CachedReply]] = (),
                     heartbeat_ms: int | None = None) -> None:
        """Store rows (replacing earlier errored attempts), cache entries (key, version, model, reply) and
        the run's heartbeat in one transaction."""

    def cache_get(self, keys: Sequence[str]) -> dict[str, CachedReply]: ...

    def bulk_rule_scores(self, run_id: str, judge: JudgeRecord, target: Target, now_ms: int) -> int | None: ...

    def run_summary(self, run_id: str) -> list[dict[str, Any]]: ...

    def run_results(self, run_id: str, *, judge: str | None, verdict: str | None, after: tuple[str, str] | None,
                    limit: int) -> list[dict[str, Any]]: ...
