"""error_patterns: the error rate of a time window against the one before it, and the failures behind it.

The seed's daily check ("last 24 h: total, errors, success rate, p50/p95, sample error inputs")
as one call. The store does the counting and grouping in SQL (``ErrorStore.error_data``); this
module owns the rules as data (how messages are folded, how an error type is recognised), the
significance test, redaction of the samples, and the findings and markdown.

Definitions:

* **Window** ``'24h'`` ends at ``now`` (``anchor='now'``) or at the newest trace the filter selects
  (``anchor='latest'``, for exported or historic data). Current = (end - 24h, end]; previous =
  (end - 48h, end - 24h]. First/last seen are within the current window.
* **An error occurrence** is a span with status ERROR none of whose children failed (where the
  failure started, so a tool timeout that also fails its agent is counted once, at the tool), or
  an ERROR trace without any failed span. Errors inside traces that still ended OK count too:
  ``failed_traces`` says how many of a pattern's traces ended in ERROR.
* **Pattern** = (error type, where: tool name or span name, normalised message).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tools.filters import parser
from tools.analysis.common import Window, count_text, markdown_table, ms_text, parse_window, pct_text, ratio
from tools.previews import preview
from tools.privacy.redaction import redact_text
from tools.traces.search import FilterText, iso_ms

__all__ = ["ERROR_TYPE_RULES", "MESSAGE_FOLDS", "ErrorPatternsInput", "ErrorPatternsResult", "ErrorRequest",
           "ErrorStore", "error_patterns"]

#: How messages are folded so one failure groups together: (RE2 pattern, placeholder), applied in
#: order, globally, by the store (DuckDB ``regexp_replace``). Quoted text goes first (it may hold
#: anything); a bare number becomes <n>, a hex run <hex>, a word with 3+ digits (req_8812) <id>.
MESSAGE_FOLDS: tuple[tuple[str, str], ...] = (
    (r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+", "<url>"),
    (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "<email>"),
    (r"(^|[^\w])'[^'\n]*'", r"\1<str>"),
    (r'"[^"]*"', "<str>"),
    (r"`[^`]*`", "<str>"),
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "<uuid>"),
    (r"(?:[A-Za-z]:)?(?:[/\\][\w.-]+){2,}[/\\]?", "<path>"),
    (r"\b\d+(?:\.\d+)?(?:ms|s|m|h|d|kb|mb|gb|k|x|%)?\b", "<n>"),
    (r"\b(?:0x)?[0-9a-fA-F]{8,}\b", "<hex>"),
    (r"\b[A-Za-z_-]*(?:\d[A-Za-z_-]*){3,}\b", "<id>"),
    (r"\s+", " "),
)
#: How an error type is read from a message when the span's attributes ('error.type') and
#: exception events ('exception.type') do not say: (RE2 pattern with one group, prefix).
ERROR_TYPE_RULES: tuple[tuple[str, str], ...] = (
    (r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Timeout|Exceeded|Fault|Failure|Refused|Denied|Cancelled))\b", ""),
    (r"(?i)(?:status|code|http)[^0-9]{0,12}\b([45][0-9]{2})\b", "HTTP "),
    (r"^\s*([A-Z][\w.]*)\s*:", ""),
    (r"(?i)^\s*(timeout|timed out|deadline exceeded|cancelled|canceled|rate limit)", ""),
)
UNKNOWN_TYPE = "unknown"
MESSAGE_CHARS = 300
SAMPLE_CHARS = 240
EXAMPLES = 3
SIGNIFICANCE = 0.05

WindowText = Annotated[str, Field(
    description="Window length: a whole number and m/h/d/w, e.g. '24h' (default), '7d', '30m'. The previous "
                "window of the same length is the baseline.")]
Anchor = Annotated[Literal["now", "latest"], Field(
    description="Where the window ends: 'now' (default, live monitoring) or 'latest' = the newest trace the "
                "filter selects (for exported or historic data).")]
PatternLimit = Annotated[int, Field(ge=1, le=50, description="Max error patterns returned (1-50), most traces first.")]


@dataclass(frozen=True)
class ErrorRequest:
    """The resolved windows and rules the store aggregates with."""

    expr: Any
    now_ms: int
    previous_start_ms: int       # exclusive
    current_start_ms: int        # exclusive; = previous window's end (inclusive)
    end_ms: int                  # inclusive
    top: int
    examples: int = EXAMPLES
    message_chars: int = MESSAGE_CHARS
    message_folds: tuple[tuple[str, str], ...] = MESSAGE_FOLDS
    error_type_rules: tuple[tuple[str, str], ...] = ERROR_TYPE_RULES


class WindowCounts(BaseModel):
    traces: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


class PatternRow(BaseModel):
    """One pattern as the store groups it; texts are raw (redacted here)."""

    error_type: str
    location: str
    span_type: str | None
    message: str | None
    example_message: str | None
    occurrences: int
    traces: int
    failed_traces: int
    first_ms: int
    last_ms: int
    previous_traces: int
    example_trace_ids: list[str]
    sample_request: str | None


class ErrorData(BaseModel):
    current: WindowCounts
    previous: WindowCounts
    patterns: list[PatternRow]
    pattern_count: int


class ErrorStore(Protocol):
    """What error_patterns needs from a store; ``server.storage.duckdb.analytics_sql`` implements it in SQL."""

    def newest_timestamp(self, expr: Any, now_ms: int) -> int | None: ...

    def error_data(self, request: ErrorRequest) -> ErrorData: ...


class ErrorPatternsInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    filter: FilterText = ""
    window: WindowText = "24h"
    anchor: Anchor = "now"
    limit: PatternLimit = 10


class WindowSummary(BaseModel):
    start: str | None = Field(description="Exclusive start, ISO 8601 UTC.")
    end: str | None = Field(description="Inclusive end, ISO 8601 UTC.")
    traces: int
    errors: int = Field(description="Traces with status ERROR.")
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None


class ErrorPattern(BaseModel):
    error_type: str = Field(description="Exception class / error.type, 'HTTP 4xx/5xx', or 'unknown'.")
    location: str = Field(description="Tool name, else span name, where the failure started.")
    span_type: str | None
    message: str | None = Field(description="Normalised message: ids, numbers, quotes, paths, URLs folded.")
    example_message: str | None = Field(description="One real message (newest), redacted.")
    occurrences: int = Field(description="Failed spans in the current window.")
    traces: int = Field(description="Distinct traces with this pattern in the current window.")
    share_of_traffic: float = Field(description="traces / all traces in the current window (0-1).")
    failed_traces: int = Field(description="Of those traces, how many ended in ERROR (the rest recovered).")
    first_seen: str
    last_seen: str
    previous_traces: int = Field(description="Traces with this pattern in the previous window (0 = new).")
    example_trace_ids: list[str] = Field(description="Newest first; read one with get_trace.")
    sample_input: str | None = Field(description="The newest example's request, redacted and cut.")


class ErrorPatternsResult(BaseModel):
    selection: str
    window: str
    anchor: str
    current: WindowSummary
    previous: WindowSummary
    error_rate_change_pp: float | None = Field(description="Current minus previous error rate, percentage points.")
    p_value: float | None = Field(description="Two-sided Fisher exact test of the two windows' error counts.")
    verdict: str = Field(description="'error rate rose' | 'error rate fell' | 'no significant change' | "
                                     "'no baseline' | 'no traces'.")
    patterns: list[ErrorPattern]
    pattern_count: int = Field(description="All patterns in the current window (patterns holds the top `limit`).")
    findings: list[str] = Field(default_factory=list)
    markdown: str = ""


def error_patterns(store: ErrorStore, inp: ErrorPatternsInput, *, now_ms: int) -> ErrorPatternsResult:
    """Validate, resolve the windows, aggregate in the store, then compare and explain."""
    expr = parser.parse(inp.filter)
    window = parse_window(inp.window)
    end = now_ms if inp.anchor == "now" else store.newest_timestamp(expr, now_ms)
    selection = parser.explain(expr) if expr is not None else "all traces"
    if end is None:
        empty = WindowSummary(start=None, end=None, traces=0, errors=0, error_rate=None, p50_ms=None, p95_ms=None)
        return _finish(ErrorPatternsResult(selection=selection, window=window.text, anchor=inp.anchor, current=empty,
                                           previous=empty, error_rate_change_pp=None, p_value=None,
                                           verdict="no traces", patterns=[], pattern_count=0))
    request = ErrorRequest(expr=expr, now_ms=now_ms, previous_start_ms=end - 2 * window.ms,
                           current_start_ms=end - window.ms, end_ms=end, top=inp.limit)
    data = store.error_data(request)
    return _finish(_result(data, request, window, inp.anchor, selection))


def _summary(counts: WindowCounts, start: int, end: int) -> WindowSummary:
    return WindowSummary(start=iso_ms(start), end=iso_ms(end), traces=counts.traces, errors=counts.errors,
                         error_rate=ratio(counts.errors, counts.traces), p50_ms=counts.p50_ms, p95_ms=counts.p95_ms)


def _compare(cur: WindowCounts, prev: WindowCounts) -> tuple[float | None, float | None, str]:
    if not cur.traces:
        return None, None, "no traces"
    if not prev.traces:
        return None, None, "no baseline"
    from scipy.stats import fisher_exact  # imported on use: scipy adds seconds to every CLI/server start

    change = (cur.errors / cur.traces - prev.errors / prev.traces) * 100
    p = float(fisher_exact([[cur.errors, cur.traces - cur.errors], [prev.errors, prev.traces - prev.errors]])[1])
    if p < SIGNIFICANCE and change > 0:
        return change, p, "error rate rose"
    if p < SIGNIFICANCE and change < 0:
        return change, p, "error rate fell"
    return change, p, "no significant change"


def _result(data: ErrorData, req: ErrorRequest, window: Window, anchor: str, selection: str) -> ErrorPatternsResult:
    change, p_value, verdict = _compare(data.current, data.previous)
    patterns = [ErrorPattern(
        error_type=row.error_type, location=row.location, span_type=row.span_type,
        message=redact(row.message) if row.message else None,
        example_message=redact(row.example_message) if row.example_message else None,
        occurrences=row.occurrences, traces=row.traces,
        share_of_traffic=ratio(row.traces, data.current.traces) or 0.0, failed_traces=row.failed_traces,
        first_seen=iso_ms(row.first_ms) or "", last_seen=iso_ms(row.last_ms) or "",
        previous_traces=row.previous_traces, example_trace_ids=row.example_trace_ids,
        sample_input=_sample(row.sample_request)) for row in data.patterns]
    return ErrorPatternsResult(
        selection=selection, window=window.text, anchor=anchor,
        current=_summary(data.current, req.current_start_ms, req.end_ms),
        previous=_summary(data.previous, req.previous_start_ms, req.current_start_ms),
        error_rate_change_pp=change, p_value=p_value, verdict=verdict, patterns=patterns,
        pattern_count=data.pattern_count)


def _sample(raw: str | None) -> str | None:
    text = preview(raw, chars=SAMPLE_CHARS * 2, is_request=True)
    if not text:
        return None
    text = redact(text)
    return text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 1] + "…"


def _finish(r: ErrorPatternsResult) -> ErrorPatternsResult:
    findings = _findings(r)
    return r.model_copy(update={"findings": findings, "markdown": _markdown(r, findings)})


def _findings(r: ErrorPatternsResult) -> list[str]:
    cur, prev = r.current, r.previous
    if not cur.traces:
        where = "before now" if r.anchor == "now" else "in the store"
        return [f"No traces in the last {r.window} {where} for {r.selection}. Try a longer window, anchor='latest' "
                "(ends at the newest matching trace), or a wider filter."]
    head = (f"Last {r.window} (to {cur.end}): {count_text(cur.traces)} traces, {count_text(cur.errors)} errors "
            f"({pct_text(cur.error_rate, 1)})")
    if r.verdict == "no baseline":
        head += f"; no traces in the previous {r.window} to compare with."
    else:
        head += (f" vs {pct_text(prev.error_rate, 1)} in the previous {r.window} "
                 f"({r.error_rate_change_pp:+.1f} pp, p={r.p_value:.2g}): {r.verdict}.")
    out = [head, f"Latency p50 {ms_text(cur.p50_ms)}, p95 {ms_text(cur.p95_ms)}"
           + (f" (previous: p50 {ms_text(prev.p50_ms)}, p95 {ms_text(prev.p95_ms)})." if prev.traces else ".")]
    for p in r.patterns[:3]:
        status = ("new in this window" if p.previous_traces == 0
                  else f"{p.previous_traces} trace(s) in the previous window")
        out.append(f"{p.error_type} at '{p.location}': {p.message or '(no message)'} — {p.traces} trace(s), "
                   f"{pct_text(p.share_of_traffic, 1)} of traffic, {p.failed_traces} ended in ERROR; {status}. "
                   f"Example: {p.example_trace_ids[0] if p.example_trace_ids else '—'}.")
    if not r.patterns:
        out.append("No failed spans or ERROR traces in this window.")
    elif r.pattern_count > len(r.patterns):
        out.append(f"{r.pattern_count - len(r.patterns)} more pattern(s); raise limit to see them.")
    return out


def _markdown(r: ErrorPatternsResult, findings: list[str]) -> str:
    parts = [f"**Error patterns, {r.selection}, last {r.window}**", "\n".join(f"- {f}" for f in findings)]
    if r.current.traces:
        rows = [[w, count_text(s.traces), count_text(s.errors), pct_text(s.error_rate, 1), ms_text(s.p50_ms),
                 ms_text(s.p95_ms)] for w, s in (("current", r.current), ("previous", r.previous))]
        parts.append(markdown_table(["window", "traces", "errors", "error rate", "p50", "p95"], rows,
                                    right=range(1, 6)))
    if r.patterns:
        rows = [[i, p.error_type, p.location, p.message or "—", p.traces, pct_text(p.share_of_traffic, 1),
                 p.occurrences, p.failed_traces, p.previous_traces, p.first_seen, p.last_seen,
                 ", ".join(p.example_trace_ids), p.sample_input or "—"] for i, p in enumerate(r.patterns, 1)]
        parts.append(markdown_table(["#", "error type", "where", "message", "traces", "% traffic", "occurrences",
                                     "ended ERROR", "prev window", "first seen", "last seen", "examples",
                                     "sample input (redacted)"], rows, right=(0, 4, 5, 6, 7, 8)))
    return "\n\n".join(parts)


def redact(text: str) -> str:
    """Samples and messages pass through the shared PII redactor (emails, phones, cards, secrets, IPs,
    person names when a spaCy model is installed) before an agent sees them."""
    return redact_text(text).text
