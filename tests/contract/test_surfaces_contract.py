"""The MCP server and the CLI over a ClickHouse store, and the same real exports read back alike."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from mcp import Client

from server.cli.main import cli
from server.mcp.app import build_app
from server.storage.backend import Backend
from server.storage.factory import StoreUrl, build_backend
from tests.conftest import FIXTURES
from tools.errors import InvalidInputError
from tools.traces.search import SearchTracesInput, search_traces

pytestmark = pytest.mark.anyio

TRACE_TOOLS = {"describe_store", "search_traces", "get_trace", "tag_trace", "untag_trace", "query_sql"}


async def test_the_mcp_server_serves_the_trace_tools_over_every_engine(engine: str, backend: Backend) -> None:
    async with Client(build_app(backend)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        found = await client.call_tool("search_traces", {"filter": "attributes.status = 'ERROR'", "limit": 2})
        tagged = await client.call_tool("tag_trace", {"key": "eval_candidate", "value": "error_case",
                                                      "filter": "attributes.status = 'ERROR'"})
        trace = await client.call_tool("get_trace", {"trace_id": "t09"})
    assert TRACE_TOOLS <= names
    assert ("build_dataset_from_tags" in names) == (engine != "clickhouse")  # datasets: wherever a control plane is
    assert [t["trace_id"] for t in found.structured_content["traces"]] == ["t09", "t05"]
    assert found.structured_content["total_matches"] == 3
    assert (tagged.structured_content["matched"], tagged.structured_content["changed"]) == (3, 3)
    assert trace.structured_content["trace"]["tags"] == {"environment": "staging", "eval_candidate": "error_case"}


async def test_query_sql_reads_the_same_views_and_refuses_writes_on_every_engine(backend: Backend) -> None:
    async with Client(build_app(backend)) as client:
        counts = await client.call_tool("query_sql", {
            "sql": "SELECT state, count(*) AS n FROM trace_unified GROUP BY state ORDER BY state"})
        spans = await client.call_tool("query_sql", {"sql": "SELECT count(*) FROM otel_spans WHERE status_code = 'ERROR'"})
        write = await client.call_tool("query_sql", {"sql": "DROP TABLE traces"})
        many = await client.call_tool("query_sql", {"sql": "SELECT trace_id FROM spans", "limit": 5})
        tagged = await client.call_tool("tag_trace", {"key": "k", "value": "v", "trace_ids": ["t01"]})
    assert counts.structured_content["rows"] == [["ERROR", 3], ["OK", 9]]
    assert spans.structured_content["rows"] == [[5]]
    assert write.is_error and "query_sql is read-only" in write.content[0].text
    assert (many.structured_content["row_count"], many.structured_content["truncated"]) == (5, True)
    assert tagged.structured_content["changed"] == 1  # the store itself still writes


@pytest.mark.parametrize("engine", ["chdb", "clickhouse"], indirect=True)  # DuckDB does all of this
async def test_clickhouse_says_what_it_cannot_do_yet(engine: str, backend: Backend) -> None:
    async with Client(build_app(backend)) as client:
        # label filters compile on ClickHouse now (the labels table is there): no error, no match here
        label = await client.call_tool("search_traces", {"filter": "labels.correct = 'fail'"})
        files = await client.call_tool("query_sql", {"sql": "SELECT * FROM file('/etc/hostname', 'LineAsString')"})
    assert not label.is_error and label.structured_content["traces"] == []
    assert files.is_error and "query_sql is read-only" in files.content[0].text


async def test_query_sql_names_the_dialect_of_its_store(engine: str, backend: Backend) -> None:
    async with Client(build_app(backend)) as client:
        (tool,) = [t for t in (await client.list_tools()).tools if t.name == "query_sql"]
    assert ("ClickHouse SQL" in (tool.description or "")) == (engine != "duckdb")
    assert ("DuckDB dialect" in (tool.description or "")) == (engine == "duckdb")


def _cli(*args: str) -> dict:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):])


def test_the_shared_exports_read_back_the_same_from_duckdb_and_chdb(tmp_path: Path, chdb_folder: Path) -> None:
    chdb = StoreUrl("chdb", path=chdb_folder, database=f"t_{uuid.uuid4().hex[:12]}")
    stores = {"duckdb": f"duckdb://{tmp_path / 's.duckdb'}", "chdb": chdb.display()}
    for url in stores.values():
        assert _cli("ingest", str(FIXTURES), "--store", url)["traces"] == 25
    duck, ch = (build_backend(StoreUrl("duckdb", path=tmp_path / "s.duckdb")), build_backend(chdb))
    ids = [t.trace_id for t in search_traces(duck.traces, SearchTracesInput(limit=200), now_ms=0).traces]
    assert len(ids) == 25
    for trace_id in ids:
        a, b = duck.traces.load_trace(trace_id), ch.traces.load_trace(trace_id)
        assert a is not None and b is not None
        assert b.model_dump(exclude={"labels", "scores"}) == a.model_dump(exclude={"labels", "scores"}), trace_id
    for filter in ("", "attributes.status = 'ERROR'", "span.type = 'LLM'", "text CONTAINS 'the'",
                   "span.attributes.`gen_ai.system` IS NOT NULL", "attributes.total_tokens > 100"):
        pages = [search_traces(b.traces, SearchTracesInput(filter=filter, limit=200), now_ms=0) for b in (duck, ch)]
        assert pages[0].model_dump() == pages[1].model_dump(), filter
    described = [_unordered(_cli("describe", "--store", url)) for url in stores.values()]
    assert described[0] | {"sql_tables": None} == described[1] | {"sql_tables": None}


def _unordered(described: dict) -> dict:
    """describe_store's lists with equal counts in no defined order (DuckDB breaks ties as it likes)."""
    return {k: sorted(map(json.dumps, v)) if isinstance(v, list) else v for k, v in described.items()}


def test_optimize_is_no_longer_duckdb_only(chdb_folder: Path) -> None:
    # (tests/contract/test_optimize_contract.py shows what it folds)
    result = CliRunner().invoke(cli, ["optimize", "--store", f"chdb://{chdb_folder}"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["engine"] == "chdb"


def test_one_chdb_folder_per_process_and_one_process_per_folder(chdb_folder: Path, tmp_path: Path) -> None:
    held = build_backend(StoreUrl("chdb", path=chdb_folder, database="t_folder_rules"))  # as a server holds it
    with pytest.raises(InvalidInputError, match="already runs the chdb engine on .* one folder per process"):
        build_backend(StoreUrl("chdb", path=tmp_path / "elsewhere"))
    second = subprocess.run(
        [sys.executable, "-c", "from server.cli.main import main; main()", "describe", "--store", f"chdb://{chdb_folder}"],
        capture_output=True, text=True, timeout=120)
    assert second.returncode == 1
    assert f"The chdb folder {chdb_folder.resolve()} is in use by another process" in second.stderr
    assert held.traces.stats()["trace_count"] == 0
