"""The CLI mirrors the tools on the same input models; errors go to stderr with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from server.cli.main import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_search_prints_json_summaries(db_path: Path) -> None:
    result = invoke("search", "attributes.status = 'ERROR'", "--db", str(db_path), "--limit", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total_matches"] == 3 and len(data["traces"]) == 2 and data["next_page_token"]


def test_a_bad_filter_is_a_usage_error_with_the_caret(db_path: Path) -> None:
    result = invoke("search", "attributes.stauts = 'OK'", "--db", str(db_path))
    assert result.exit_code == 2
    assert "Did you mean 'attributes.status'?" in result.output


def test_tag_then_show_and_untag(db_path: Path) -> None:
    tagged = invoke("tag", "eval_candidate", "error_case", "--filter", "attributes.status = 'ERROR'",
                    "--db", str(db_path))
    assert tagged.exit_code == 0 and json.loads(tagged.output)["changed"] == 3
    shown = json.loads(invoke("show", "t02", "--db", str(db_path)).output)
    assert shown["trace"]["tags"]["eval_candidate"] == "error_case"
    removed = json.loads(invoke("untag", "eval_candidate", "--id", "t02", "--db", str(db_path)).output)
    assert removed["changed"] == 1


def test_unknown_trace_exits_1(db_path: Path) -> None:
    result = invoke("show", "nope", "--db", str(db_path))
    assert result.exit_code == 1 and "No trace with id 'nope'" in result.output


def test_call_prints_what_an_agent_receives(db_path: Path) -> None:
    result = invoke("call", "search_traces", '{"filter": "tags.environment = \'staging\'", "limit": 1}',
                    "--db", str(db_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_matches"] == 4


def test_sql_refuses_writes_with_exit_2(db_path: Path) -> None:
    result = invoke("sql", "DELETE FROM traces", "--db", str(db_path))
    assert result.exit_code == 2 and "read-only" in result.output
