"""Small hand-built traces with known answers, for store and tool tests."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from tools.models import Span, Trace

BASE_MS = 1_763_000_000_000  # 2025-11-13T02:13:20Z


def span(span_id: str, parent: str | None, span_type: str, start_ms: int, dur_ms: int, *, name: str = "",
         status: str = "OK", message: str | None = None, tool: str | None = None, model: str | None = None,
         inputs: str | None = None, outputs: str | None = None, tokens: tuple[int, int] | None = None) -> Span:
    return Span(span_id=span_id, parent_span_id=parent, name=name or span_type.lower(), span_type=span_type,
                start_time_ns=start_ms * 1_000_000, end_time_ns=(start_ms + dur_ms) * 1_000_000, status=status,
                status_message=message, tool_name=tool, model=model, inputs=inputs, outputs=outputs,
                input_tokens=tokens[0] if tokens else None, output_tokens=tokens[1] if tokens else None)


def trace(trace_id: str, minute: int, *, status: str = "OK", question: str = "Where is my order?",
          answer: str = "It ships tomorrow.", env: str = "production", tool: str = "lookup_order",
          tool_status: str = "OK", duration_ms: int = 1500, tags: dict[str, str] | None = None,
          model: str = "gpt-4o-mini", session: str | None = None) -> Trace:
    start = BASE_MS + minute * 60_000
    spans = [
        span(f"{trace_id}-root", None, "AGENT", start, duration_ms, name="support_agent", status=status),
        span(f"{trace_id}-llm", f"{trace_id}-root", "CHAT_MODEL", start + 10, 400, model=model,
             inputs=json.dumps({"messages": [{"role": "user", "content": question}]}),
             outputs=json.dumps({"content": answer}), tokens=(120, 30)),
        span(f"{trace_id}-tool", f"{trace_id}-root", "TOOL", start + 420, 300, name=tool, tool=tool,
             status=tool_status, message="TimeoutError: timed out" if tool_status == "ERROR" else None,
             inputs=json.dumps({"order_id": "A-1"}), outputs=json.dumps({"state": "shipped"})),
    ]
    return Trace(trace_id=trace_id, timestamp_ms=start, execution_time_ms=duration_ms, status=status,
                 name="support_agent", request=json.dumps({"messages": [{"role": "user", "content": question}]}),
                 response=json.dumps({"content": answer}), session_id=session, user_id="u-1", model=model,
                 environment=env, input_tokens=120, output_tokens=30, metadata={"region": "eu"},
                 source="test", spans=spans, tags=tags if tags is not None else {"environment": env})


def small_set() -> list[Trace]:
    """Twelve traces: 3 ERROR, 2 with tool errors, 4 staging, varied durations and questions."""
    return [
        trace("t01", 0),
        trace("t02", 1, status="ERROR", answer="", duration_ms=9000),
        trace("t03", 2, tool_status="ERROR", question="Refund for order 991?"),
        trace("t04", 3, env="staging"),
        trace("t05", 4, env="staging", status="ERROR"),
        trace("t06", 5, question="How do I reset my password?", tool="reset_password"),
        trace("t07", 6, question="What is the refund policy?", duration_ms=4000, tags={"environment": "production",
                                                                                      "eval_candidate": "slow"}),
        trace("t08", 7, model="claude-sonnet-4"),
        trace("t09", 8, env="staging", tool_status="ERROR", status="ERROR"),
        trace("t10", 9, env="staging", duration_ms=700),
        trace("t11", 10, question="Track shipment 55", tool="track_shipment"),
        trace("t12", 11, answer="x" * 50_000),
    ]


def dataset_counts(db: Path) -> tuple[int, int]:
    """(datasets, dataset_records) rows in a store file: what a refused write must leave unchanged."""
    return stored_rows(db, "SELECT (SELECT count(*) FROM datasets), (SELECT count(*) FROM dataset_records)")[0]


def stored_rows(db: Path, sql: str) -> list[tuple]:
    """What a read-only SQL query over a store file returns (no connection stays open)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
