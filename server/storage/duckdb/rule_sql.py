"""Rule judges compiled to DuckDB SQL, so the store scores a whole target in one statement.

Each compiler mirrors one function of ``tools/judges/rules.py`` (the reference): same verdicts,
scores and rationale text, checked by a parity test. It returns ``None`` when a rule cannot run
in SQL (JSON Schema checks, fields other than input/output, a regex RE2 does not accept), and
the run falls back to Python for that judge. Every value from a spec is a ``$`` parameter.

Columns available to the expressions (see ``judges_sql.ITEM_COLUMNS``): input_text,
output_text, status, latency_ms, input_tokens, output_tokens, metadata, and with spans joined:
retrieved (list of {name, text}), tool_calls (list of {name, arguments, status, error}),
error_spans (list of {type, name, message}).
"""

from __future__ import annotations

from typing import Any

from server.storage.rule_shape import RuleSql
from tools.judges import specs as S
from tools.judges.rules import BLANK, EMPTY_TEXTS, SNIPPET

NL = "chr(10)"


def _cut(expr: str) -> str:
    squashed = f"regexp_replace(regexp_replace({expr}, '^\\s+|\\s+$', '', 'g'), '\\s+', ' ', 'g')"
    return f"(CASE WHEN length({squashed}) <= {SNIPPET} THEN {squashed} ELSE left({squashed}, {SNIPPET}) || '…' END)"


def _binary(ok: str, reason: str, *, known: str = "TRUE", unknown_reason: str = "''") -> RuleSql:
    return RuleSql(
        verdict=f"CASE WHEN NOT ({known}) THEN 'unknown' WHEN {ok} THEN 'pass' ELSE 'fail' END",
        score=f"CASE WHEN NOT ({known}) THEN NULL WHEN {ok} THEN 1.0 ELSE 0.0 END",
        reason=f"CASE WHEN NOT ({known}) THEN {unknown_reason} ELSE {reason} END")


def _ratio(ok: str, total: str) -> str:
    return f"(CASE WHEN ({total}) = 0 THEN 1.0 ELSE round(({ok}) / ({total}), 6) END)"


def _present(column: str) -> str:
    """``column``, NULL when it is missing in substance (``rules.present``)."""
    blank = " || ".join(f"chr({ord(c)})" for c in BLANK)
    empty = ", ".join("'" + e.replace("'", "''") + "'" for e in EMPTY_TEXTS)
    return f"(CASE WHEN trim({column}, {blank}) IN ({empty}) THEN NULL ELSE {column} END)"


def _text(field_name: str) -> str | None:
    column = {"input": "input_text", "output": "output_text"}.get(field_name)
    return _present(column) if column else None


def regex(spec: S.RegexRule) -> RuleSql | None:
    text = _text(spec.field)
    if text is None:
        return None
    opts = "'i'" if spec.ignore_case else "''"
    found = f"regexp_matches({text}, $j_pattern, {opts})"
    if spec.must == "match":
        reason = f"CASE WHEN {found} THEN '{spec.field} matches the pattern' ELSE '{spec.field} does not match the pattern' END"
        rule = _binary(found, reason, known=f"{text} IS NOT NULL", unknown_reason=f"'no {spec.field} to check'")
    else:
        snippet = _cut(f"regexp_extract({text}, $j_pattern, 0, {opts})")
        reason = (f"CASE WHEN {found} THEN '{spec.field} contains ''' || {snippet} || '''' "
                  f"ELSE '{spec.field} does not match the pattern' END")
        rule = _binary(f"NOT {found}", reason, known=f"{text} IS NOT NULL",
                       unknown_reason=f"'no {spec.field} to check'")
    rule.params = {"j_pattern": spec.pattern}
    return rule


def length(spec: S.LengthRule) -> RuleSql | None:
    text = _text(spec.field)
    if text is None:
        return None
    if spec.unit == "chars":
        n = f"length({text})"
    else:
        stripped = f"regexp_replace({text}, '^\\s+|\\s+$', '', 'g')"
        n = f"(CASE WHEN {stripped} = '' THEN 0 ELSE len(regexp_split_to_array({stripped}, '\\s+')) END)"
    over = "FALSE" if spec.max is None else "n > $j_max"
    under = "FALSE" if spec.min is None else "n < $j_min"
    head = f"'{spec.field} has ' || n || ' {spec.unit}, '"
    branches = ([f"WHEN {over} THEN {head} || 'more than max ' || $j_max"] if spec.max is not None else []) + \
               ([f"WHEN {under} THEN {head} || 'fewer than min ' || $j_min"] if spec.min is not None else [])
    reason = f"CASE {' '.join(branches)} ELSE {head} || 'within bounds' END"
    rule = _binary(f"NOT ({over}) AND NOT ({under})", reason, known="n IS NOT NULL",
                   unknown_reason=f"'no {spec.field} to check'")
    rule.pre = {"n": n}
    rule.params = {k: v for k, v in (("j_max", spec.max), ("j_min", spec.min)) if v is not None}
    return rule


def token_budget(spec: S.TokenBudgetRule) -> RuleSql:
    used = {"input": "coalesce(input_tokens, 0)", "output": "coalesce(output_tokens, 0)",
            "total": "(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))"}
    limits = {"input": spec.max_input_tokens, "output": spec.max_output_tokens, "total": spec.max_total_tokens}
    overs = {k: f"{used[k]} > $j_{k}" for k, v in limits.items() if v is not None}
    listed = ", ".join(f"CASE WHEN {cond} THEN '{k} tokens ' || {used[k]} || ' > ' || $j_{k} END"
                       for k, cond in overs.items())
    any_over = " OR ".join(overs.values())
    reason = (f"CASE WHEN {any_over} THEN concat_ws('; ', {listed}) "
              f"ELSE {used['total']} || ' tokens, within budget' END")
    rule = _binary(f"NOT ({any_over})", reason, known="input_tokens IS NOT NULL OR output_tokens IS NOT NULL",
                   unknown_reason="'no token usage recorded'")
    rule.params = {f"j_{k}": v for k, v in limits.items() if v is not None}
    return rule


def phrases(spec: S.PhrasesRule) -> RuleSql | None:
    text = _text(spec.field)
    if text is None:
        return None
    hay = f"lower({text})" if spec.ignore_case else text
    fold = (lambda p: p.lower()) if spec.ignore_case else (lambda p: p)
    quote = "lambda p: '''' || p || ''''"
    rule = RuleSql(
        pre={"hay": hay,
             "missing": "list_filter(CAST($j_required AS VARCHAR[]), lambda p: NOT contains(hay, p))",
             "banned": "list_filter(CAST($j_banned AS VARCHAR[]), lambda p: contains(hay, p))",
             "shown_missing": f"list_transform(list_filter(CAST($j_required_raw AS VARCHAR[]), lambda p, i: list_contains(missing, "
                              f"CAST($j_required AS VARCHAR[])[i])), {quote})",
             "shown_banned": f"list_transform(list_filter(CAST($j_banned_raw AS VARCHAR[]), lambda p, i: list_contains(banned, "
                             f"CAST($j_banned AS VARCHAR[])[i])), {quote})"},
        verdict="CASE WHEN hay IS NULL THEN 'unknown' WHEN len(missing) + len(banned) = 0 THEN 'pass' ELSE 'fail' END",
        score=f"CASE WHEN hay IS NULL THEN NULL ELSE {_ratio('$j_total - len(missing) - len(banned)', '$j_total')} END",
        reason=f"CASE WHEN hay IS NULL THEN 'no {spec.field} to check' WHEN len(missing) + len(banned) = 0 "
               "THEN 'all ' || $j_total || ' phrase checks hold' ELSE concat_ws('; ', "
               "CASE WHEN len(missing) > 0 THEN 'missing required ' || array_to_string(shown_missing, ', ') END, "
               "CASE WHEN len(banned) > 0 THEN 'contains banned ' || array_to_string(shown_banned, ', ') END) END",
        params={"j_required": [fold(p) for p in spec.required],
                "j_banned": [fold(p) for p in spec.banned], "j_required_raw": list(spec.required),
                "j_banned_raw": list(spec.banned), "j_total": len(spec.required) + len(spec.banned)})
    return rule


def tool_call(spec: S.ToolCallRule) -> RuleSql | None:
    if spec.argument_schemas:
        return None
    keys = sorted(spec.expected_tools)
    params: dict[str, Any] = {"j_must": list(spec.must_call), "j_must_not": list(spec.must_not_call),
                              "j_keys": keys, "j_vals": [list(spec.expected_tools[k]) for k in keys],
                              "j_metakey": spec.expected_by_metadata or ""}
    value = ("json_extract_string(metadata, '$.\"' || $j_metakey || '\"')" if spec.expected_by_metadata
             else "CAST(NULL AS VARCHAR)")
    expected = ("CASE WHEN meta_value IS NOT NULL AND list_contains(CAST($j_keys AS VARCHAR[]), meta_value) "
                "THEN CAST($j_vals AS VARCHAR[][])[list_position(CAST($j_keys AS VARCHAR[]), meta_value)] END")
    names = "list_transform(coalesce(tool_calls, []), lambda c: c.name)"
    where = "' (' || $j_metakey || '=' || meta_value || ')'"
    problems = ("list_concat("
                "list_transform(list_filter(CAST($j_must AS VARCHAR[]), lambda t: NOT list_contains(called, t)), lambda t: t || ' not called'), "
                "list_transform(list_filter(CAST($j_must_not AS VARCHAR[]), lambda t: list_contains(called, t)), lambda t: t || ' called'), "
                f"list_transform(list_filter(coalesce(expected, []), lambda t: NOT list_contains(called, t)), "
                f"lambda t: t || ' not called' || {where}), "
                f"CASE WHEN expected IS NOT NULL AND len(list_filter(called, lambda t: NOT list_contains(expected, t))) > 0 "
                f"THEN ['unexpected ' || array_to_string(list_filter(called, lambda t: NOT list_contains(expected, t)), ', ')"
                f" || {where}] ELSE [] END)")
    subject = ("$j_metakey || '=' || coalesce(meta_value, 'None')" if spec.expected_by_metadata else "'this trace'")
    return RuleSql(
        pre={"meta_value": value, "names": names,
             "called": "list_filter(names, lambda x, i: list_position(names, x) = i)",
             "expected": expected,
             "checks": "len(CAST($j_must AS VARCHAR[])) + len(CAST($j_must_not AS VARCHAR[])) + CASE WHEN expected IS NULL THEN 0 ELSE len(expected) + 1 END",
             "problems": problems},
        verdict="CASE WHEN checks = 0 THEN 'unknown' WHEN len(problems) = 0 THEN 'pass' ELSE 'fail' END",
        score=f"CASE WHEN checks = 0 THEN NULL ELSE {_ratio('checks - len(problems)', 'checks')} END",
        reason=f"CASE WHEN checks = 0 THEN 'no tool expectation applies to ' || {subject} "
               "WHEN len(problems) = 0 THEN 'all ' || checks || ' tool checks hold (called: ' || "
               "CASE WHEN len(called) = 0 THEN 'none' ELSE array_to_string(called, ', ') END || ')' "
               "ELSE array_to_string(problems, '; ') END",
        params=params, needs_spans=True)


def citation_grounding(spec: S.CitationRule) -> RuleSql:
    docs = ("coalesce(retrieved, [])" if spec.retriever is None
            else "list_filter(coalesce(retrieved, []), lambda d: d.name = $j_retriever)")
    params: dict[str, Any] = {"j_cite": spec.citation_pattern, "j_require": spec.require_citation}
    if spec.retriever is not None:
        params["j_retriever"] = spec.retriever
    no_cites = ("CASE WHEN $j_require THEN 'no citations, but require_citation is set' ELSE 'no citations' END")
    return RuleSql(
        pre={"answer": _present("output_text"),
             "cited_all": "regexp_extract_all(answer, $j_cite, 1)",
             "cited": "list_filter(cited_all, lambda x, i: list_position(cited_all, x) = i)",
             "context": f"array_to_string(list_transform({docs}, lambda d: d.text), {NL})",
             "missing": "list_filter(cited, lambda c: NOT contains(coalesce(context, ''), c))"},
        verdict="CASE WHEN answer IS NULL THEN 'unknown' WHEN len(cited) = 0 THEN "
                "(CASE WHEN $j_require THEN 'fail' ELSE 'pass' END) WHEN len(missing) = 0 THEN 'pass' ELSE 'fail' END",
        score="CASE WHEN answer IS NULL THEN NULL WHEN len(cited) = 0 THEN (CASE WHEN $j_require THEN 0.0 "
              f"ELSE 1.0 END) ELSE {_ratio('len(cited) - len(missing)', 'len(cited)')} END",
        reason=f"CASE WHEN answer IS NULL THEN 'no output to check' WHEN len(cited) = 0 THEN {no_cites} "
               "WHEN len(missing) = 0 THEN 'all ' || len(cited) || ' citations appear in the retrieved documents' "
               "ELSE 'cites ' || array_to_string(missing, ', ') || ', not in the retrieved documents (' || "
               "(len(cited) - len(missing)) || ' of ' || len(cited) || ' grounded)' END",
        params=params, needs_spans=True)


def latency(spec: S.LatencyRule) -> RuleSql:
    ok = "latency_ms <= $j_max_ms"
    reason = ("'took ' || latency_ms || ' ms, ' || CASE WHEN latency_ms <= $j_max_ms THEN 'within' ELSE 'over' END "
              "|| ' max ' || $j_max_ms || ' ms'")
    rule = _binary(ok, reason, known="latency_ms IS NOT NULL", unknown_reason="'no latency recorded'")
    rule.params = {"j_max_ms": spec.max_ms}
    return rule


def status(spec: S.StatusRule) -> RuleSql:
    """Spans are read only when ``span_types`` is given: with the default (the trace's own status)
    the items carry no ``error_spans`` column, which the audit's ``{'type': 'status'}`` judge read."""
    trace_bad = "status = 'ERROR'" if spec.trace_ok else "FALSE"
    if spec.span_types:
        errors = "coalesce(error_spans, [])"
        types = "CAST($j_types AS VARCHAR[])"
        first = f"list_filter({errors}, lambda e: list_contains({types}, e.type))[1]"
        failed_types = f"list_filter({types}, lambda x: len(list_filter({errors}, lambda e: e.type = x)) > 0)"
        detail = _cut(f"{first}.name || ': ' || coalesce({first}.message, '')")
    else:
        failed_types, detail = "CAST([] AS VARCHAR[])", "''"
    bad = "trace_bad OR len(failed_types) > 0"
    return RuleSql(
        pre={"trace_bad": trace_bad, "failed_types": failed_types},
        verdict=f"CASE WHEN status IS NULL THEN 'unknown' WHEN {bad} THEN 'fail' ELSE 'pass' END",
        score=f"CASE WHEN status IS NULL THEN NULL WHEN {bad} THEN 0.0 ELSE 1.0 END",
        reason=f"CASE WHEN status IS NULL THEN 'no trace status recorded' WHEN {bad} THEN concat_ws('; ', "
               "CASE WHEN trace_bad THEN 'trace status ERROR' END, CASE WHEN len(failed_types) > 0 THEN 'a ' || "
               f"array_to_string(failed_types, '/') || ' span has status ERROR (' || {detail} || ')' END) "
               "ELSE 'no error status' END",
        params={"j_types": list(spec.span_types)} if spec.span_types else {}, needs_spans=bool(spec.span_types))


_COMPILERS = {"regex": regex, "length": length, "token_budget": token_budget, "phrases": phrases,
              "tool_call": tool_call, "citation_grounding": citation_grounding, "latency": latency,
              "status": status}


def compile_rule(spec: Any) -> RuleSql | None:
    """SQL for ``spec``, or None when only Python can evaluate it."""
    compiler = _COMPILERS.get(spec.type)
    return compiler(spec) if compiler else None
