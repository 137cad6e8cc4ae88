"""A real SDK trace split over files, on every engine: each span once, the row a whole load gets.

Ported from ``tests/test_span_upsert.py`` (DuckDB only) to the engines' shared port: the pieces are
the real OpenTelemetry SDK's spans exported as a batch processor sends them (children first, the
root last), one OTLP/JSON request per line. The reference is the whole trace loaded into a second
store of the same engine. ``ingest --replace`` runs through the CLI with ``--store``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.main import cli
from server.ingestion import read_path
from server.ingestion.pipeline import IngestReport, ingest
from server.storage.backend import Backend
from server.storage.factory import StoreUrl, build_backend
from tests.contract.conftest import _new_store
from tests.test_span_upsert import export_lines, files, sdk_spans, write  # noqa: F401  (fixtures)

#: What must match the whole-trace reference (not when the row was written).
FIELDS = ("trace_id", "timestamp_ms", "execution_time_ms", "status", "name", "request", "response", "session_id",
          "model", "environment", "input_tokens", "output_tokens", "tags")


def load(backend: Backend, *paths: Path) -> IngestReport:
    report = IngestReport()
    for path in paths:
        ingest(backend.traces, read_path(path), report=report)
    return report


def row(backend: Backend) -> tuple:
    page = backend.traces.search(None, [], limit=5, after=None, now_ms=0, count_cap=10)
    assert len(page.rows) == 1
    loaded = backend.traces.load_trace(page.rows[0].trace_id)
    assert loaded is not None
    return (*(getattr(loaded, f) for f in FIELDS), page.rows[0].span_count, page.rows[0].error_count,
            page.rows[0].tool_names, len({s.span_id for s in loaded.spans}))


@pytest.fixture
def reference(engine: str, tmp_path: Path, chdb_folder: Path, files: dict[str, Path]) -> tuple:  # noqa: F811
    for url in _new_store(engine, tmp_path / "ref", chdb_folder):
        (tmp_path / "ref").mkdir(exist_ok=True)
        backend = build_backend(url)
        load(backend, files["whole"])
        return row(backend)
    raise AssertionError("no store")


@pytest.mark.parametrize("order", [("file1", "file2"), ("file2", "file1")])
def test_a_trace_split_over_two_files_loads_as_the_whole_trace(
        order: tuple[str, str], files: dict[str, Path], empty_backend: Backend, reference: tuple) -> None:  # noqa: F811
    reports = [load(empty_backend, files[name]) for name in order]
    assert [r.spans_new for r in reports] == ([5, 2] if order[0] == "file1" else [2, 5])
    assert row(empty_backend) == reference
    assert reference[3:5] == ("OK", "invoke_agent support") and reference[-1] == 7


def test_replace_through_the_cli_drops_the_earlier_load(
        files: dict[str, Path], store_url: StoreUrl, empty_backend: Backend, reference: tuple) -> None:  # noqa: F811
    args = ["--db", str(store_url.path)] if store_url.engine == "duckdb" else ["--store", store_url.display()]
    load(empty_backend, files["whole"])
    getattr(empty_backend.traces, "release", lambda: None)()
    result = CliRunner().invoke(cli, ["ingest", *args, "--replace", str(files["line1"])])
    assert result.exit_code == 0, result.output
    partial = row(build_backend(store_url))
    assert (partial[3], partial[-1]) == ("IN_PROGRESS", 3)  # only the first request's 3 spans are left
    result = CliRunner().invoke(cli, ["ingest", *args, "--replace", str(files["file1"]), str(files["file2"])])
    assert result.exit_code == 0, result.output
    assert row(build_backend(store_url)) == reference
