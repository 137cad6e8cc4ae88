"""Filter AST -> DuckDB SQL, run against a real store file with hand-written rows.

Each test asserts the exact set of matching trace ids, so a wrong join, a missing NULL case or
lost exists-semantics shows up as a concrete id that should (not) be there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import duckdb
import pytest

from server.storage.duckdb.filter_sql import (LIST_TEMPLATES, SQL_TEMPLATES, compile_filter, compile_order_by,
                                       keyset_predicate, order_expression, sort_values_select)
from server.storage.duckdb.schema import MIGRATIONS
from tools.filters import fields
from tools.filters.parser import parse, parse_order_by

HOUR, DAY = 3_600_000, 86_400_000
NOW = 1795651200000          # 2026-11-26 00:00 UTC, the fixed clock for relative times

# trace_id, age, execution_time_ms, status, name, request, response, environment, model,
# input_tokens, output_tokens, metadata, tool_names
TRACES = [
    ("t01", 1 * HOUR, 1200, "OK", "chat", '{"q": "Where is my refund?"}', "Your REFUND is on its way",
     "production", "gpt-4o", 100, 50,
     {"customer_tier": "gold", "cost": 0.02, "mlflow.user": "ana", "nested": {"level": 3}}, ["search"]),
    ("t02", 2 * DAY, 5000, "ERROR", "chat", "cancel my order", None, "production", "gpt-4o-mini",
     300, None, {"customer_tier": "silver", "cost": 0.5, "flagged": True}, ["web_search"]),
    ("t03", 3 * DAY, 800, "OK", "rag", "what is 2+2", "4", "staging", "gpt-4o", 10, 5,
     {"customer_tier": "gold", "nested": {"level": 7}}, ["calc"]),
    ("t04", 8 * DAY, None, "IN_PROGRESS", None, None, None, "production", None, None, None, {}, None),
    ("t05", 10 * DAY, 2500, "OK", "chat", "hello", "hi there", "dev", "claude", 20, 20, {}, []),
    # t06..t10 share a timestamp and some durations, for pagination ties
    ("t06", 5 * DAY, 700, "OK", "batch", "a", "b", "production", "gpt-4o", 1, 1, {}, None),
    ("t07", 5 * DAY, 700, "OK", "batch", "a", "b", "production", "gpt-4o", 1, 1, {}, None),
    ("t08", 5 * DAY, None, "OK", None, "a", "b", "production", "gpt-4o", 1, 1, {}, None),
    ("t09", 5 * DAY, 700, "ERROR", "batch", "a", "b", "production", "gpt-4o", 1, 1, {}, None),
    ("t10", 5 * DAY, None, "OK", "batch", "a", "b", "production", "gpt-4o", 1, 1, {}, None),
]
ALL = {t[0] for t in TRACES}

# trace_id, span_id, name, type, duration_ms, status, status_message, model, tool_name, attributes
SPANS = [
    ("t01", "s1", "llm", "LLM", 900, "OK", None, "gpt-4o", None, {"gen_ai.system": "openai"}),
    ("t02", "s1", "web_search", "TOOL", 4000, "ERROR", "timeout after 30s", None, "web_search", {}),
    ("t02", "s2", "llm", "LLM", 600, "OK", None, "gpt-4o-mini", None, {"gen_ai.system": "openai"}),
    # t03 has a TOOL that is OK and an LLM that failed: no single TOOL+ERROR span
    ("t03", "s1", "calc", "TOOL", 5, "OK", None, None, "calc", {}),
    ("t03", "s2", "llm", "LLM", 700, "ERROR", "rate limited", "gpt-4o", None,
     {"gen_ai.system": "azure", "retrieval": {"k": 5}}),
    ("t05", "s1", "retrieve_docs", "RETRIEVER", 1500, "OK", None, None, None, {"retrieval": {"k": 3}}),
]

TAGS = [("t01", "environment", "production"), ("t01", "mlflow.user", "ana"),
        ("t02", "environment", "production"), ("t02", "eval_candidate", "error_case"),
        ("t02", "x", "a"), ("t03", "environment", "staging"), ("t03", "eval_candidate", "slow_response"),
        ("t05", "my key", "v"), ("t06", "x", "b"),
        # JSON needs escapes for these; a key ending in another key must not match it
        ("t07", 'we"ird\\key', 'q"u\\o/t\u00e9\n'), ("t08", 'my"x', "a"), ("t08", "y", 'x":"a')]

# trace_id, criterion, value, numeric_value, created_at_ms, label_id
LABELS = [("t01", "correctness", "fail", None, 1, "L1"), ("t01", "correctness", "pass", None, 2, "L2"),
          ("t02", "correctness", "fail", None, 1, "L3"), ("t03", "rating", "4", 4.0, 1, "L4"),
          ("t05", "rating", "2", None, 1, "L5")]

# trace_id, judge, verdict, score, created_at_ms, run_id
SCORES = [("t01", "safety", "pass", 0.9, 1, "r1"), ("t01", "safety", "fail", 0.2, 2, "r2"),
          ("t02", "safety", "pass", 0.8, 1, "r1"), ("t03", "helpfulness", "unknown", None, 1, "r1"),
          ("t05", "helpfulness", "pass", 0.7, None, "r1")]


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """One real store file per module (the tests only read), closed at the end."""
    connection = duckdb.connect(str(tmp_path_factory.mktemp("store") / "traces.duckdb"))
    # The rows go in at schema 5; migration 6 then derives traces.tags and spans.trace_timestamp_ms
    # from them, as it does when an older store is opened.
    for sql in MIGRATIONS[:5]:
        connection.execute(sql)
    for (tid, age, exe, status, name, req, resp, env, model, itok, otok, meta, tools) in TRACES:
        connection.execute(
            "INSERT INTO traces (trace_id, timestamp_ms, execution_time_ms, status, name, request, response, "
            "environment, model, input_tokens, output_tokens, metadata, source, span_count, error_count, "
            "tool_names) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'test', $13, $14, $15)",
            [tid, NOW - age, exe, status, name, req, resp, env, model, itok, otok, json.dumps(meta),
             sum(s[0] == tid for s in SPANS), sum(s[0] == tid and s[5] == "ERROR" for s in SPANS), tools])
    for tid, sid, name, stype, dur, status, msg, model, tool, attrs in SPANS:
        connection.execute(
            "INSERT INTO spans (trace_id, span_id, name, span_type, start_time_ns, end_time_ns, status, "
            "status_message, model, tool_name, attributes) VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, $10)",
            [tid, sid, name, stype, dur * 1_000_000, status, msg, model, tool, json.dumps(attrs)])
    for tid, key, value in TAGS:
        connection.execute("INSERT INTO tags VALUES ($1, $2, $3, 0, 'test')", [tid, key, value])
    for tid, crit, value, num, at, lid in LABELS:
        connection.execute("INSERT INTO labels (label_id, trace_id, criterion, value, numeric_value, "
                           "created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)", [lid, tid, crit, value, num, at])
    for tid, judge, verdict, score, at, run in SCORES:
        connection.execute("INSERT INTO scores (run_id, judge, trace_id, verdict, score, created_at_ms) "
                           "VALUES ($1, $2, $3, $4, $5, $6)", [run, judge, tid, verdict, score, at])
    for sql in MIGRATIONS[5:]:
        connection.execute(sql)
    yield connection
    connection.close()


def matching(con: duckdb.DuckDBPyConnection, text: str) -> set[str]:
    where, params = compile_filter(parse(text), now_ms=NOW)
    return {r[0] for r in con.execute(f"SELECT t.trace_id FROM traces AS t WHERE {where}", params).fetchall()}


CASES = [
    # match-all and trace attributes
    ("", ALL),
    ("attributes.status = 'ERROR'", {"t02", "t09"}),
    ("status != 'OK'", {"t02", "t04", "t09"}),
    ("attributes.status IN ('error', 'IN_PROGRESS')", {"t02", "t04", "t09"}),
    ("attributes.status NOT IN ('OK')", {"t02", "t04", "t09"}),
    ("attributes.execution_time_ms > 2000", {"t02", "t05"}),
    ("attributes.execution_time_ms <= 800", {"t03", "t06", "t07", "t09"}),
    ("attributes.execution_time_ms IS NULL", {"t04", "t08", "t10"}),
    ("attributes.total_tokens >= 150", {"t01", "t02"}),
    ("attributes.input_tokens IN (10, 20)", {"t03", "t05"}),
    ("attributes.name LIKE 'c%'", {"t01", "t02", "t05"}),
    ("attributes.name NOT LIKE 'c%'", {"t03", "t06", "t07", "t09", "t10"}),
    ("attributes.model ILIKE 'GPT-4O%'", {"t01", "t02", "t03", "t06", "t07", "t08", "t09", "t10"}),
    ("attributes.model NOT ILIKE 'GPT%'", {"t05"}),
    ("attributes.request CONTAINS 'REFUND'", {"t01"}),
    ("attributes.span_count = 2 AND attributes.error_count > 0", {"t02", "t03"}),
    ("attributes.request_id = 't03'", {"t03"}),
    ("tags.`mlflow.traceId` = 't03'", {"t03"}),
    # timestamps: epoch ms, ISO strings, relative time against the fixed clock
    (f"attributes.timestamp_ms > {NOW - 4 * DAY}", {"t01", "t02", "t03"}),
    ("attributes.timestamp_ms >= '2026-11-23T00:00:00Z'", {"t01", "t02", "t03"}),
    ("attributes.timestamp_ms > now() - 7d", {"t01", "t02", "t03", "t06", "t07", "t08", "t09", "t10"}),
    ("attributes.timestamp_ms > now() - 36h", {"t01"}),
    ("attributes.timestamp_ms < now() - 1w", {"t04", "t05"}),
    # tool_names: = and IN mean contains; NULL counts as empty
    ("tool_names = 'calc'", {"t03"}),
    ("tool_names IN ('calc', 'search')", {"t01", "t03"}),
    ("tool_names NOT IN ('calc', 'search')", ALL - {"t01", "t03"}),
    ("tool_names != 'calc'", ALL - {"t03"}),
    ("tool_names IS NULL", {"t04", "t05", "t06", "t07", "t08", "t09", "t10"}),
    ("tool_names IS NOT NULL", {"t01", "t02", "t03"}),
    # text: request OR response, case-insensitive
    ("text = 'refund'", {"t01"}),
    ("text CONTAINS 'HI THERE'", {"t05"}),
    ("text LIKE '%order%'", {"t02"}),
    ("text ILIKE '%REFUND%'", {"t01"}),
    # tags
    ("tags.environment = 'production'", {"t01", "t02"}),
    ("tags.environment != 'production'", {"t03"}),
    ("NOT tags.environment = 'production'", ALL - {"t01", "t02"}),
    ("tags.environment IN ('staging', 'dev')", {"t03"}),
    ("tags.eval_candidate IS NOT NULL", {"t02", "t03"}),
    ("tags.eval_candidate IS NULL", ALL - {"t02", "t03"}),
    ("tags.eval_candidate LIKE '%case'", {"t02"}),
    ("tags.`mlflow.user` = 'ana'", {"t01"}),
    ("tags.mlflow.user = 'ana'", {"t01"}),
    ('tags."my key" = \'v\'', {"t05"}),
    ("tags.x CONTAINS 'A'", {"t02"}),
    # metadata: text, numeric, booleans, dotted and nested keys
    ("metadata.customer_tier = 'gold'", {"t01", "t03"}),
    ("request_metadata.customer_tier != 'gold'", {"t02"}),
    ("metadata.cost > 0.1", {"t02"}),
    ("metadata.cost < 1", {"t01", "t02"}),
    ("metadata.flagged = TRUE", {"t02"}),
    ("metadata.`mlflow.user` = 'ana'", {"t01"}),
    ("metadata.nested.level >= 5", {"t03"}),
    ("metadata.customer_tier IS NULL", ALL - {"t01", "t02", "t03"}),
    ("metadata.customer_tier IN ('silver', 'bronze')", {"t02"}),
    # labels: the latest label per criterion
    ("labels.correctness = 'fail'", {"t02"}),
    ("labels.correctness = 'pass'", {"t01"}),
    ("labels.correctness IS NULL", ALL - {"t01", "t02"}),
    ("labels.rating >= 3", {"t03"}),
    ("labels.rating IN (2, 4)", {"t03", "t05"}),
    # scores: verdict or numeric score of the latest row per judge
    ("scores.safety = 'fail'", {"t01"}),
    ("scores.safety = 'PASS'", {"t02"}),
    ("scores.safety < 0.5", {"t01"}),
    ("scores.helpfulness = 'unknown'", {"t03"}),
    ("scores.helpfulness IS NOT NULL", {"t03", "t05"}),
    ("scores.safety IS NULL", ALL - {"t01", "t02"}),
    # spans, with exists-semantics
    ("span.type = 'TOOL'", {"t02", "t03"}),
    ("span.status = 'ERROR'", {"t02", "t03"}),
    ("span.type = 'TOOL' AND span.status = 'ERROR'", {"t02"}),
    ("span.type = 'tool' AND status = 'ERROR' AND span.status = 'error'", {"t02"}),
    ("span.type = 'TOOL' OR span.type = 'RETRIEVER'", {"t02", "t03", "t05"}),
    ("NOT span.status = 'ERROR'", ALL - {"t02", "t03"}),
    ("NOT (span.type = 'TOOL' AND span.status = 'ERROR')", ALL - {"t02"}),
    ("span.type = 'LLM' AND NOT span.status = 'ERROR'", {"t01"}),
    ("span.type = 'LLM' AND span.status != 'ERROR'", {"t01", "t02"}),
    ("span.duration_ms > 1000", {"t02", "t05"}),
    ("span.status_message ILIKE '%timeout%'", {"t02"}),
    ("span.tool = 'calc'", {"t03"}),
    ("span.model = 'gpt-4o' AND span.status = 'ERROR'", {"t03"}),
    ("span.attributes.`gen_ai.system` = 'openai'", {"t01", "t02"}),
    ("span.attributes.retrieval.k > 4", {"t03"}),
    ("span.name IS NOT NULL AND span.type = 'RETRIEVER'", {"t05"}),
    # boolean structure
    ("status = 'ERROR' OR tags.environment = 'staging'", {"t02", "t03", "t09"}),
    ("status = 'OK' OR status = 'ERROR' AND tags.x = 'a'", ALL - {"t04", "t09"}),
    ("(status = 'OK' OR status = 'ERROR') AND tags.x = 'a'", {"t02"}),
    ("NOT execution_time_ms > 1000", ALL - {"t01", "t02", "t05"}),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_a_filter_matches_exactly_the_expected_traces(con, text: str, expected: set[str]) -> None:
    assert matching(con, text) == expected


def test_one_tool_span_and_another_error_span_do_not_make_a_failing_tool(con) -> None:
    # t03: TOOL/OK + LLM/ERROR; each condition alone matches it, together they must not
    assert "t03" in matching(con, "span.type = 'TOOL'") & matching(con, "span.status = 'ERROR'")
    assert "t03" not in matching(con, "span.type = 'TOOL' AND span.status = 'ERROR'")
    where, _ = compile_filter(parse("span.type = 'TOOL' AND span.status = 'ERROR'"), now_ms=NOW)
    assert where.count("FROM spans s") == 1


def test_not_around_span_conditions_compiles_to_no_such_span(con) -> None:
    where, _ = compile_filter(parse("NOT (span.type = 'TOOL' AND span.status = 'ERROR')"), now_ms=NOW)
    assert where.startswith("NOT coalesce(t.trace_id IN (SELECT DISTINCT s.trace_id FROM spans s WHERE")


def test_a_span_window_reads_only_the_spans_of_newer_traces(con) -> None:
    where, params = compile_filter(parse("span.type = 'TOOL'"), now_ms=NOW, window_param="w")
    def rows(lower: int) -> set[str]:
        return {r[0] for r in con.execute(f"SELECT t.trace_id FROM traces t WHERE {where}",
                                          {**params, "w": lower}).fetchall()}
    assert rows(NOW - 10 * DAY) == {"t02", "t03"}
    assert rows(NOW - 2 * DAY) == {"t02"}      # t03 is 3 days old: its spans are outside


@pytest.mark.parametrize(("text", "expected"), [
    ('tags.`we"ird\\key` = \'q"u\\o/t\u00e9\n\'', {"t07"}),
    ('tags.`we"ird\\key` IS NOT NULL', {"t07"}),
    ("tags.x = 'a'", {"t02"}),                   # not t08's 'my"x' = 'a', nor its y = 'x":"a'
    ("tags.x IS NOT NULL", {"t02", "t06"}),
    ("tags.y = 'x\":\"a'", {"t08"}),
])
def test_tag_keys_and_values_that_need_json_escapes(con, text: str, expected: set[str]) -> None:
    assert matching(con, text) == expected


def test_relative_time_uses_the_clock_it_is_given(con) -> None:
    expr = parse("attributes.timestamp_ms > now() - 1d")
    _, params = compile_filter(expr, now_ms=NOW)
    assert params == {"p0": NOW - DAY}
    assert matching(con, "attributes.timestamp_ms > now() - 1d") == {"t01"}
    where, params = compile_filter(expr, now_ms=NOW + 30 * DAY)
    assert con.execute(f"SELECT count(*) FROM traces t WHERE {where}", params).fetchone()[0] == 0


def test_values_are_parameters_never_sql(con) -> None:
    text = "tags.x = 'a'' OR 1=1 --' OR metadata.`a'); DROP TABLE traces; --` = 'x'"
    where, params = compile_filter(parse(text), now_ms=NOW)
    assert "1=1" not in where and "DROP" not in where and "'" not in where
    assert "a' OR 1=1 --" in params.values()
    assert matching(con, text) == set()
    assert con.execute("SELECT count(*) FROM traces").fetchone()[0] == len(TRACES)
    assert con.execute("SELECT count(*) FROM tags").fetchone()[0] == len(TAGS)


def test_every_operator_has_sql(con) -> None:
    assert set(SQL_TEMPLATES) == set(fields.OPERATORS)
    assert set(LIST_TEMPLATES) == set(fields.KIND_OPERATORS[fields.Kind.LIST][0])


def test_empty_filter_compiles_to_true() -> None:
    assert compile_filter(None, now_ms=NOW) == ("TRUE", {})


def test_a_custom_alias_is_used_and_internal_aliases_are_refused(con) -> None:
    where, params = compile_filter(parse("span.type = 'TOOL' AND tags.x = 'a'"), now_ms=NOW, alias="tr")
    rows = con.execute(f"SELECT tr.trace_id FROM traces tr WHERE {where}", params).fetchall()
    assert rows == [("t02",)]
    with pytest.raises(ValueError):
        compile_filter(parse("tags.x = 'a'"), now_ms=NOW, alias="s")


# --- ordering and keyset pagination ---------------------------------------------------------

def walk_pages(con, order_by: list[str], page_size: int, text: str = "", as_text: bool = False) -> list[str]:
    """Page through like the store does: limit + 1 rows, the token is the last row's sort values."""
    keys = parse_order_by(order_by)
    where, params = compile_filter(parse(text), now_ms=NOW)
    sort_cols = sort_values_select(keys) if as_text else ", ".join(order_expression(k) for k in keys)
    seen: list[str] = []
    after = None
    for _ in range(50):
        page_where, page_params = where, dict(params)
        if after is not None:
            ks_sql, ks_params = keyset_predicate(keys, after[0], after[1])
            page_where, page_params = f"({where}) AND ({ks_sql})", {**params, **ks_params}
        rows = con.execute(f"SELECT t.trace_id, {sort_cols} FROM traces t WHERE {page_where} "
                           f"ORDER BY {compile_order_by(keys)} LIMIT {page_size + 1}", page_params).fetchall()
        seen += [r[0] for r in rows[:page_size]]
        if len(rows) <= page_size:
            return seen
        last = rows[page_size - 1]
        after = (list(last[1]) if as_text else list(last[1:]), last[0])
    raise AssertionError("pagination did not terminate")


@pytest.mark.parametrize("order_by", [
    [], ["attributes.timestamp_ms ASC"], ["attributes.execution_time_ms DESC"],
    ["attributes.execution_time_ms ASC", "attributes.name DESC"], ["attributes.name"],
    ["attributes.status", "attributes.total_tokens DESC"], ["span_count DESC", "error_count"],
])
@pytest.mark.parametrize("page_size", [1, 2, 3, 4])
def test_keyset_pages_return_every_trace_exactly_once_in_order(con, order_by, page_size) -> None:
    keys = parse_order_by(order_by)
    full = [r[0] for r in con.execute(f"SELECT t.trace_id FROM traces t ORDER BY {compile_order_by(keys)}").fetchall()]
    assert walk_pages(con, order_by, page_size) == full
    assert walk_pages(con, order_by, page_size, as_text=True) == full
    assert sorted(full) == sorted(ALL)


def test_nulls_sort_last_in_both_directions(con) -> None:
    for direction in ("ASC", "DESC"):
        order = walk_pages(con, [f"attributes.execution_time_ms {direction}"], 3)
        assert order[-3:] == ["t04", "t08", "t10"]


def test_ties_are_broken_by_trace_id(con) -> None:
    order = walk_pages(con, ["attributes.timestamp_ms DESC"], 2, "attributes.name = 'batch'")
    assert order == ["t06", "t07", "t09", "t10"]


def test_keyset_accepts_values_that_went_through_a_json_page_token(con) -> None:
    keys = parse_order_by(["attributes.timestamp_ms DESC", "attributes.execution_time_ms DESC"])
    values = json.loads(json.dumps([str(NOW - 5 * DAY), None]))   # stringified, and a raw NULL
    sql, params = keyset_predicate(keys, values, "t08")
    rows = con.execute(f"SELECT t.trace_id FROM traces t WHERE {sql} ORDER BY {compile_order_by(keys)}",
                       params).fetchall()
    assert [r[0] for r in rows] == ["t10", "t04", "t05"]
    with pytest.raises(ValueError):
        keyset_predicate(keys, [1], "t08")
