"""The filter language: text -> AST -> explain(), and every error's exact text.

Errors are part of the product (STYLE.md §3.4), so they are pinned verbatim, caret lines included.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from tools.filters import fields
from tools.errors import FilterError, InvalidInputError
from tools.filters.nodes import And, Comparison, Not, Or, OrderKey, RelativeTime, SpanExists, walk
from tools.filters.parser import explain, parse, parse_order_by

# 2026-11-16 10:00 UTC, the "one week ago" of the seed's examples.
ONE_WEEK_AGO = 1794823200000
YESTERDAY = 1795341600000


def error_text(filter_text: str) -> str:
    with pytest.raises(FilterError) as info:
        parse(filter_text)
    return str(info.value)


# --- seed 003: MLflow users' filters, verbatim -------------------------------------------------

SEED_FILTERS = [
    (f""" attributes.status = 'OK' AND attributes.timestamp_ms > {ONE_WEEK_AGO} AND tags.environment = 'production' """,
     "status is 'OK' and timestamp after 2026-11-16 10:00 UTC and tag 'environment' is 'production'"),
    (f"""
        attributes.status = 'OK'
        AND attributes.timestamp_ms > {ONE_WEEK_AGO}
        AND tags.environment = 'production'
    """,
     "status is 'OK' and timestamp after 2026-11-16 10:00 UTC and tag 'environment' is 'production'"),
    ("tags.eval_candidate IS NOT NULL", "tag 'eval_candidate' is set"),
    ("tags.`mlflow.traceId` = 'tr-abc123'", "trace_id is 'tr-abc123'"),
    (f"attributes.timestamp_ms >= {YESTERDAY}", "timestamp at or after 2026-11-22 10:00 UTC"),
    ("attributes.status = 'ERROR'", "status is 'ERROR'"),
]


@pytest.mark.parametrize(("text", "english"), SEED_FILTERS)
def test_every_filter_from_the_mlflow_seed_parses_and_explains(text: str, english: str) -> None:
    assert explain(parse(text)) == english


def test_the_design_example_reads_as_plain_english() -> None:
    text = (f"attributes.status = 'OK' AND tags.environment = 'production' "
            f"AND attributes.timestamp_ms > {ONE_WEEK_AGO}")
    assert explain(parse(text)) == (
        "status is 'OK' and tag 'environment' is 'production' and timestamp after 2026-11-16 10:00 UTC")


# --- explain() for each field family and operator ----------------------------------------------

EXPLAINED = [
    ("", "all traces"),
    ("   \n ", "all traces"),
    ("span.type = 'TOOL' AND span.status = 'ERROR'", "one span has type TOOL and status ERROR"),
    ("span.type = 'tool' and span.duration_ms > 1000", "one span has type TOOL and duration_ms is greater than 1000"),
    ("NOT (span.type = 'TOOL' AND span.status = 'ERROR')", "no span has type TOOL and status ERROR"),
    ("NOT span.status = 'ERROR'", "no span has status ERROR"),
    ("span.type IN ('TOOL', 'retriever')", "one span has type is one of TOOL, RETRIEVER"),
    ("span.attributes.`gen_ai.system` = 'openai'", "one span has attribute 'gen_ai.system' 'openai'"),
    ("span.tool = 'web_search' OR span.name LIKE 'retrieve%'",
     "one span has tool_name 'web_search' or name matches 'retrieve%'"),
    ("attributes.timestamp_ms > now() - 7d", "timestamp after 7 days ago"),
    ("timestamp_ms <= now() - 1h", "timestamp at or before 1 hour ago"),
    ("attributes.timestamp_ms < now()", "timestamp before now"),
    ("attributes.timestamp_ms < now() + 90m", "timestamp before 90 minutes from now"),
    ("attributes.timestamp_ms >= '2026-11-16'", "timestamp at or after 2026-11-16 00:00 UTC"),
    ("attributes.timestamp_ms >= '2026-11-16T10:00:30.250+01:00'",
     "timestamp at or after 2026-11-16 09:00:30.250 UTC"),
    ("attributes.execution_time_ms > 2000 AND attributes.execution_time_ms <= 5000.5",
     "execution_time_ms is greater than 2000 and execution_time_ms is at most 5000.5"),
    ("attributes.input_tokens IN (1, 2, 3)", "input_tokens is one of 1, 2, 3"),
    ("total_tokens != -1", "total_tokens is not -1"),
    ("attributes.state = 'in_progress'", "status is 'IN_PROGRESS'"),
    ("attributes.request_id = 'tr-1'", "trace_id is 'tr-1'"),
    ("tags.mlflow.traceId = 'tr-1'", "trace_id is 'tr-1'"),
    ("attributes.name NOT LIKE 'test%' AND attributes.model ILIKE 'GPT%'",
     "name does not match 'test%' and model matches 'GPT%' ignoring case"),
    ("attributes.response NOT ILIKE '%sorry%'", "response does not match '%sorry%' ignoring case"),
    ("attributes.request CONTAINS 'refund'", "request contains 'refund'"),
    ("attributes.environment NOT IN ('dev', 'staging')", "environment is not one of 'dev', 'staging'"),
    ("attributes.user_id IS NULL", "user_id is not set"),
    ("text = 'refund'", "request or response contains 'refund'"),
    ("text ILIKE '%order #%'", "request or response matches '%order #%' ignoring case"),
    ("tool_names = 'web_search'", "tool_names contains 'web_search'"),
    ("tool_names != 'web_search'", "tool_names does not contain 'web_search'"),
    ("tool_names IN ('a', 'b')", "tool_names contains any of 'a', 'b'"),
    ("tool_names NOT IN ('a')", "tool_names contains none of 'a'"),
    ("tool_names IS NULL", "tool_names is empty"),
    ("tags.`mlflow.user` = 'ana'", "tag 'mlflow.user' is 'ana'"),
    ('tags."my key" != \'v\'', "tag 'my key' is not 'v'"),
    ("tag.priority = 1", "tag 'priority' is '1'"),
    ("metadata.customer_tier = 'gold'", "metadata 'customer_tier' is 'gold'"),
    ("request_metadata.cost > 0.1", "metadata 'cost' is greater than 0.1"),
    ("metadata.flagged = TRUE", "metadata 'flagged' is 'true'"),
    ("labels.correctness = 'fail'", "label 'correctness' is 'fail'"),
    ("labels.rating >= 4", "label 'rating' is at least 4"),
    ("labels.correctness IS NULL", "label 'correctness' is not set"),
    ("scores.safety = 'FAIL'", "judge 'safety' verdict is 'fail'"),
    ("scores.safety IN ('fail', 'unknown')", "judge 'safety' verdict is one of 'fail', 'unknown'"),
    ("scores.helpfulness < 0.5", "judge 'helpfulness' score is less than 0.5"),
    ("scores.safety IS NOT NULL", "judge 'safety' score is set"),
    ("NOT attributes.status = 'OK'", "not (status is 'OK')"),
    ("NOT NOT attributes.status = 'OK'", "not (not (status is 'OK'))"),
]


@pytest.mark.parametrize(("text", "english"), EXPLAINED)
def test_explain_says_what_the_filter_means(text: str, english: str) -> None:
    assert explain(parse(text)) == english


# --- precedence, grouping and quoting ---------------------------------------------------------

def test_and_binds_tighter_than_or() -> None:
    expr = parse("status = 'OK' OR status = 'ERROR' AND tags.x = 'a'")
    assert isinstance(expr, Or) and isinstance(expr.items[1], And)
    assert explain(expr) == "status is 'OK' or (status is 'ERROR' and tag 'x' is 'a')"


def test_not_binds_tighter_than_and() -> None:
    expr = parse("NOT status = 'OK' AND tags.x = 'a'")
    assert isinstance(expr, And) and isinstance(expr.items[0], Not)
    assert explain(expr) == "not (status is 'OK') and tag 'x' is 'a'"


def test_parentheses_override_precedence() -> None:
    expr = parse("(status = 'OK' OR status = 'ERROR') AND tags.x = 'a'")
    assert isinstance(expr, And) and isinstance(expr.items[0], Or)
    assert explain(expr) == "(status is 'OK' or status is 'ERROR') and tag 'x' is 'a'"


def test_nested_and_or_flatten() -> None:
    expr = parse("tags.a = '1' AND (tags.b = '2' AND (tags.c = '3'))")
    assert isinstance(expr, And) and len(expr.items) == 3


def test_keywords_are_case_insensitive() -> None:
    assert parse("tags.a IS not null and NOT tags.b in ('x') Or tags.c like 'y%'") == \
        parse("tags.a IS NOT NULL AND NOT tags.b IN ('x') OR tags.c LIKE 'y%'")


def test_span_conditions_in_one_and_share_a_span_even_when_mixed_with_trace_conditions() -> None:
    expr = parse("span.type = 'TOOL' AND status = 'OK' AND span.status = 'ERROR'")
    assert isinstance(expr, And)
    assert isinstance(expr.items[0], SpanExists) and isinstance(expr.items[1], Comparison)
    assert explain(expr) == "(one span has type TOOL and status ERROR) and status is 'OK'"


def test_a_not_splits_span_groups() -> None:
    expr = parse("span.type = 'TOOL' AND NOT span.status = 'ERROR'")
    assert explain(expr) == "one span has type TOOL and no span has status ERROR"


def test_every_span_comparison_sits_in_exactly_one_span_exists() -> None:
    expr = parse("(span.name = 'a' OR tags.x = 'b') AND (span.type = 'LLM' OR span.model = 'm') "
                 "AND NOT span.status = 'ERROR'")
    def count(e, inside: bool) -> int:
        if isinstance(e, Comparison):
            assert inside == e.field.is_span
            return int(e.field.is_span)
        if isinstance(e, SpanExists):
            assert not inside
            return count(e.item, True)
        items = e.items if isinstance(e, (And, Or)) else (e.item,)
        return sum(count(i, inside) for i in items)
    assert count(expr, False) == 4


def test_quotes_escape_by_doubling() -> None:
    c = parse("tags.note = 'it''s' AND tags.q = \"say \"\"hi\"\"\"")
    assert [i.value for i in c.items] == ["it's", 'say "hi"']


def test_dotted_keys_read_the_same_with_or_without_backticks() -> None:
    assert parse("tags.`mlflow.user` = 'a'") == parse("tags.mlflow.user = 'a'")
    key = parse("tags.`weird key.with dots` = 'a'").field.key
    assert key == "weird key.with dots"


def test_attribute_prefixes_and_bare_names_are_the_same_field() -> None:
    spellings = ["attributes.status", "attribute.status", "attr.status", "trace.status", "status",
                 "ATTRIBUTES.Status", "attributes.state"]
    assert {parse(f"{s} = 'OK'").field.name for s in spellings} == {"attributes.status"}


def test_values_are_coerced_once_at_parse_time() -> None:
    assert parse("attributes.execution_time_ms > '2000'").value == 2000
    assert parse("attributes.timestamp_ms > '2026-11-16T10:00:00Z'").value == ONE_WEEK_AGO
    assert parse("attributes.timestamp_ms > now() - 1.5h").value == RelativeTime(1.5, "h", -1)
    assert RelativeTime(1.5, "h", -1).resolve(10_000_000) == 10_000_000 - 5_400_000
    assert parse("span.status = 'error'").item.value == "ERROR"


def test_the_ast_is_immutable() -> None:
    expr = parse("tags.a = 'b'")
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.op = "!="  # type: ignore[misc]
    assert list(walk(expr)) == [expr]


# --- errors: exact text ----------------------------------------------------------------------

ERRORS = [
    ("attributes.stauts = 'OK'",
     "Unknown field 'attributes.stauts' at position 0. Did you mean 'attributes.status'?\n"
     "  attributes.stauts = 'OK'\n"
     "  ^^^^^^^^^^^^^^^^^\n"
     "Fields: attributes.input_tokens, attributes.name, attributes.request, attributes.response, "
     "attributes.source, attributes.status, attributes.timestamp_ms, attributes.total_tokens, "
     "attributes.trace_id, span.status (and 31 more)."),
    ("tgas.environment = 'production'",
     "Unknown field 'tgas.environment' at position 0. Did you mean 'tags.environment'?\n"
     "  tgas.environment = 'production'\n"
     "  ^^^^^^^^^^^^^^^^\n"
     "Fields: attributes.end_time_ms, attributes.environment, attributes.error_count, "
     "attributes.execution_time_ms, attributes.name, attributes.response, expectation.<name>, "
     "labels.<criterion>, prompt, span.content (and 31 more)."),
    ("tags.model > 'x'",
     "Operator '>' does not apply to text field 'tags.model'. Use =, !=, IN, LIKE or ILIKE.\n"
     "  tags.model > 'x'\n"
     "             ^"),
    ("attributes.status > 'O'",
     "Operator '>' does not apply to enum field 'attributes.status'. Use =, !=, IN or NOT IN.\n"
     "  attributes.status > 'O'\n"
     "                    ^"),
    ("attributes.execution_time_ms NOT LIKE '1%'",
     "Operator 'NOT LIKE' does not apply to number field 'attributes.execution_time_ms'. "
     "Use =, !=, <, <=, >, >= or IN.\n"
     "  attributes.execution_time_ms NOT LIKE '1%'\n"
     "                               ^^^^^^^^"),
    ("attributes.status = 'SUCCESS'",
     "'attributes.status' is one of OK, ERROR, IN_PROGRESS; got 'SUCCESS'.\n"
     "  attributes.status = 'SUCCESS'\n"
     "                      ^^^^^^^^^"),
    ("attributes.name = 'abc",
     "Unclosed quote at position 18.\n"
     "  attributes.name = 'abc\n"
     "                    ^\n"
     "Close the string with '; write '' for a ' inside it."),
    ("tags.`mlflow.user = 'x'",
     "Unclosed backtick at position 5.\n"
     "  tags.`mlflow.user = 'x'\n"
     "       ^\n"
     "Close the quoted key with `, e.g. tags.`mlflow.user`."),
    ("(attributes.status = 'OK' OR tags.a = 'b'",
     "Unclosed '(' at position 0.\n"
     "  (attributes.status = 'OK' OR tags.a = 'b'\n"
     "  ^\n"
     "Add ')' to close it."),
    ("attributes.status = 'OK')",
     "Unmatched ')' at position 24.\n"
     "  attributes.status = 'OK')\n"
     "                          ^\n"
     "Remove it, or add the '(' it closes."),
    ("attributes.status = 'OK' AND",
     "Nothing follows 'AND' at position 25.\n"
     "  attributes.status = 'OK' AND\n"
     "                           ^^^\n"
     "Add a condition after it, or remove it."),
    ("attributes.status = 'OK' AND OR tags.a = 'b'",
     "Expected a condition after 'AND' at position 29; got 'OR'.\n"
     "  attributes.status = 'OK' AND OR tags.a = 'b'\n"
     "                               ^^\n"
     "Conditions look like attributes.status = 'OK'."),
    ("attributes.status =",
     "Missing value after '=' at position 18.\n"
     "  attributes.status =\n"
     "                    ^\n"
     "Example: attributes.status = 'ERROR'."),
    ("tags.acc = = 'LR'",
     "Expected a value after '=' at position 11; got '='.\n"
     "  tags.acc = = 'LR'\n"
     "             ^\n"
     "Example: tags.environment = 'production'."),
    ("tags.environment = production",
     "Unquoted text 'production' at position 19.\n"
     "  tags.environment = production\n"
     "                     ^^^^^^^^^^\n"
     "Quote it: tags.environment = 'production'."),
    ("attributes.execution_time_ms > 'slow'",
     "'attributes.execution_time_ms' is a number; got 'slow'.\n"
     "  attributes.execution_time_ms > 'slow'\n"
     "                                 ^^^^^^\n"
     "Example: attributes.execution_time_ms > 2000."),
    ("attributes.timestamp_ms > 'last week'",
     "'attributes.timestamp_ms' takes epoch milliseconds, a quoted ISO date like "
     "'2026-11-16T10:00:00Z', or now() - 7d; got 'last week'.\n"
     "  attributes.timestamp_ms > 'last week'\n"
     "                            ^^^^^^^^^^^\n"
     "Example: attributes.timestamp_ms > now() - 7d."),
    ("attributes.timestamp_ms > now() - 7y",
     "Unknown time unit 'y' in '7y' at position 34.\n"
     "  attributes.timestamp_ms > now() - 7y\n"
     "                                    ^^\n"
     "Use one of ms, s, m, h, d, w, e.g. now() - 7d."),
    ("attributes.timestamp_ms > now() - 7",
     "Missing time unit after '7' at position 34.\n"
     "  attributes.timestamp_ms > now() - 7\n"
     "                                    ^\n"
     "Add one of ms, s, m, h, d, w, e.g. now() - 7d."),
    ("attributes.timestamp_ms > now - 7d",
     "Expected now() at position 26.\n"
     "  attributes.timestamp_ms > now - 7d\n"
     "                            ^^^\n"
     "Relative times look like now() - 7d."),
    ("attributes.timestamp_ms > 7d",
     "'7d' at position 26 is a duration, not a value.\n"
     "  attributes.timestamp_ms > 7d\n"
     "                            ^^\n"
     "For a relative time write now() - 7d."),
    ("attribute.status IS 'RUNNING'",
     "Expected NULL or NOT NULL after IS at position 20; got 'RUNNING'.\n"
     "  attribute.status IS 'RUNNING'\n"
     "                      ^^^^^^^^^\n"
     "Use = to compare with a value."),
    ("attributes.status 'OK'",
     "Expected an operator after 'attributes.status' at position 18; got 'OK'.\n"
     "  attributes.status 'OK'\n"
     "                    ^^^^\n"
     "Use =, !=, IN or NOT IN."),
    ("tags.eval-candidate IS NULL",
     "Expected an operator after 'tags.eval' at position 9; got '-'.\n"
     "  tags.eval-candidate IS NULL\n"
     "           ^\n"
     "Keys with '-' or other special characters go in backticks, e.g. tags.`eval-candidate`."),
    ("tags = 'x'",
     "Field 'tags' at position 0 needs a key: tags.<key>, e.g. tags.environment.\n"
     "  tags = 'x'\n"
     "  ^^^^"),
    ("attributes.status IN 'OK'",
     "Expected '(' after IN at position 21; got 'OK'.\n"
     "  attributes.status IN 'OK'\n"
     "                       ^^^^\n"
     "Write lists as IN ('a', 'b')."),
    ("attributes.status IN ()",
     "Empty list after IN at position 21.\n"
     "  attributes.status IN ()\n"
     "                       ^^\n"
     "Give at least one value, e.g. IN ('a', 'b')."),
    ("metadata.x IN ('a', 2)",
     "The IN list for 'metadata.x' mixes text and numbers.\n"
     "  metadata.x IN ('a', 2)\n"
     "                      ^\n"
     "Use only text or only numbers."),
    ("metadata.cost > 'high'",
     "Operator '>' on 'metadata.cost' needs a number; got 'high'.\n"
     "  metadata.cost > 'high'\n"
     "                  ^^^^^^\n"
     "Example: metadata.customer_tier = 'gold'."),
    ("scores.safety = 'good'",
     "'scores.safety' is compared with 'pass', 'fail', 'unknown' or a number; got 'good'.\n"
     "  scores.safety = 'good'\n"
     "                  ^^^^^^\n"
     "Example: scores.safety = 'fail'."),
    ("attributes.name = TRUE",
     "'attributes.name' is text; got TRUE.\n"
     "  attributes.name = TRUE\n"
     "                    ^^^^\n"
     "Example: attributes.name = 'chat'."),
    ("tags.a = 'x' tags.b = 'y'",
     "Expected AND, OR or the end of the filter at position 13; got 'tags.b'.\n"
     "  tags.a = 'x' tags.b = 'y'\n"
     "               ^^^^^^"),
    ("tags.a = 'x' && tags.b = 'y'",
     "Unexpected character '&' at position 13.\n"
     "  tags.a = 'x' && tags.b = 'y'\n"
     "               ^\n"
     "Use AND to combine conditions."),
    ("tags.a NOT = 'x'",
     "Expected IN, LIKE or ILIKE after NOT at position 11; got '='.\n"
     "  tags.a NOT = 'x'\n"
     "             ^"),
    ("text IN ('a')",
     "Operator 'IN' does not apply to search field 'text'. Use CONTAINS, =, LIKE or ILIKE.\n"
     "  text IN ('a')\n"
     "       ^^"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_a_bad_filter_gets_an_exact_error_with_a_caret(text: str, message: str) -> None:
    assert error_text(text) == message


def test_filter_errors_are_invalid_input_with_a_position() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse("tags.model > 'x'")
    assert info.value.position == 11 and info.value.length == 1


def test_a_multi_line_filter_keeps_the_caret_aligned() -> None:
    assert error_text("attributes.status = 'OK'\n  AND tags.x > 'y'") == (
        "Operator '>' does not apply to text field 'tags.x'. Use =, !=, IN, LIKE or ILIKE.\n"
        "  attributes.status = 'OK'   AND tags.x > 'y'\n"
        "                                        ^")


def test_a_long_filter_shows_a_window_around_the_error() -> None:
    text = " AND ".join(f"tags.k{i} = 'v{i}'" for i in range(12)) + " AND attributes.stauts = 'OK'"
    with pytest.raises(FilterError) as info:
        parse(text)
    assert info.value.position == text.index("attributes.stauts") and info.value.text == text
    lines = str(info.value).splitlines()
    assert lines[0] == f"Unknown field 'attributes.stauts' at position {text.index('attributes.stauts')}. " \
                       "Did you mean 'attributes.status'?"
    assert lines[1].startswith("  …") and len(lines[1]) < 110
    assert lines[1][lines[2].index("^"):].startswith("attributes.stauts")


# --- order_by --------------------------------------------------------------------------------

def test_order_by_defaults_to_newest_first() -> None:
    assert [str(k) for k in parse_order_by([])] == ["attributes.timestamp_ms DESC"]
    assert [str(k) for k in parse_order_by(None)] == ["attributes.timestamp_ms DESC"]


def test_order_by_reads_mlflow_style_keys() -> None:
    keys = parse_order_by(["attributes.timestamp_ms DESC", "execution_time_ms", "attributes.name asc"])
    assert keys == [OrderKey(fields.BY_NAME["attributes.timestamp_ms"], True),
                    OrderKey(fields.BY_NAME["attributes.execution_time_ms"], False),
                    OrderKey(fields.BY_NAME["attributes.name"], False)]


SORTABLE = ("Sortable fields: attributes.error_count, attributes.execution_time_ms, attributes.input_tokens, "
            "attributes.name, attributes.output_tokens, attributes.span_count, attributes.status, "
            "attributes.timestamp_ms, attributes.total_tokens.")

ORDER_ERRORS = [
    (["attributes.timestmp_ms DESC"],
     "Unknown sort field 'attributes.timestmp_ms' at position 0. Did you mean 'attributes.timestamp_ms'?\n"
     "  attributes.timestmp_ms DESC\n"
     "  ^^^^^^^^^^^^^^^^^^^^^^\n" + SORTABLE),
    (["attributes.request"],
     "Cannot sort by 'attributes.request'.\n"
     "  attributes.request\n"
     "  ^^^^^^^^^^^^^^^^^^\n" + SORTABLE),
    (["attributes.timestamp_ms DOWN"],
     "Expected ASC or DESC after 'attributes.timestamp_ms' at position 24; got 'DOWN'.\n"
     "  attributes.timestamp_ms DOWN\n"
     "                          ^^^^"),
    (["timestamp_ms", "attributes.timestamp_ms DESC"],
     "'attributes.timestamp_ms' appears twice in order_by.\n"
     "  attributes.timestamp_ms DESC\n"
     "  ^^^^^^^^^^^^^^^^^^^^^^^\n"
     "Give each field once."),
]


@pytest.mark.parametrize(("items", "message"), ORDER_ERRORS, ids=[e[0][-1] for e in ORDER_ERRORS])
def test_a_bad_order_by_gets_an_exact_error(items: list[str], message: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_order_by(items)
    assert str(info.value) == message


# --- the registry and the grammar text stay in sync with the parser ---------------------------

@pytest.mark.parametrize("spec", fields.FIELDS, ids=lambda f: f.name)
def test_every_field_has_a_description_and_a_working_example(spec: fields.FieldSpec) -> None:
    assert spec.description.endswith(".") and spec.example
    expr = parse(spec.example)
    comparison = next(n for n in walk(expr) if isinstance(n, Comparison))
    assert comparison.field.spec is spec


def test_describe_grammar_is_short_and_names_every_field() -> None:
    text = fields.describe_grammar()
    assert len(text) <= 1200
    for spec in fields.FIELDS:
        assert spec.name.rsplit(".", 1)[-1] in text or spec.name in text, spec.name


def test_describe_grammar_examples_all_parse() -> None:
    examples = fields.describe_grammar().split("Examples:\n", 1)[1].splitlines()
    assert len(examples) >= 5
    for example in examples:
        parse(example)


def test_every_operator_has_an_english_template_and_is_used_by_some_kind() -> None:
    used = {op for ops, _ in fields.KIND_OPERATORS.values() for op in ops}
    assert used == set(fields.OPERATORS)
    for op in fields.OPERATORS.values():
        assert "{s}" in op.english and ("{v}" in op.english) == (op.operand != "none")


def test_field_names_never_contain_sql() -> None:
    for spec in fields.FIELDS:
        assert spec.column is None or re.fullmatch(r"[a-z_]+", spec.column)


def test_a_span_type_no_built_in_name_covers_is_a_custom_type_and_the_explanation_says_so() -> None:
    """MLflow accepts any span type string (custom types are stored as given): so does the filter,
    and since a typo ('TOOLS') then matches nothing, filter_explained names what happened."""
    expr = parse("span.type = 'TOOLS'")
    assert isinstance(expr, SpanExists) and isinstance(expr.item, Comparison) and expr.item.value == "TOOLS"
    assert "TOOLS is no built-in type: it matches spans whose source declared that custom type" in explain(expr)
    assert "no built-in type" not in explain(parse("span.type = 'chat_model'"))
