"""describe_store: the first call an agent makes — what is in the store and how to ask for it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tools.filters import fields
from tools.ports import TraceStore
from tools.traces.search import iso_ms


class Count(BaseModel):
    value: str | None
    traces: int


class RowCount(BaseModel):
    """How many rows (spans, labels or scores) have ``value``, and in how many traces."""

    value: str | None
    count: int = Field(description="Rows with this value: spans for span types and tools, labels, scores.")
    counted: str = Field(description="What `count` counts: 'spans', 'labels' or 'scores'.")
    traces: int = Field(description="Distinct traces holding at least one such row.")


class TagKeySummary(BaseModel):
    key: str
    traces: int
    distinct_values: int
    top_values: list[str]


class FieldHelp(BaseModel):
    field: str
    description: str
    example: str


class DescribeStoreResult(BaseModel):
    trace_count: int
    span_count: int
    first_trace_time: str | None
    last_trace_time: str | None
    statuses: list[Count]
    environments: list[Count]
    models: list[Count]
    prompt_versions: list[Count]
    sources: list[Count]
    span_types: list[RowCount] = Field(description="Per span type (canonical names; CHAT_MODEL counts as LLM): "
                                               "spans and traces.")
    tools: list[RowCount] = Field(description="Per tool name: spans and traces.")
    tag_keys: list[TagKeySummary] = Field(description="Up to 50 tag keys, most used first.")
    label_criteria: list[RowCount] = Field(description="Per criterion: human labels and labelled traces.")
    judges: list[RowCount] = Field(description="Per judge: scores and scored traces.")
    filter_fields: list[FieldHelp] = Field(description="What search_traces' filter can use, with examples.")
    sql_tables: list[str] = Field(description="Tables and views query_sql can read.")
    next_steps: list[str]


def _counts(pairs: list[tuple[Any, int]]) -> list[Count]:
    return [Count(value=None if v is None else str(v), traces=int(c)) for v, c in pairs]


def _row_counts(triples: list[tuple[Any, int, int]], counted: str) -> list[RowCount]:
    return [RowCount(value=None if v is None else str(v), count=int(c), counted=counted, traces=int(t))
            for v, c, t in triples]


def describe_store(store: TraceStore, *, sql_tables: list[str]) -> DescribeStoreResult:
    s = store.stats()
    examples = [FieldHelp(field=f.name, description=f.description, example=f.example) for f in fields.documented_fields()]
    steps = ["search_traces(filter=\"attributes.status = 'ERROR'\") to list failing traces",
             "get_trace(trace_id=...) to read one trace's spans",
             "tag_trace(trace_ids=[...], key='eval_candidate', value='error_case') to curate"]
    if s["trace_count"] == 0:
        steps = ["The store is empty: load traces with `tracesieve ingest PATH` (OTLP JSON/protobuf, MLflow, "
                 "Langfuse, OTel SDK span dumps, Phoenix; .gz too) or `tracesieve demo` for sample data."]
    return DescribeStoreResult(
        trace_count=s["trace_count"], span_count=s["span_count"],
        first_trace_time=iso_ms(s["first_timestamp_ms"]), last_trace_time=iso_ms(s["last_timestamp_ms"]),
        statuses=_counts(s["statuses"]), environments=_counts(s["environments"]), models=_counts(s["models"]),
        prompt_versions=_counts(s["prompt_versions"]), sources=_counts(s["sources"]),
        span_types=_row_counts(s["span_types"], "spans"), tools=_row_counts(s["tools"], "spans"),
        tag_keys=[TagKeySummary(**t) for t in s["tag_keys"]],
        label_criteria=_row_counts(s["label_criteria"], "labels"), judges=_row_counts(s["judges"], "scores"),
        filter_fields=examples, sql_tables=sql_tables, next_steps=steps)
