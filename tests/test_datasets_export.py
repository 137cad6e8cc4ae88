"""Exports (JSONL, Parquet, a real local MLflow evaluation dataset), JSONL import, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from server.cli.main import cli
from server.exchange.datasets import export_dataset, import_dataset
from server.storage.duckdb.datasets_sql import DuckDBDatasetStore
from server.storage.duckdb.store import DuckDBTraceStore
from tools.datasets.merge import MergeRecordsInput, merge_records
from tools.datasets.builder import BuildDatasetInput, build_dataset_from_tags
from tests.factory import dataset_counts
from tools.errors import InvalidInputError


@pytest.fixture
def ds(store: DuckDBTraceStore) -> DuckDBDatasetStore:
    store.set_tag(trace_ids=["t02", "t03", "t05", "t08"], expr=None, key="eval_candidate", value="x", by="t", now_ms=1)
    ds = DuckDBDatasetStore(store)
    build_dataset_from_tags(ds, BuildDatasetInput(name="golden", tags=["eval_candidate"]), now_ms=10)
    merge_records(ds, MergeRecordsInput(name="golden", records=[
        {"trace_id": "t03", "expectations": {"expected_facts": ["refund for order 991"]}},
        {"inputs": {"question": "Return window?"}, "expectations": {"expected_response": "30 days"}}]), now_ms=20)
    return ds


def test_jsonl_round_trips_to_the_same_records_and_content_hash(ds: DuckDBDatasetStore, tmp_path: Path) -> None:
    exported = export_dataset(ds, "golden", None, "jsonl", path=tmp_path / "golden.jsonl")
    lines = (tmp_path / "golden.jsonl").read_text().splitlines()
    assert (exported.version, exported.record_count, len(lines)) == (2, 6, 6)
    assert {"record_id", "trace_id", "inputs", "outputs", "expectations", "strata", "selection_probability",
            "redaction"} == set(json.loads(lines[0]))
    imported = import_dataset(ds, "golden_copy", tmp_path / "golden.jsonl", redact=True, new_version=False,
                              description=None, now_ms=30)
    original = ds.versions("golden")[-1]
    assert imported.content_hash == original.content_hash
    assert [r.model_dump() for r in ds.records("golden_copy", 1)] == [r.model_dump() for r in ds.records("golden", 2)]
    again = import_dataset(ds, "golden_copy", tmp_path / "golden.jsonl", redact=True, new_version=False,
                           description=None, now_ms=40)
    assert (again.version, again.created) == (1, False)


def test_parquet_holds_one_row_per_record_with_json_columns(ds: DuckDBDatasetStore) -> None:
    exported = export_dataset(ds, "golden@1", None, "parquet")
    assert exported.path == str(ds.exports_dir / "golden@v1.parquet")
    table = pq.read_table(exported.path)
    assert table.num_rows == 5  # t02, t03, t05, t08 and t07 (tagged slow by the factory)
    assert json.loads(table.column("inputs")[0].as_py())["messages"][0]["role"] == "user"
    assert table.column("trace_id").to_pylist() == [r.trace_id for r in ds.records("golden", 1)]


def test_an_mlflow_export_is_a_real_evaluation_dataset_that_reads_back(ds: DuckDBDatasetStore, tmp_path: Path) -> None:
    from mlflow.genai import datasets as genai_datasets
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exported = export_dataset(ds, "golden", None, "mlflow", tracking_uri=uri)
    assert (exported.mlflow_dataset_name, exported.mlflow_record_count) == ("golden_v2", 4)
    # t02, t05 and t08 ask the same question: MLflow keys records by inputs, so it keeps one of them.
    assert any("identical inputs were merged" in n for n in exported.notes)
    with _use_tracking_uri(uri):
        df = genai_datasets.get_dataset(dataset_id=exported.mlflow_dataset_id).to_df()
    by_trace = {row["tags"].get("tracesieve.trace_id"): row for _, row in df.iterrows()}
    assert by_trace["t03"]["expectations"] == {"expected_facts": ["refund for order 991"]}
    assert by_trace["t03"]["inputs"] == {"messages": [{"role": "user", "content": "Refund for order 991?"}]}
    assert by_trace["t03"]["outputs"] == {"content": "It ships tomorrow."}
    assert by_trace[None]["expectations"] == {"expected_response": "30 days"}
    again = export_dataset(ds, "golden", None, "mlflow", tracking_uri=uri)
    assert again.mlflow_dataset_id == exported.mlflow_dataset_id and "already existed" in again.notes[0]


def test_a_broken_jsonl_file_names_the_line_and_writes_nothing(ds: DuckDBDatasetStore, db_path: Path,
                                                               tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"inputs": {"q": "a"}}\n{"inputs": \n')
    other = tmp_path / "other.jsonl"
    other.write_text('{"inputs": {"q": "a"}, "colour": "red"}\n')
    before = dataset_counts(db_path)
    with pytest.raises(InvalidInputError, match="bad.jsonl line 2 is not valid JSON"):
        import_dataset(ds, "bad", bad, redact=True, new_version=False, description=None, now_ms=1)
    with pytest.raises(InvalidInputError, match="record 1 has unknown field\\(s\\) 'colour'"):
        import_dataset(ds, "bad", other, redact=True, new_version=False, description=None, now_ms=1)
    assert dataset_counts(db_path) == before


def test_the_cli_builds_lists_shows_diffs_exports_and_imports(db_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    DuckDBTraceStore(db_path).set_tag(trace_ids=["t02", "t05"], expr=None, key="eval_candidate", value="e", by="t",
                                      now_ms=1)

    def run(*args: str) -> dict:
        result = runner.invoke(cli, ["dataset", *args, "--db", str(db_path)])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert run("build", "cli_set", "--tag", "eval_candidate", "--n", "1", "--seed", "3")["record_count"] == 1
    assert run("list")["datasets"][0]["name"] == "cli_set"
    assert run("show", "cli_set@1")["dataset"]["version"] == 1
    out = tmp_path / "cli_set.jsonl"
    assert run("export", "cli_set", "--out", str(out))["path"] == str(out)
    assert run("import", "cli_copy", str(out))["record_count"] == 1
    bad = runner.invoke(cli, ["dataset", "build", "x", "--tag", "nope", "--db", str(db_path)])
    assert bad.exit_code == 2 and "No trace has tag 'nope'." in bad.output
    clash = runner.invoke(cli, ["dataset", "build", "cli_set", "--tag", "eval_candidate", "--db", str(db_path)])
    assert clash.exit_code == 1 and "Pass new_version=true" in clash.output
    assert run("diff", "cli_set", "--a", "1", "--b", "1")["same_content"] is True
