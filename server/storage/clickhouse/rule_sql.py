"""Rule judges compiled to ClickHouse SQL, so the store scores a whole target in one statement.

The ClickHouse twin of ``server/storage/duckdb/rule_sql.py``: each compiler mirrors one function
of ``tools/judges/rules.py`` (the reference) with the same verdicts, scores and rationale text,
checked by ``tests/contract/test_judges_contract.py`` against Python and DuckDB on the same traces.
It returns ``None`` where only Python can evaluate a rule (JSON Schema checks, fields other than
input/output); a regex RE2 rejects is caught by the store before the statement runs. Every value
from a spec is a typed server-side parameter (``{j_pattern:String}``).

What differs from DuckDB follows from ClickHouse's types: arrays cannot be NULL (an expectation
that does not apply is an empty array plus a flag), ``concat`` is NULL if any part is (parts that
may be missing are joined with ``_join_present``), a string literal's backslash is an escape (so
regex literals are written with doubled backslashes), and list elements are tuples read by index.

Columns available to the expressions (see ``judges_store``): input_text, output_text, status,
latency_ms, input_tokens, output_tokens, metadata, and with spans joined: retrieved
(Array(Tuple(name, text))), tool_calls (Array(Tuple(name, arguments, status, error))),
error_spans (Array(Tuple(type, name, message))).
"""

from __future__ import annotations

from typing import Any

from server.storage.rule_shape import RuleSql
from tools.judges import specs as S
from tools.judges.rules import BLANK, EMPTY_TEXTS, SNIPPET

_WS_EDGES = r"'^\\s+|\\s+$'"
_WS = r"'\\s+'"
_ESCAPES = {" ": " ", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}


def _lit(text: str) -> str:
    """A SQL string literal of code-owned text (never a user value)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cut(expr: str) -> str:
    squashed = f"replaceRegexpAll(replaceRegexpAll({expr}, {_WS_EDGES}, ''), {_WS}, ' ')"
    return (f"if(lengthUTF8({squashed}) <= {SNIPPET}, {squashed}, concat(leftUTF8({squashed}, {SNIPPET}), '…'))")


def _join_present(parts: list[str], sep: str) -> str:
    """``parts`` that are not NULL joined by ``sep`` (DuckDB's ``concat_ws``)."""
    return f"arrayStringConcat(arrayFilter(x -> x IS NOT NULL, [{', '.join(parts)}]), {_lit(sep)})"


def _binary(ok: str, reason: str, *, known: str = "1", unknown_reason: str = "''") -> RuleSql:
    return RuleSql(
        verdict=f"multiIf(NOT ({known}), 'unknown', {ok}, 'pass', 'fail')",
        score=f"multiIf(NOT ({known}), NULL, {ok}, 1.0, 0.0)",
        reason=f"if(NOT ({known}), {unknown_reason}, {reason})")


def _ratio(ok: str, total: str) -> str:
    return f"if(({total}) = 0, 1.0, round(({ok}) / ({total}), 6))"


def _present(column: str) -> str:
    """``column``, NULL when it is missing in substance (``rules.present``)."""
    blank = "'" + "".join(_ESCAPES[c] for c in BLANK) + "'"
    empty = ", ".join(_lit(e) for e in EMPTY_TEXTS)
    return f"if(trim(BOTH {blank} FROM {column}) IN ({empty}), NULL, {column})"


def _text(field_name: str) -> str | None:
    column = {"input": "input_text", "output": "output_text"}.get(field_name)
    return _present(column) if column else None


def _unique(array: str) -> str:
    """``array`` without repeats, first occurrences in order (``dict.fromkeys``)."""
    return f"arrayFilter((x, i) -> indexOf({array}, x) = i, {array}, arrayEnumerate({array}))"


def regex(spec: S.RegexRule) -> RuleSql | None:
    text = _text(spec.field)
    if text is None:
        return None
    found = f"match({text}, {{j_pattern:String}})"
    if spec.must == "match":
        reason = f"if({found}, '{spec.field} matches the pattern', '{spec.field} does not match the pattern')"
        rule = _binary(found, reason, known=f"{text} IS NOT NULL", unknown_reason=f"'no {spec.field} to check'")
    else:
        snippet = _cut(f"regexpExtract(assumeNotNull({text}), {{j_pattern:String}}, 0)")
        reason = (f"if({found}, concat('{spec.field} contains \\'', {snippet}, '\\''), "
                  f"'{spec.field} does not match the pattern')")
        rule = _binary(f"NOT {found}", reason, known=f"{text} IS NOT NULL",
                       unknown_reason=f"'no {spec.field} to check'")
    rule.params = {"j_pattern": ("(?i)" if spec.ignore_case else "") + spec.pattern}
    rule.regexes = ("j_pattern",)
    return rule


def length(spec: S.LengthRule) -> RuleSql | None:
    text = _text(spec.field)
    if text is None:
        return None
    if spec.unit == "chars":
        n = f"lengthUTF8({text})"
    else:
        stripped = f"replaceRegexpAll({text}, {_WS_EDGES}, '')"
        n = f"if({stripped} = '', 0, length(splitByRegexp({_WS}, assumeNotNull({stripped}))))"
    over = "0" if spec.max is None else "n > {j_max:Int64}"
    under = "0" if spec.min is None else "n < {j_min:Int64}"
    head = f"'{spec.field} has ', toString(n), ' {spec.unit}, '"
    branches = ([f"{over}, concat({head}, 'more than max ', toString({{j_max:Int64}}))"] if spec.max is not None
                else []) + \
               ([f"{under}, concat({head}, 'fewer than min ', toString({{j_min:Int64}}))"] if spec.min is not None
                else [])
    reason = f"multiIf({', '.join(branches)}, concat({head}, 'within bounds'))"
    rule = _binary(f"NOT ({over}) AND NOT ({under})", reason, known="n IS NOT NULL",
                   unknown_reason=f"'no {spec.field} to check'")
    rule.pre = {"n": n}
    rule.params = {k: v for k, v in (("j_max", spec.max), ("j_min", spec.min)) if v is not None}
    return rule


def token_budget(spec: S.TokenBudgetRule) -> RuleSql:
    used = {"input": "coalesce(input_tokens, 0)", "output": "coalesce(output_tokens, 0)",
            "total": "(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))"}
    limits = {"input": spec.max_input_tokens, "output": spec.max_output_tokens, "total": spec.max_total_tokens}
    overs = {k: f"{used[k]} > {{j_{k}:Int64}}" for k, v in limits.items() if v is not None}
    listed = [f"if({cond}, concat('{k} tokens ', toString({used[k]}), ' > ', toString({{j_{k}:Int64}})), NULL)"
              for k, cond in overs.items()]
    any_over = " OR ".join(overs.values())
    reason = (f"if({any_over}, {_join_present(listed, '; ')}, "
              f"concat(toString({used['total']}), ' tokens, within budget'))")
    rule = _binary(f"NOT ({any_over})", reason, known="input_tokens IS NOT NULL OR output_tokens IS NOT NULL",
                   unknown_reason="'no token usage recorded'")
    rule.params = {f"j_{k}": v for k, v in limits.items() if v is not None}
    return rule


def phrases(spec: S.PhrasesRule) -> RuleSql | None:
    text = _text(spec.field)
    if text is None:
        return None
    hay = f"lowerUTF8({text})" if spec.ignore_case else text
    fold = (lambda p: p.lower()) if spec.ignore_case else (lambda p: p)
    required, banned = "{j_required:Array(String)}", "{j_banned:Array(String)}"
    shown = ("arrayMap(p -> concat('\\'', p, '\\''), arrayFilter((p, f) -> has({chosen}, f), "
             "{{j_{which}_raw:Array(String)}}, {folded}))")
    rule = RuleSql(
        pre={"hay": hay,
             "missing": f"arrayFilter(p -> position(coalesce(hay, ''), p) = 0, {required})",
             "banned": f"arrayFilter(p -> position(coalesce(hay, ''), p) > 0, {banned})",
             "shown_missing": shown.format(chosen="missing", which="required", folded=required),
             "shown_banned": shown.format(chosen="banned", which="banned", folded=banned)},
        verdict="multiIf(hay IS NULL, 'unknown', length(missing) + length(banned) = 0, 'pass', 'fail')",
        score=f"if(hay IS NULL, NULL, {_ratio('{j_total:Int64} - length(missing) - length(banned)', '{j_total:Int64}')})",
        reason=f"multiIf(hay IS NULL, 'no {spec.field} to check', length(missing) + length(banned) = 0, "
               "concat('all ', toString({j_total:Int64}), ' phrase checks hold'), " + _join_present([
                   "if(length(missing) > 0, concat('missing required ', arrayStringConcat(shown_missing, ', ')), NULL)",
                   "if(length(banned) > 0, concat('contains banned ', arrayStringConcat(shown_banned, ', ')), NULL)"],
                   "; ") + ")",
        params={"j_required": [fold(p) for p in spec.required], "j_banned": [fold(p) for p in spec.banned],
                "j_required_raw": list(spec.required), "j_banned_raw": list(spec.banned),
                "j_total": len(spec.required) + len(spec.banned)})
    return rule


def tool_call(spec: S.ToolCallRule) -> RuleSql | None:
    if spec.argument_schemas:
        return None
    keys = sorted(spec.expected_tools)
    params: dict[str, Any] = {"j_must": list(spec.must_call), "j_must_not": list(spec.must_not_call),
                              "j_keys": keys, "j_vals": [list(spec.expected_tools[k]) for k in keys],
                              "j_metakey": spec.expected_by_metadata or ""}
    value = (_json_text("metadata", "{j_metakey:String}") if spec.expected_by_metadata
             else "CAST(NULL AS Nullable(String))")
    must, must_not, keys_p = "{j_must:Array(String)}", "{j_must_not:Array(String)}", "{j_keys:Array(String)}"
    where = "concat(' (', {j_metakey:String}, '=', coalesce(meta_value, ''), ')')"
    problems = ("arrayConcat("
                f"arrayMap(t -> concat(t, ' not called'), arrayFilter(t -> NOT has(called, t), {must})), "
                f"arrayMap(t -> concat(t, ' called'), arrayFilter(t -> has(called, t), {must_not})), "
                f"arrayMap(t -> concat(t, ' not called', {where}), arrayFilter(t -> NOT has(called, t), expected)), "
                "if(applies AND length(arrayFilter(t -> NOT has(expected, t), called)) > 0, "
                f"[concat('unexpected ', arrayStringConcat(arrayFilter(t -> NOT has(expected, t), called), ', '), "
                f"{where})], []))")
    subject = ("concat({j_metakey:String}, '=', coalesce(meta_value, 'None'))" if spec.expected_by_metadata
               else "'this trace'")
    return RuleSql(
        pre={"meta_value": value, "names": "arrayMap(c -> c.1, tool_calls)", "called": _unique("names"),
             "applies": f"meta_value IS NOT NULL AND has({keys_p}, assumeNotNull(meta_value))",
             "expected": f"if(applies, arrayElement({{j_vals:Array(Array(String))}}, "
                         f"indexOf({keys_p}, assumeNotNull(meta_value))), CAST([] AS Array(String)))",
             "checks": f"length({must}) + length({must_not}) + if(applies, length(expected) + 1, 0)",
             "problems": problems},
        verdict="multiIf(checks = 0, 'unknown', length(problems) = 0, 'pass', 'fail')",
        score=f"if(checks = 0, NULL, {_ratio('checks - length(problems)', 'checks')})",
        reason=f"multiIf(checks = 0, concat('no tool expectation applies to ', {subject}), "
               "length(problems) = 0, concat('all ', toString(checks), ' tool checks hold (called: ', "
               "if(length(called) = 0, 'none', arrayStringConcat(called, ', ')), ')'), "
               "arrayStringConcat(problems, '; '))",
        params=params, needs_spans=True)


def _json_text(doc: str, key: str) -> str:
    """A top-level JSON value as text (strings unquoted, others as written), NULL when absent."""
    return (f"multiIf(NOT JSONHas({doc}, {key}), NULL, JSONType({doc}, {key}) = 'String', "
            f"JSONExtractString({doc}, {key}), JSONType({doc}, {key}) = 'Null', NULL, JSONExtractRaw({doc}, {key}))")


def citation_grounding(spec: S.CitationRule) -> RuleSql:
    docs = ("retrieved" if spec.retriever is None
            else "arrayFilter(d -> d.1 = {j_retriever:String}, retrieved)")
    params: dict[str, Any] = {"j_cite": spec.citation_pattern, "j_require": spec.require_citation}
    if spec.retriever is not None:
        params["j_retriever"] = spec.retriever
    require = "{j_require:Bool}"
    no_cites = f"if({require}, 'no citations, but require_citation is set', 'no citations')"
    rule = RuleSql(
        pre={"answer": _present("output_text"),
             "cited_all": "extractAll(coalesce(answer, ''), {j_cite:String})",
             "cited": _unique("cited_all"),
             "context": f"arrayStringConcat(arrayMap(d -> d.2, {docs}), '\\n')",
             "missing": "arrayFilter(c -> position(context, c) = 0, cited)"},
        verdict=f"multiIf(answer IS NULL, 'unknown', length(cited) = 0, if({require}, 'fail', 'pass'), "
                "length(missing) = 0, 'pass', 'fail')",
        score=f"multiIf(answer IS NULL, NULL, length(cited) = 0, if({require}, 0.0, 1.0), "
              f"{_ratio('length(cited) - length(missing)', 'length(cited)')})",
        reason=f"multiIf(answer IS NULL, 'no output to check', length(cited) = 0, {no_cites}, "
               "length(missing) = 0, concat('all ', toString(length(cited)), "
               "' citations appear in the retrieved documents'), "
               "concat('cites ', arrayStringConcat(missing, ', '), ', not in the retrieved documents (', "
               "toString(length(cited) - length(missing)), ' of ', toString(length(cited)), ' grounded)'))",
        params=params, needs_spans=True)
    rule.regexes = ("j_cite",)
    return rule


def latency(spec: S.LatencyRule) -> RuleSql:
    ok = "latency_ms <= {j_max_ms:Int64}"
    reason = ("concat('took ', toString(latency_ms), ' ms, ', if(latency_ms <= {j_max_ms:Int64}, 'within', 'over'), "
              "' max ', toString({j_max_ms:Int64}), ' ms')")
    rule = _binary(ok, reason, known="latency_ms IS NOT NULL", unknown_reason="'no latency recorded'")
    rule.params = {"j_max_ms": spec.max_ms}
    return rule


def status(spec: S.StatusRule) -> RuleSql:
    """Spans are read only when ``span_types`` is given (the trace's own status needs none)."""
    trace_bad = "status = 'ERROR'" if spec.trace_ok else "0"
    if spec.span_types:
        types = "{j_types:Array(String)}"
        first = f"arrayFilter(e -> has({types}, e.1), error_spans)[1]"
        failed_types = f"arrayFilter(x -> arrayExists(e -> e.1 = x, error_spans), {types})"
        detail = _cut(f"concat(coalesce({first}.2, ''), ': ', coalesce({first}.3, ''))")
    else:
        failed_types, detail = "CAST([] AS Array(String))", "''"
    bad = "trace_bad OR length(failed_types) > 0"
    return RuleSql(
        pre={"trace_bad": trace_bad, "failed_types": failed_types},
        verdict=f"multiIf(status IS NULL, 'unknown', {bad}, 'fail', 'pass')",
        score=f"multiIf(status IS NULL, NULL, {bad}, 0.0, 1.0)",
        reason=f"multiIf(status IS NULL, 'no trace status recorded', {bad}, " + _join_present([
            "if(trace_bad, 'trace status ERROR', NULL)",
            f"if(length(failed_types) > 0, concat('a ', arrayStringConcat(failed_types, '/'), "
            f"' span has status ERROR (', {detail}, ')'), NULL)"], "; ") + ", 'no error status')",
        params={"j_types": list(spec.span_types)} if spec.span_types else {}, needs_spans=bool(spec.span_types))


_COMPILERS = {"regex": regex, "length": length, "token_budget": token_budget, "phrases": phrases,
              "tool_call": tool_call, "citation_grounding": citation_grounding, "latency": latency,
              "status": status}


def compile_rule(spec: Any) -> RuleSql | None:
    """SQL for ``spec``, or None when only Python can evaluate it."""
    compiler = _COMPILERS.get(spec.type)
    return compiler(spec) if compiler else None
