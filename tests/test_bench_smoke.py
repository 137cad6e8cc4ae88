"""The benchmark harness works end to end (a smoke check, not a benchmark: no timing assertions).

Runs ``python -m bench.run --quick`` (200 traces, 1 repeat, MLflow loaded with the same traces)
in a subprocess and checks the report is well formed: every workload has a figure for both
systems (the dataset row only once that feature exists), every ratio is finite and positive,
and both systems computed the same answers to the seed's analysis questions.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from bench import report

REPO = Path(__file__).resolve().parents[1]


def test_quick_benchmark_produces_a_well_formed_report(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--data-dir", str(tmp_path), "--report", str(out)],
        cwd=REPO, env={**os.environ, "TRACESIEVE_LOCK_TIMEOUT": "30"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    run = json.loads((tmp_path / "results" / "last_run.json").read_text())
    (record,) = run["records"]
    assert record["n"] == 200 and record["spans"] > 600
    both = [k for k in report.ROWS if k != "dataset.from_tags"]
    for key in both:
        assert report.figure(record, "tracesieve", key) is not None, key
        assert report.figure(record, "mlflow", key) is not None, key
    ratios = report.all_ratios(record)
    assert set(both) <= set(ratios)
    assert all(math.isfinite(r) and r > 0 for r in ratios.values()), ratios
    assert all(v.startswith("same") for v in record["answers"].values()), record["answers"]
    assert record["mcp"]["rss_peak"] > 0

    text = out.read_text()
    for key in both:
        assert report.title(key) in text, key
    assert "Versions:" in text and "mlflow" in text

    # the ingest benchmark runs on the same generated files and prints every row and the bound
    data = next(tmp_path.glob("n200-*"))
    proc = subprocess.run([sys.executable, "-m", "bench.ingest_bench", "--data", str(data), "--repeats", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("json.loads floor", "read_path only", "| ingest |", "to_arrow only", "DuckDB write floor"):
        assert row in proc.stdout, row
    assert "µs per span" in proc.stdout
