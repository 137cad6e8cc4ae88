"""The few words a model must read first: one short summary per tool result.

Hosts disagree about what a model sees of a result. Claude Code and VS Code hand it only
``JSON.stringify(structuredContent)`` when that is present and drop the text; Claude Desktop,
Cursor and the MCP Inspector show the text blocks (the Inspector shows both). So the summary goes
in both places: as ``summary``, the first member of the structured content, and as the whole text
content, instead of the same JSON indented a second time. It names the headline (verdict, counts)
and the next call; the data itself lives once, in the structured content.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_SUMMARY = 600


def _next(tool: str, data: dict[str, Any]) -> str:
    if data.get("next_page_token"):
        return f" More: {tool}(page_token='{data['next_page_token']}', same other arguments)."
    if data.get("next_offset") is not None and tool != "get_trace":
        return f" More: {tool}(offset={data['next_offset']}, same other arguments)."
    return ""


def _search(data: dict[str, Any]) -> str:
    total = data.get("total_matches")
    more = "+" if data.get("total_exact") is False else ""
    where = data.get("filter_explained") or "all traces"
    return f"{len(data.get('traces', []))} traces shown of {total}{more} matching {where}."


def _get_trace(data: dict[str, Any]) -> str:
    t = data.get("trace", {})
    if "content" in data:
        c = data["content"]
        nxt = f" More: offset={c['next_offset']}." if c.get("next_offset") is not None else " (end)"
        return (f"Trace {t.get('trace_id')} {c.get('field')} of span {c.get('span_id') or '(trace)'}: chars "
                f"{c.get('offset')}-{c.get('offset', 0) + len(c.get('content', ''))} of {c.get('total_chars')}.{nxt}")
    spans = data.get("spans", [])
    text = (f"Trace {t.get('trace_id')} {t.get('status')}, {t.get('duration_ms')} ms, "
            f"{len(spans)} of {data.get('span_total')} spans listed")
    if data.get("next_span_offset") is not None:
        text += f"; more: get_trace(trace_id='{t.get('trace_id')}', span_offset={data['next_span_offset']})"
    if data.get("truncated"):
        text += "; some text was cut: each marker names the call that reads the rest"
    return text + "."


def _tag(data: dict[str, Any]) -> str:
    unknown = data.get("unknown_count", len(data.get("unknown_ids", [])))
    return (f"{data.get('key')}: matched {data.get('matched')}, changed {data.get('changed')}, unchanged "
            f"{data.get('unchanged')}, unknown ids {unknown}.")


def _sql(data: dict[str, Any]) -> str:
    text = f"{data.get('row_count')} rows x {len(data.get('columns', []))} columns."
    if data.get("truncated"):
        text += " More rows existed: aggregate, add WHERE/LIMIT, or raise limit."
    return text


def _findings(data: dict[str, Any]) -> str:
    head = f"{data['verdict']}. " if isinstance(data.get("verdict"), str) else ""
    return head + " ".join(data.get("findings", [])[:3])


def _calibration(data: dict[str, Any]) -> str:
    mcc = data.get("metrics", {}).get("mcc", {})
    value = mcc.get("value") if isinstance(mcc, dict) else None
    return (f"Judge {data.get('judge')} on {data.get('criterion')}: verdict {data.get('verdict')} "
            f"(MCC {value}, n={data.get('n')}). {data.get('verdict_reason', '')}")


def _compare(data: dict[str, Any]) -> str:
    return f"{data.get('verdict')} (exit code {data.get('exit_code')}). {data.get('summary', '')}"


def _run(data: dict[str, Any]) -> str:
    rates = ", ".join(f"{j.get('judge')}: pass rate {j.get('pass_rate')}" for j in data.get("judges", [])[:5])
    return f"Run {data.get('run_id')} {data.get('status')} on {data.get('items')} items. {rates}. Next: {data.get('next', '')}"


_SPECIAL: dict[str, Callable[[dict[str, Any]], str]] = {
    "search_traces": _search, "get_trace": _get_trace, "tag_trace": _tag, "untag_trace": _tag,
    "query_sql": _sql, "profile_traces": _findings, "error_patterns": _findings,
    "calibration_report": _calibration, "compare_runs": _compare, "run_judges": _run, "get_run": _run,
}


def _generic(data: dict[str, Any]) -> str:
    parts = []
    for key, value in data.items():
        if isinstance(value, bool | int | float) or isinstance(value, str) and len(value) <= 80:
            parts.append(f"{key}={value}")
        elif isinstance(value, list):
            parts.append(f"{key}: {len(value)}")
        if len(parts) == 8:
            break
    return ", ".join(parts) + "."


def summarize(tool: str, data: dict[str, Any], note: str | None) -> str:
    """One or two sentences: the headline, then how to continue; ``note`` (a budget cut) first."""
    special = _SPECIAL.get(tool)
    try:
        text = special(data) if special else _generic(data)
    except (AttributeError, KeyError, TypeError, IndexError):  # a result shaped unlike the usual: say less
        text = _generic(data)
    text += _next(tool, data)
    if len(text) > MAX_SUMMARY:
        text = text[: MAX_SUMMARY - 1] + "…"
    return f"{note} {text}" if note else text
