"""``tracesieve dataset build|show|export|import|diff|list`` with ``--store`` (and ``--control``) on
every engine: the same commands a person runs against DuckDB work over chdb and its control plane.

In-process through click's runner: chdb allows one folder per process, and these stores live in
the session's chdb folder (``tests/contract/conftest.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from server.cli.main import cli
from server.storage.backend import Backend
from server.storage.factory import StoreUrl


def run(url: StoreUrl, *args: str) -> dict:
    where = ["--store", url.display()] + (["--control", url.control] if url.control else [])
    result = CliRunner().invoke(cli, [*args, *where])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_dataset_commands_build_read_export_import_and_diff(feature_backend: Backend,
                                                                feature_store_url: StoreUrl, tmp_path: Path) -> None:
    feature_backend.traces.set_tag(trace_ids=["t02", "t03", "t05", "t09"], expr=None, key="c", value="e", by="t",
                                   now_ms=1)
    built = run(feature_store_url, "dataset", "build", "errs", "--tag", "c=e", "--n", "3", "--seed", "1")
    assert (built["version"], built["record_count"], built["selected"]) == (1, 3, 4)
    shown = run(feature_store_url, "dataset", "show", "errs@1", "--limit", "2")
    assert len(shown["records"]) == 2 and shown["next_offset"] == 2
    out = tmp_path / "errs.jsonl"
    exported = run(feature_store_url, "dataset", "export", "errs", "--out", str(out))
    assert exported["record_count"] == 3 and len(out.read_text().splitlines()) == 3
    imported = run(feature_store_url, "dataset", "import", "copy", str(out))
    assert imported["content_hash"] == built["content_hash"]
    rebuilt = run(feature_store_url, "dataset", "build", "errs", "--tag", "c=e", "--n", "4", "--seed", "1",
                  "--new-version")
    assert (rebuilt["version"], rebuilt["record_count"]) == (2, 4)
    diff = run(feature_store_url, "dataset", "diff", "errs")
    assert (diff["a"], diff["b"], diff["added_count"]) == (1, 2, 1)
    listed = run(feature_store_url, "dataset", "list")
    assert {(d["name"], d["latest_version"]) for d in listed["datasets"]} == {("errs", 2), ("copy", 1)}
