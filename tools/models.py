"""The canonical nouns every reader produces and every store accepts.

Ingestion readers map OTLP, OpenInference, MLflow and Langfuse onto these models; the store
persists them column for column (see ``server/storage/duckdb/schema.py``). Inputs and outputs are kept
as JSON-encoded text so that any shape round-trips unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SpanType = Literal[
    "LLM", "CHAT_MODEL", "TOOL", "RETRIEVER", "AGENT", "CHAIN", "EMBEDDING", "RERANKER",
    "GUARDRAIL", "EVALUATOR", "PARSER", "MEMORY", "WORKFLOW", "TASK", "PROMPT", "UNKNOWN",
]
SPAN_TYPES: tuple[str, ...] = SpanType.__args__  # type: ignore[attr-defined]
#: Span types whose token counts add up to a trace's usage (agent spans carry roll-ups).
MODEL_SPAN_TYPES: frozenset[str] = frozenset({"LLM", "CHAT_MODEL"})

TraceStatus = Literal["OK", "ERROR", "IN_PROGRESS"]
SpanStatus = Literal["OK", "ERROR", "UNSET"]


class Span(BaseModel):
    """One operation inside a trace."""

    model_config = ConfigDict(extra="forbid")

    span_id: str
    parent_span_id: str | None = None
    name: str = ""
    span_type: SpanType = "UNKNOWN"
    start_time_ns: int
    end_time_ns: int
    status: SpanStatus = "UNSET"
    status_message: str | None = None
    inputs: str | None = Field(None, description="JSON-encoded (or plain text) inputs.")
    outputs: str | None = Field(None, description="JSON-encoded (or plain text) outputs.")
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    tool_name: str | None = None
    attributes: dict = Field(default_factory=dict, description="Raw source attributes, kept as read.")
    events: list = Field(default_factory=list)


class Label(BaseModel):
    """Human ground truth for one trace and criterion (append-only)."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str
    criterion: str
    value: str = Field(description="'pass' / 'fail', another category, or a number as text.")
    numeric_value: float | None = None
    reviewer: str | None = None
    rationale: str | None = None
    created_at_ms: int
    source: str = "manual"


#: Where an assessment scoped to a whole session (MLflow feedback or expectation whose metadata names
#: ``mlflow.trace.session``) is marked: a label's ``source`` / an imported score's ``run_id``. Filters
#: on ``feedback.<name>`` / ``expectation.<name>`` let such a row cover every trace of that session.
SESSION_LABEL_SOURCE = "mlflow:session"
SESSION_SCORE_RUN_ID = "imported:mlflow:session"


class Score(BaseModel):
    """One judge verdict on one trace (imported or produced by run_judges)."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str
    judge: str
    verdict: Literal["pass", "fail", "unknown"] = "unknown"
    score: float | None = None
    value: str | None = Field(None, description="The raw value as the source stated it.")
    rationale: str | None = None
    run_id: str = "imported"
    created_at_ms: int | None = None


class Trace(BaseModel):
    """One end-to-end request with its spans, tags and any feedback it arrived with."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str
    timestamp_ms: int
    execution_time_ms: int | None = None
    status: TraceStatus = "OK"
    name: str | None = None
    request: str | None = Field(None, description="The trace's input, JSON-encoded or text.")
    response: str | None = Field(None, description="The trace's output, JSON-encoded or text.")
    session_id: str | None = None
    user_id: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    environment: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    metadata: dict = Field(default_factory=dict)
    source: str = Field("unknown", description="Reader that produced it: otlp, mlflow, langfuse, demo, …")
    source_id: str | None = Field(None, description="The id as the source wrote it, if it was normalised.")
    spans: list[Span] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    labels: list[Label] = Field(default_factory=list)
    scores: list[Score] = Field(default_factory=list)
