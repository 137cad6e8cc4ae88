"""Filters past the size and depth bounds get a FilterError that says what to do, through the
real client too (a RecursionError used to reach agents as a bare "Error executing tool")."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from server.mcp.app import build_app
from server.storage.duckdb.store import DuckDBTraceStore
from tools.errors import FilterError
from tools.filters.limits import MAX_CONDITIONS, MAX_DEPTH, MAX_VALUES
from tools.filters.parser import parse

OK = "attributes.status = 'OK'"


def test_nesting_past_the_limit_names_the_position_and_the_fix() -> None:
    with pytest.raises(FilterError) as caught:
        parse("(" * (MAX_DEPTH + 1) + OK + ")" * (MAX_DEPTH + 1))
    assert str(caught.value) == (
        "The filter nests deeper than 32 levels of parentheses and NOT at position 32.\n"
        "  (((((((((((((((((((((((((((((((((attributes.status = 'OK')))))))))))))))))))))))))))))))))\n"
        "                                  ^\n"
        "Remove redundant parentheses; NOT NOT x is x; write NOT (a OR b) as NOT a AND NOT b.")


@pytest.mark.parametrize("text, words", [
    ("NOT " * 988 + OK, "nests deeper than 32 levels"),
    ("NOT (" * 17 + OK + ")" * 17, "nests deeper than 32 levels"),
    ("(" * 330 + OK + ")" * 330, "nests deeper than 32 levels"),
    ("text CONTAINS '" + "x" * 10_000_000 + "'", "The filter is 10,000,016 characters long; the limit is 20,000."),
    (" OR ".join(f"tags.k = 'v{i}'" for i in range(3000)), "the limit is 20,000"),
    (" OR ".join(f"tags.k = '{i}'" for i in range(MAX_CONDITIONS + 1)), "more than 200 conditions"),
    ("attributes.model IN (" + ",".join(str(i) for i in range(MAX_VALUES + 1)) + ")", "more than 1,000 values"),
])
def test_huge_or_deep_filters_are_refused_with_a_fix(text: str, words: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse(text)
    assert words in str(caught.value)
    assert "trace_ids" in str(caught.value) or "NOT a AND NOT b" in str(caught.value)


def test_filters_at_the_limits_still_parse() -> None:
    assert parse("(" * MAX_DEPTH + OK + ")" * MAX_DEPTH) is not None
    assert parse("NOT " * (MAX_DEPTH - 1) + "(" + OK + ")") is not None
    assert parse(" OR ".join(f"tags.k = '{i}'" for i in range(MAX_CONDITIONS))) is not None
    assert parse("attributes.model IN (" + ",".join(f"'{i}'" for i in range(MAX_VALUES - 1)) + ")") is not None


@pytest.mark.anyio
async def test_a_deep_filter_reaches_the_agent_as_a_fixable_error(db_path: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db_path))) as client:
        for text in ("(" * 330 + OK + ")" * 330, "NOT " * 988 + OK):
            result = await client.call_tool("search_traces", {"filter": text})
            assert result.is_error
            assert result.content[0].text.startswith(
                "Error executing tool search_traces: The filter nests deeper than 32 levels")
        fine = await client.call_tool("search_traces", {"filter": "((attributes.status = 'ERROR'))"})
        assert fine.structured_content["total_matches"] == 3
