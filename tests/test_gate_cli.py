"""`tracesieve gate` end to end in subprocesses: exit 0 (ok), 1 (regression), 2 (could not decide)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.calibration_data import add_calibration, add_scores, build_store

ROOT = Path(__file__).resolve().parents[1]
IDS = [f"c{i:02d}" for i in range(60)]


def test_gate_exit_codes_end_to_end(tmp_path: Path) -> None:
    store = build_store(tmp_path, n=60)
    add_scores(store, "release-41", "grounded", {t: "fail" if i >= 54 else "pass" for i, t in enumerate(IDS)})
    add_scores(store, "release-42", "grounded", {t: "fail" if i < 12 or i >= 54 else "pass" for i, t in enumerate(IDS)})
    add_calibration(store, "grounded", 0.72)
    gate = [sys.executable, "-m", "server", "gate", "--db", str(store.path), "--baseline", "release-41"]
    # Nothing holds the store open; the three CLI processes start at once (each pays Python start-up).
    runs = {
        "regressed": subprocess.Popen(gate + ["--candidate", "release-42"], cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True),
        "ok": subprocess.Popen(gate + ["--candidate", "release-42", "--min-delta", "0.25", "--json"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        "unknown": subprocess.Popen(gate + ["--candidate", "release-24"], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True),
    }
    out = {name: (*p.communicate(timeout=180), p.returncode) for name, p in runs.items()}

    stdout, stderr, code = out["regressed"]
    assert code == 1, stderr
    assert "`release-42` vs `release-41`: **regressed** (exit 1)" in stdout
    assert "| grounded | yes | 90.0% | 70.0% | -20.0% |" in stdout

    stdout, stderr, code = out["ok"]
    assert code == 0, stderr
    assert (json.loads(stdout)["verdict"], json.loads(stdout)["exit_code"]) == ("no significant change", 0)

    stdout, stderr, code = out["unknown"]
    assert code == 2
    assert stderr.startswith("Error: No scores for run 'release-24'. Did you mean")
    assert stderr.rstrip().endswith("gate: could not decide (exit 2).")


def test_gate_runs_the_judges_on_two_dataset_versions(tmp_path: Path) -> None:
    """--baseline-dataset/--dataset run the judges feature's run_judges on each side, then compare (in-process)."""
    from click.testing import CliRunner

    from server.cli.main import cli
    from server.storage.duckdb.datasets_sql import DuckDBDatasetStore
    from server.storage.duckdb.judges_sql import DuckDBJudgeStore
    from tests.factory import trace
    from tools.datasets import builder
    from tools.judges import registry

    store = build_store(tmp_path, n=2)
    store.write_traces([trace(f"ok{i:02d}", i, tags={"release": "41"}) for i in range(30)]
                       + [trace(f"bad{i:02d}", 40 + i, tool_status="ERROR" if i < 12 else "OK", tags={"release": "42"})
                          for i in range(30)])
    ds = DuckDBDatasetStore(store)
    for release in ("41", "42"):
        builder.build_dataset_from_tags(ds, builder.BuildDatasetInput(
            name=f"rel{release}", tags=[f"release={release}"], redact=False), now_ms=1)
    registry.define_judge(DuckDBJudgeStore(store), registry.DefineJudgeInput(
        name="tool_failures", kind="rule", criterion="tool_error",
        spec={"type": "status", "trace_ok": False, "span_types": ["TOOL"]}), now_ms=1)
    result = CliRunner().invoke(cli, ["gate", "--db", str(store.path), "--baseline-dataset", "rel41@1",
                                      "--dataset", "rel42@1", "--judges", "tool_failures", "--allow-uncalibrated"])
    assert result.exit_code == 2, result.output  # two datasets of different traces: not comparable
    assert "**undecided** (exit 2)" in result.output and "not comparable" in result.output
    missing = CliRunner().invoke(cli, ["gate", "--db", str(store.path), "--baseline-dataset", "rel41@1",
                                       "--candidate", "x"])
    assert missing.exit_code == 2 and "Give --judges" in missing.output
