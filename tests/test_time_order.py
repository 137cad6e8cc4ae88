"""``tracesieve optimize``: a backfilled store is rewritten in time order with every row, tag copy
and search result as it was; a failure half-way leaves it untouched; a store in order is left alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from server.cli.main import cli
from server.storage.duckdb import time_order
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import small_set, stored_rows, trace
from tests.test_denormalized_copies import assert_in_step
from tools.filters.parser import parse
from tools.traces.search import SearchTracesInput, search_traces

#: Two export files that each cover the whole period, as a backfill reads them: every other
#: minute in each, so the second file's rows interleave in time with the first's.
PER_FILE = 2600
NOW_MS = 1_763_000_000_000

FILTERS = ["", "attributes.status = 'ERROR'", "span.type = 'TOOL' AND span.status = 'ERROR'", "tags.eval = 'yes'"]


@pytest.fixture(scope="module")
def backfilled_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("backfill") / "template.duckdb"
    store = DuckDBTraceStore(path)
    for first_minute in (0, 1):
        store.write_traces([
            trace(f"f{first_minute}-{i:05d}", first_minute + 2 * i, status="ERROR" if i % 7 == 0 else "OK",
                  tool_status="ERROR" if i % 5 == 0 else "OK",
                  tags={"environment": "production", **({"eval": "yes"} if i % 11 == 0 else {})})
            for i in range(PER_FILE)])
    store.set_tag(trace_ids=None, expr=parse("attributes.status = 'ERROR'"), key="review", value="needed", by="t",
                  now_ms=1)
    store.release()
    return path


@pytest.fixture
def backfilled(backfilled_template: Path, tmp_path: Path) -> DuckDBTraceStore:
    path = tmp_path / "store.duckdb"
    shutil.copy(backfilled_template, path)
    return DuckDBTraceStore(path)


def every_row(store: DuckDBTraceStore) -> dict[str, list[tuple]]:
    """Every row of the tables a rewrite touches or must not touch, in a fixed order."""
    store.release()
    return {table: stored_rows(store.path, f"SELECT * FROM {table} ORDER BY ALL")
            for table in ("traces", "spans", "tags", "tag_history")}


def storage_order(store: DuckDBTraceStore, table: str, columns: str) -> list[tuple]:
    store.release()
    return stored_rows(store.path, f"SELECT {columns} FROM {table} ORDER BY rowid")


def all_pages(store: DuckDBTraceStore, flt: str) -> list[str]:
    ids, token = [], None
    while True:
        page = search_traces(store, SearchTracesInput(filter=flt, limit=200, page_token=token), now_ms=10**13)
        ids += [t.trace_id for t in page.traces]
        token = page.next_page_token
        if token is None:
            return ids


def test_a_backfilled_store_is_rewritten_in_time_order_with_every_row_kept(backfilled: DuckDBTraceStore) -> None:
    rows_before = every_row(backfilled)
    pages_before = {flt: all_pages(backfilled, flt) for flt in FILTERS}
    assert storage_order(backfilled, "traces", "timestamp_ms") != sorted(storage_order(backfilled, "traces",
                                                                                         "timestamp_ms"))

    report = backfilled.put_in_time_order()

    assert report.traces.rows == 2 * PER_FILE and report.spans.rows == 3 * 2 * PER_FILE
    assert report.traces.out_of_place_before > 0 and report.spans.out_of_place_before > 0
    assert report.traces.rewritten and report.spans.rewritten
    assert report.traces.out_of_place_after == report.spans.out_of_place_after == 0
    traces_stored = storage_order(backfilled, "traces", "timestamp_ms, trace_id")
    assert traces_stored == sorted(traces_stored)
    spans_stored = storage_order(backfilled, "spans", "trace_timestamp_ms, trace_id, start_time_ns, span_id")
    assert spans_stored == sorted(spans_stored)
    assert every_row(backfilled) == rows_before
    assert {flt: all_pages(backfilled, flt) for flt in FILTERS} == pages_before
    assert_in_step(backfilled)
    assert report.free_bytes is not None and report.free_bytes > 0, "the old rows' blocks are freed"


def test_the_rewritten_store_takes_writes_and_a_second_run_changes_nothing(backfilled: DuckDBTraceStore) -> None:
    backfilled.put_in_time_order()
    original = backfilled.load_trace("f1-00003")
    assert original is not None and original.tags == {"environment": "production"}
    backfilled.set_tag(trace_ids=["f1-00003"], expr=None, key="eval", value="later", by="t", now_ms=2)
    backfilled.write_traces([trace("f0-00004", 8, answer="replaced")])
    assert_in_step(backfilled)
    rows = every_row(backfilled)

    again = backfilled.put_in_time_order()

    # the replaced trace went to the end of the table: out of place, but one row is not worth a rewrite
    assert not again.traces.rewritten and not again.spans.rewritten
    assert (again.traces.out_of_place_before, again.spans.out_of_place_before) == (1, 3)
    assert every_row(backfilled) == rows
    reloaded = backfilled.load_trace("f0-00004")
    assert reloaded is not None and reloaded.response == json.dumps({"content": "replaced"})


def test_a_failure_half_way_leaves_the_store_as_it_was(backfilled: DuckDBTraceStore,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rows_before = every_row(backfilled)
    order_before = storage_order(backfilled, "traces", "trace_id")
    # the traces are rewritten first; then the spans' statement fails on a column that is not there
    monkeypatch.setitem(time_order.ORDER, "spans", "no_such_column")

    with pytest.raises(duckdb.BinderException):
        backfilled.put_in_time_order()

    assert storage_order(backfilled, "traces", "trace_id") == order_before
    assert every_row(backfilled) == rows_before
    assert_in_step(backfilled)


def test_a_store_in_time_order_is_left_alone(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "live.duckdb")
    store.write_traces(small_set())
    rows = every_row(store)

    report = store.put_in_time_order()

    assert (report.traces.rows, report.spans.rows) == (12, 36)
    assert not report.traces.rewritten and not report.spans.rewritten
    assert every_row(store) == rows


def test_the_cli_command_prints_what_it_did(backfilled: DuckDBTraceStore) -> None:
    backfilled.release()
    result = CliRunner().invoke(cli, ["optimize", "--db", str(backfilled.path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["traces"]["rewritten"] and out["spans"]["out_of_place_after"] == 0
    assert out["file_bytes_after"] >= out["file_bytes_before"] > 0 and out["seconds"] >= 0

    again = json.loads(CliRunner().invoke(cli, ["optimize", "--db", str(backfilled.path)]).output)
    assert not again["traces"]["rewritten"] and again["traces"]["out_of_place_before"] == 0


def test_ingest_of_a_backfill_suggests_optimize_and_an_ordered_load_does_not(tmp_path: Path) -> None:
    from bench.otlp_writer import write_jsonl
    from server.demo.generate import generate_demo_traces

    exports, db = tmp_path / "exports", tmp_path / "store.duckdb"
    exports.mkdir()
    for part in range(2):  # two export files, each covering the same three weeks
        with (exports / f"part-{part}.jsonl").open("w") as out:
            write_jsonl(out, generate_demo_traces(PER_FILE, seed=part, now_ms=NOW_MS, days=21), {})
    later = tmp_path / "later.jsonl"
    with later.open("w") as out:
        write_jsonl(out, generate_demo_traces(50, seed=9, now_ms=NOW_MS + 86_400_000, days=1), {})

    backfill = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(exports)])
    assert backfill.exit_code == 0, backfill.output
    assert json.loads(backfill.stdout)["traces"] == 2 * PER_FILE
    assert f"Run `tracesieve optimize --db {db}`" in backfill.stderr
    assert CliRunner().invoke(cli, ["optimize", "--db", str(db)]).exit_code == 0

    live = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(later)])
    assert live.exit_code == 0, live.output
    assert json.loads(live.stdout)["traces"] == 50
    assert "optimize" not in live.stderr
