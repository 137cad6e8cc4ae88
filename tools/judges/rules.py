"""Rule judges in Python: the reference semantics of every rule type, one function each.

The store may evaluate the same rules in bulk (``server/storage/duckdb/judges_sql.py`` compiles most of
them to SQL); this module is what that SQL must agree with, and it is what runs whenever the
store cannot (JSON Schema checks, regexes DuckDB's RE2 rejects, redacted dataset records).
Rationales are short, concrete and identical on both paths, so a parity test can compare them.

Also here: where a request/response body keeps the text a judge reads (``INPUT_PATHS`` /
``OUTPUT_PATHS``); the store renders these paths into SQL when it builds items.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from tools.judges import specs as S
from tools.judges.ports import Item, Verdict

#: Where the answer text sits in common response bodies, tried in order (first string wins):
#: OpenAI chat, Anthropic messages, Gemini, OTel GenAI output messages, then plain keys.
OUTPUT_PATHS: tuple[tuple[str | int, ...], ...] = (
    ("choices", 0, "message", "content"), ("content",), ("content", 0, "text"),
    ("candidates", 0, "content", "parts", 0, "text"), (-1, "parts", 0, "content"), ("output",), ("answer",),
    ("text",), ("response",), ("result",))
#: Where the user's request sits in common request bodies (the last message is the newest):
#: chat messages, OTel GenAI input messages, Gemini contents, then plain keys.
INPUT_PATHS: tuple[tuple[str | int, ...], ...] = (
    ("messages", -1, "content"), (-1, "parts", 0, "content"), (-1, "content"), ("contents", -1, "parts", 0, "text"),
    ("contents",), ("request",), ("input",), ("question",), ("query",), ("prompt",), ("text",), ("content",))
SNIPPET = 80
#: Whitespace both paths strip before deciding a text is missing (DuckDB's trim takes a list).
BLANK = " \t\n\r\f"
#: What a request/response holds when there is none: nothing, blanks, JSON null or "".
EMPTY_TEXTS = ("", "null", '""')


def present(text: str | None) -> str | None:
    """``text``, or None when it is missing in substance (see ``EMPTY_TEXTS``).

    A rule asked about a missing answer must say ``unknown``: the audit saw ``must: not_match``
    pass all 24 traces that had no output, a verdict the data cannot support."""
    return None if text is None or text.strip(BLANK) in EMPTY_TEXTS else text


def field_text(item: Item, field: str) -> str | None:
    if field == "input":
        return present(item.input)
    if field == "output":
        return present(item.output)
    if field == "retrieved_context":
        return "\n".join(item.retrieved) if item.retrieved else None
    args = [c.arguments for c in item.tool_calls if c.arguments]
    return "\n".join(args) if args else None


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[:SNIPPET] + "…"


def _ratio(ok: int, total: int) -> float:
    return 1.0 if total == 0 else round(ok / total, 6)


def _unknown(reason: str) -> Verdict:
    return Verdict(label="unknown", score=None, reason=reason)


def _binary(ok: bool, reason: str) -> Verdict:
    return Verdict(label="pass" if ok else "fail", score=1.0 if ok else 0.0, reason=reason)


@lru_cache(maxsize=256)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


def regex(spec: S.RegexRule, item: Item) -> Verdict:
    text = field_text(item, spec.field)
    if text is None:
        return _unknown(f"no {spec.field} to check")
    m = _compiled(spec.pattern, spec.ignore_case).search(text)
    if spec.must == "match":
        return _binary(m is not None, f"{spec.field} matches the pattern" if m else
                       f"{spec.field} does not match the pattern")
    return _binary(m is None, f"{spec.field} contains '{_cut(m.group(0))}'" if m else
                   f"{spec.field} does not match the pattern")


def _schema_errors(schema: dict[str, Any], raw: str | None) -> str | None:
    """None when ``raw`` is JSON valid against ``schema``, else the first problem."""
    import jsonschema

    try:
        value = json.loads(raw or "")
    except ValueError:
        return "is not JSON"
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"violates the schema{' at ' + where if where else ''}: {_cut(error.message)}"


def json_schema(spec: S.JsonSchemaRule, item: Item) -> Verdict:
    if spec.target == "output":
        if present(item.output) is None:
            return _unknown("no output to check")
        problem = _schema_errors(spec.json_schema, item.output)
        return _binary(problem is None, "output is valid JSON for the schema" if problem is None else
                       f"output {problem}")
    calls = [c for c in item.tool_calls if spec.tool is None or c.name == spec.tool]
    if not calls:
        return _unknown(f"no calls of {spec.tool!r} to check" if spec.tool else "no tool calls to check")
    problems = [(c.name, p) for c in calls if (p := _schema_errors(spec.json_schema, c.arguments))]
    if not problems:
        return _binary(True, f"arguments of all {len(calls)} tool calls are valid")
    name, problem = problems[0]
    return Verdict(label="fail", score=_ratio(len(calls) - len(problems), len(calls)),
                   reason=f"{len(problems)} of {len(calls)} tool calls have invalid arguments; "
                          f"{name} arguments {problem}")


def measure(text: str, unit: str) -> int:
    return len(text) if unit == "chars" else len(text.split())


def length(spec: S.LengthRule, item: Item) -> Verdict:
    text = field_text(item, spec.field)
    if text is None:
        return _unknown(f"no {spec.field} to check")
    n = measure(text, spec.unit)
    if spec.max is not None and n > spec.max:
        return _binary(False, f"{spec.field} has {n} {spec.unit}, more than max {spec.max}")
    if spec.min is not None and n < spec.min:
        return _binary(False, f"{spec.field} has {n} {spec.unit}, fewer than min {spec.min}")
    return _binary(True, f"{spec.field} has {n} {spec.unit}, within bounds")


def token_budget(spec: S.TokenBudgetRule, item: Item) -> Verdict:
    if item.input_tokens is None and item.output_tokens is None:
        return _unknown("no token usage recorded")
    used = {"input": item.input_tokens or 0, "output": item.output_tokens or 0}
    used["total"] = used["input"] + used["output"]
    limits = {"input": spec.max_input_tokens, "output": spec.max_output_tokens, "total": spec.max_total_tokens}
    over = [f"{k} tokens {used[k]} > {v}" for k, v in limits.items() if v is not None and used[k] > v]
    return _binary(not over, "; ".join(over) if over else f"{used['total']} tokens, within budget")


def phrases(spec: S.PhrasesRule, item: Item) -> Verdict:
    text = field_text(item, spec.field)
    if text is None:
        return _unknown(f"no {spec.field} to check")
    hay = text.lower() if spec.ignore_case else text

    def has(p: str) -> bool:
        return (p.lower() if spec.ignore_case else p) in hay

    missing = [p for p in spec.required if not has(p)]
    banned = [p for p in spec.banned if has(p)]
    total = len(spec.required) + len(spec.banned)
    if not missing and not banned:
        return _binary(True, f"all {total} phrase checks hold")
    parts = ([f"missing required {_quoted(missing)}"] if missing else []) + \
            ([f"contains banned {_quoted(banned)}"] if banned else [])
    return Verdict(label="fail", score=_ratio(total - len(missing) - len(banned), total), reason="; ".join(parts))


def _quoted(phrases: list[str]) -> str:
    return ", ".join("'" + p + "'" for p in phrases)


def expected_tools(spec: S.ToolCallRule, item: Item) -> tuple[str | None, list[str] | None]:
    """The metadata value and the tools it expects, or (value, None) when no expectation applies."""
    if not spec.expected_by_metadata:
        return None, None
    value = item.metadata.get(spec.expected_by_metadata)
    value = None if value is None else str(value)
    return value, (spec.expected_tools.get(value) if value is not None else None)


def tool_call(spec: S.ToolCallRule, item: Item) -> Verdict:
    called = list(dict.fromkeys(c.name for c in item.tool_calls))
    problems: list[str] = []
    checks = 0
    for tool in spec.must_call:
        checks += 1
        if tool not in called:
            problems.append(f"{tool} not called")
    for tool in spec.must_not_call:
        checks += 1
        if tool in called:
            problems.append(f"{tool} called")
    value, expected = expected_tools(spec, item)
    if expected is not None:
        for tool in expected:
            checks += 1
            if tool not in called:
                problems.append(f"{tool} not called ({spec.expected_by_metadata}={value})")
        extra = [t for t in called if t not in expected]
        checks += 1
        if extra:
            problems.append(f"unexpected {', '.join(extra)} ({spec.expected_by_metadata}={value})")
    for call in item.tool_calls:
        schema = spec.argument_schemas.get(call.name)
        if schema is not None:
            checks += 1
            if (problem := _schema_errors(schema, call.arguments)) is not None:
                problems.append(f"{call.name} arguments {problem}")
    if checks == 0:
        what = f"{spec.expected_by_metadata}={value}" if spec.expected_by_metadata else "this trace"
        return _unknown(f"no tool expectation applies to {what}")
    if not problems:
        return _binary(True, f"all {checks} tool checks hold (called: {', '.join(called) or 'none'})")
    return Verdict(label="fail", score=_ratio(checks - len(problems), checks), reason="; ".join(problems))


def cited_ids(spec: S.CitationRule, text: str) -> list[str]:
    return list(dict.fromkeys(m.group(1) for m in _compiled(spec.citation_pattern, False).finditer(text)))


def citation_grounding(spec: S.CitationRule, item: Item) -> Verdict:
    if present(item.output) is None:
        return _unknown("no output to check")
    cited = cited_ids(spec, item.output)
    if not cited:
        return _binary(not spec.require_citation, "no citations" if not spec.require_citation else
                       "no citations, but require_citation is set")
    docs = [text for text, name in zip(item.retrieved, item.retriever_names)
            if spec.retriever is None or name == spec.retriever]
    context = "\n".join(docs)
    missing = [c for c in cited if c not in context]
    if not missing:
        return _binary(True, f"all {len(cited)} citations appear in the retrieved documents")
    return Verdict(label="fail", score=_ratio(len(cited) - len(missing), len(cited)),
                   reason=f"cites {', '.join(missing)}, not in the retrieved documents "
                          f"({len(cited) - len(missing)} of {len(cited)} grounded)")


def latency(spec: S.LatencyRule, item: Item) -> Verdict:
    if item.latency_ms is None:
        return _unknown("no latency recorded")
    ok = item.latency_ms <= spec.max_ms
    return _binary(ok, f"took {item.latency_ms} ms, {'within' if ok else 'over'} max {spec.max_ms} ms")


def status(spec: S.StatusRule, item: Item) -> Verdict:
    if item.status is None:
        return _unknown("no trace status recorded")
    problems = []
    if spec.trace_ok and item.status == "ERROR":
        problems.append("trace status ERROR")
    failed = [t for t in spec.span_types if any(e.type == t for e in item.error_spans)]
    if failed:
        first = next(e for e in item.error_spans if e.type in spec.span_types)
        problems.append(f"a {'/'.join(failed)} span has status ERROR ({_cut(first.name + ': ' + (first.message or ''))})")
    return _binary(not problems, "; ".join(problems) if problems else "no error status")


EVALUATORS: dict[str, Callable[[Any, Item], Verdict]] = {
    "regex": regex, "json_schema": json_schema, "length": length, "token_budget": token_budget,
    "phrases": phrases, "tool_call": tool_call, "citation_grounding": citation_grounding, "latency": latency,
    "status": status,
}


def evaluate(spec: BaseModel, item: Item) -> Verdict:
    """The verdict of rule ``spec`` on ``item`` (deterministic, no I/O)."""
    return EVALUATORS[getattr(spec, "type")](spec, item)
