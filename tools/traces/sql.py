"""query_sql: read-only SQL over the store's tables and views, for questions no tool answers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tools.ports import TraceStore

SQL_HELP = (
    "One read-only DuckDB SELECT. Views: trace_unified (per trace: trace_id, request_time, timestamp_ms, state, "
    "execution_duration_ms, request, response, session_id, user_id, model, environment, input/output/total_tokens, "
    "tags MAP, trace_metadata JSON, span_count, error_count, tool_names), otel_spans (per span: trace_id, span_id, "
    "parent_span_id, name, span_type, start_time, end_time, duration_ms, status_code, status_message, model, "
    "input/output_tokens, tool_name, inputs, outputs, attributes JSON). Tables: traces (tags JSON: "
    "tags->>'environment'), spans, tags, tag_history, labels, scores. "
    "Example: SELECT span_type, count(*), median(duration_ms) FROM otel_spans GROUP BY 1")


SqlText = Annotated[str, Field(min_length=1, description=SQL_HELP)]
RowLimit = Annotated[int, Field(ge=1, le=1000, description="Max rows returned (1-1000, default 100).")]


class QuerySqlInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sql: SqlText
    limit: RowLimit = 100


class QuerySqlResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = Field(description="True if rows were left out (more than `limit`, or the result's size cap).")
    note: str | None = Field(default=None, description="Why rows were left out and how to get the rest; null if none were.")


def query_sql(store: TraceStore, inp: QuerySqlInput) -> QuerySqlResult:
    result = store.query_sql(inp.sql, limit=inp.limit)
    return QuerySqlResult(columns=result.columns, rows=result.rows, row_count=len(result.rows),
                          truncated=result.truncated, note=result.note)
