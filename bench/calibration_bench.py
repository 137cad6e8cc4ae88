"""Benchmark: calibration_report on 10k labelled pairs with 2000 bootstrap resamples.

    python -m bench.calibration_bench [--labels 10000] [--resamples 2000] [--repeat 3]

Figures are ratios against baselines measured in the same run, on the same pairs:

* naive: the textbook bootstrap, a pure-Python loop that draws n indices per resample and
  recounts the confusion matrix (timed on a tenth of the resamples, scaled linearly);
* numpy-index: index resampling vectorised with numpy (a (chunk, n) index matrix per step).

tracesieve draws each resample as one multinomial over the distinct pair kinds (see
``tools/calibration/stats.py``), which is the same distribution at O(B) instead of O(B·n).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from server.storage.duckdb.calibration_sql import DuckDBCalibrationStore
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.labels_sql import DuckDBLabelStore
from tools.calibration import agreement as cal
from tools.calibration import stats
from tools.labels.labelling import NewLabel
from tools.models import Trace

T0 = 1_763_000_000_000


def build(path: Path, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A store with n traces, a human label each (20% fail) and a judge verdict each (~85% agreement)."""
    rng = np.random.default_rng(seed)
    human = rng.random(n) < 0.2
    judge = np.where(rng.random(n) < 0.85, human, ~human)
    store = DuckDBTraceStore(path)
    store.write_traces([Trace(trace_id=f"b{i:06d}", timestamp_ms=T0 - i * 60_000, name="agent") for i in range(n)])
    DuckDBLabelStore(store).append_labels([
        NewLabel(trace_id=f"b{i:06d}", criterion="grounded", value="fail" if human[i] else "pass", numeric_value=None,
                 reviewer="bench", rationale=None, source="bench", created_at_ms=T0) for i in range(n)], now_ms=T0)
    ids = [f"b{i:06d}" for i in range(n)]
    with store.writing() as con:
        con.execute("INSERT INTO scores (run_id, judge, trace_id, verdict, score, created_at_ms) "
                    "SELECT 'run-1', 'grounded_judge', unnest($ids), unnest($v), unnest($s), $at",
                    {"ids": ids, "v": ["fail" if j else "pass" for j in judge],
                     "s": rng.random(n).round(3).tolist(), "at": T0})
    return human.astype(np.int8), judge.astype(np.int8)


def ours(path: Path, resamples: int) -> tuple[float, cal.CalibrationReportResult]:
    calib = DuckDBCalibrationStore(DuckDBTraceStore(path))
    started = time.perf_counter()
    with calib.session():
        result = cal.calibration_report(calib, cal.CalibrationReportInput(
            judge="grounded_judge", criterion="grounded", resamples=resamples, window="week"), now_ms=T0,
            record=False)
    return time.perf_counter() - started, result


def naive_python(y: np.ndarray, p: np.ndarray, resamples: int, seed: int = 3) -> float:
    """Seconds for a pure-Python bootstrap of MCC (draw n indices, recount, compute)."""
    rng = random.Random(seed)
    ys, ps, n = y.tolist(), p.tolist(), len(y)
    idx = range(n)
    started = time.perf_counter()
    for _ in range(resamples):
        tp = fp = fn = tn = 0
        for i in rng.choices(idx, k=n):
            if ys[i]:
                if ps[i]:
                    tp += 1
                else:
                    fn += 1
            elif ps[i]:
                fp += 1
            else:
                tn += 1
        den = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
        _ = (tp * tn - fp * fn) / den if den else 0.0
    return time.perf_counter() - started


def numpy_index(y: np.ndarray, p: np.ndarray, resamples: int, seed: int = 4) -> float:
    """Seconds for index resampling with numpy, chunked to bound memory."""
    rng = np.random.default_rng(seed)
    n = len(y)
    started = time.perf_counter()
    for start in range(0, resamples, 100):
        idx = rng.integers(0, n, size=(min(100, resamples - start), n))
        yy, pp = y[idx], p[idx]
        cells = np.stack([(yy & pp).sum(1), ((1 - yy) & pp).sum(1), (yy & (1 - pp)).sum(1),
                          ((1 - yy) & (1 - pp)).sum(1)], axis=1)
        stats.metrics_from_cells(cells)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        started = time.perf_counter()
        y, p = build(path, args.labels)
        setup = time.perf_counter() - started
        ours(path, 200)  # warm-up: imports (scikit-learn, scipy) and DuckDB caches
        runs = [ours(path, args.resamples) for _ in range(args.repeat)]
        report_s = statistics.median(t for t, _ in runs)
        result = runs[0][1]
        started = time.perf_counter()
        stats.bootstrap_intervals(y, p, resamples=args.resamples)
        boot_s = time.perf_counter() - started
        tenth = max(1, args.resamples // 10)
        naive_s = naive_python(y, p, tenth) * args.resamples / tenth
        index_s = numpy_index(y, p, args.resamples)
    out = {
        "labels": args.labels, "resamples": args.resamples, "setup_s": round(setup, 2),
        "calibration_report_s": round(report_s, 3), "bootstrap_only_s": round(boot_s, 4),
        "naive_python_bootstrap_s": round(naive_s, 2), "numpy_index_bootstrap_s": round(index_s, 3),
        "report_vs_naive": round(naive_s / report_s, 1), "bootstrap_vs_naive": round(naive_s / boot_s, 1),
        "bootstrap_vs_numpy_index": round(index_s / boot_s, 1),
        "mcc": round(result.metrics["mcc"].value or 0, 4),
        "mcc_ci": [round(result.metrics["mcc"].low or 0, 4), round(result.metrics["mcc"].high or 0, 4)],
    }
    print(f"calibration_report, {args.labels} labels, {args.resamples} resamples: {report_s:.3f} s "
          f"(median of {args.repeat}; MCC {out['mcc']} {out['mcc_ci']})")
    print(f"  bootstrap alone {boot_s * 1000:.1f} ms vs numpy index resampling {index_s:.2f} s "
          f"({out['bootstrap_vs_numpy_index']}x) vs pure-Python loop ~{naive_s:.1f} s ({out['bootstrap_vs_naive']}x)")
    print(f"  whole report vs the pure-Python bootstrap alone: {out['report_vs_naive']}x faster")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
