"""Reading files in worker processes (``server.ingestion.parallel``) ends exactly as the one-process ingest.

Every test runs real worker processes (``min_parallel_bytes=0`` lifts the size threshold) into a
real store, and compares with ``ingest`` over the same files: stored rows, report, error order.
The broad equivalence over every format and attribute convention is in
``tests/test_ingest_equivalence.py``; these pin the cases that only arise across files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.main import cli
from server.ingestion.pipeline import IngestReport, ingest
from server.ingestion import list_files, read_path
from server.ingestion.parallel import default_workers, ingest_files
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import stored_rows
from tests.test_ingest_bad_values import otlp, write_lines
from tests.test_ingest_equivalence import stored_digests
from tools.errors import InvalidInputError

ROWS = "SELECT trace_id, name, input_tokens FROM traces ORDER BY trace_id"


def load_both(tmp_path: Path, folder: Path, **options: object) -> tuple[IngestReport, IngestReport]:
    """The folder ingested once by workers and once in this process, each into its own store."""
    parallel_store = DuckDBTraceStore(tmp_path / "parallel.duckdb")
    parallel = ingest_files(parallel_store, list_files(folder), workers=2, min_parallel_bytes=0, **options)
    parallel_store.release()
    serial_store = DuckDBTraceStore(tmp_path / "serial.duckdb")
    serial = ingest(serial_store, read_path(folder), **options)
    serial_store.release()
    return parallel, serial


def test_an_id_in_two_files_keeps_the_later_files_copy_once(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_lines(folder / "a.jsonl", otlp("1" * 32, name="first", input_tokens=1), otlp("2" * 32))
    write_lines(folder / "b.jsonl", otlp("1" * 32, name="second", input_tokens=2))
    parallel, serial = load_both(tmp_path, folder)
    assert parallel.model_dump() == serial.model_dump()
    assert (parallel.traces, parallel.spans_new, parallel.spans_updated) == (2, 2, 0)
    assert stored_rows(tmp_path / "parallel.duckdb", ROWS) == [("1" * 32, "second", 2), ("2" * 32, "chat", 12)]
    assert stored_digests(tmp_path / "parallel.duckdb") == stored_digests(tmp_path / "serial.duckdb")


def test_batches_of_whole_files_replace_earlier_batches_in_file_order(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):  # batch_size 1: every file is its own batch, and each rewrites trace 1
        write_lines(folder / f"{i}.jsonl", otlp("1" * 32, name=f"copy {i}", input_tokens=i), otlp(f"{i + 2}" * 32))
    parallel, serial = load_both(tmp_path, folder, batch_size=1)
    assert parallel.model_dump() == serial.model_dump()
    assert stored_rows(tmp_path / "parallel.duckdb", "SELECT name FROM traces WHERE trace_id = '" + "1" * 32 + "'") \
        == [("copy 3",)]
    assert stored_digests(tmp_path / "parallel.duckdb") == stored_digests(tmp_path / "serial.duckdb")


def test_bad_files_and_lines_are_reported_in_file_order_and_the_rest_loads(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_lines(folder / "a.jsonl", otlp("a" * 32))
    (folder / "b.json").write_text('{"resourceSpans": [ {"scopeSpans": ')
    (folder / "c.jsonl").write_text('{"resourceSpans": []}\n{oops\n')
    write_lines(folder / "d.jsonl", otlp("d" * 32, input_tokens=99999999999999999999))
    write_lines(folder / "e.jsonl", otlp("e" * 32))
    parallel, serial = load_both(tmp_path, folder)
    assert parallel.model_dump() == serial.model_dump()
    assert (parallel.traces, parallel.error_count) == (2, 3)
    assert [Path(error.split()[0].rstrip(":")).name for error in parallel.errors] == ["b.json", "c.jsonl", "d.jsonl"]
    assert stored_rows(tmp_path / "parallel.duckdb", "SELECT trace_id FROM traces ORDER BY 1") == [
        ("a" * 32,), ("e" * 32,)]


def test_errors_beyond_the_listed_ones_are_still_counted(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, bad_lines in (("a", 60), ("b", 5)):  # a worker lists at most 50 of its file's errors
        write_lines(folder / f"{name}.jsonl", otlp(name * 32))
        with (folder / f"{name}.jsonl").open("a") as lines:
            lines.write("{oops\n" * bad_lines)
    parallel, serial = load_both(tmp_path, folder)
    assert parallel.model_dump() == serial.model_dump()
    assert (parallel.error_count, len(parallel.errors)) == (65, 50)


def test_a_small_load_is_read_in_this_process_with_the_same_result(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_lines(folder / "a.jsonl", otlp("a" * 32))
    write_lines(folder / "b.jsonl", otlp("b" * 32))
    seen: list[str] = []
    store = DuckDBTraceStore(tmp_path / "s.duckdb")
    report = ingest_files(store, list_files(folder), workers=2, on_file=lambda path: seen.append(path.name))
    store.release()
    assert (report.traces, report.spans_new, seen) == (2, 2, ["a.jsonl", "b.jsonl"])


def test_the_worker_count_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACESIEVE_INGEST_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("TRACESIEVE_INGEST_WORKERS", "many")
    with pytest.raises(InvalidInputError, match="TRACESIEVE_INGEST_WORKERS must be a whole number, got 'many'"):
        default_workers()


def test_an_unknown_format_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "s.duckdb")
    with pytest.raises(InvalidInputError, match="Unknown trace format 'csv'"):
        ingest_files(store, [tmp_path], "csv", workers=2, min_parallel_bytes=0)  # type: ignore[arg-type]


def test_the_cli_reads_a_large_load_in_workers_and_refuses_a_bad_worker_count(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    big = "x" * (9 * 2**20)  # two 9 MiB files: past the 16 MiB below which one process reads
    for name in ("a", "b"):
        write_lines(folder / f"{name}.jsonl", otlp(name * 32, attributes={"input.value": big}))
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(cli, ["ingest", str(folder), "--db", str(db), "--workers", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert (report["traces"], report["spans_new"], report["error_count"]) == (2, 2, 0)
    assert stored_rows(db, "SELECT trace_id, length(request) FROM traces ORDER BY 1") == [
        ("a" * 32, len(big)), ("b" * 32, len(big))]
    refused = CliRunner().invoke(cli, ["ingest", str(folder), "--db", str(db), "--workers", "0"])
    assert refused.exit_code == 2 and "--workers" in refused.output
