"""``python -m bench.run``: tracesieve vs MLflow on the same generated traces, side by side.

    python -m bench.run --quick                     # smoke run: 200 traces, 1 repeat (~1 min)
    python -m bench.run                             # 10k, 100k, 1M; MLflow at 10k and 100k
    python -m bench.run --sizes 1000000 --skip-mlflow --reuse

Each size: generate (or reuse) demo-shaped OTLP/JSON files, ingest them into a fresh tracesieve
store and into MLflow (sqlite) with its own bulk path, then ask both the same questions with a
warm-up and repeats. Results go to ``<data-dir>/results/n<N>.json`` and the markdown tables to
``<data-dir>/report.md`` (and stdout). Figures are ratios against MLflow measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import report
from bench.datagen import default_data_dir, ensure_dataset
from bench.measure import Timing, machine
from bench.workloads import THROUGHPUT

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
#: MLflow's own bulk path logs ~70 traces/s here (371 spans/s on a quiet machine): 100k traces take
#: ~24 min of loading and 1M would take ~4 h, so the baseline stops at 100k unless told otherwise.
MLFLOW_MAX = 100_000
QUICK_SIZE = 200


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("duckdb", "mlflow", "mcp", "pyarrow", "pandas", "sqlalchemy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "?"
    try:
        out["tracesieve"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                           cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    except OSError:
        pass
    import sqlite3
    out["sqlite"] = sqlite3.sqlite_version
    return out


def timings_json(timings: dict[str, Timing]) -> dict[str, Any]:
    out = {}
    for key, t in timings.items():
        d = t.as_dict()
        if key in THROUGHPUT:
            d["count"] = t.result
        out[key] = d
    return out


def answers(ts: dict[str, Timing], ml: dict[str, Timing]) -> dict[str, str]:
    """Do both systems give the same numbers for the seed's analysis questions?"""
    out = {}
    a, b = ts.get("analysis.error_rate_24h"), ml.get("analysis.error_rate_24h")
    if a and b:
        total, errors, _, p50, p95 = a.result[0][0]
        r = b.result
        same = (total, errors) == (r["total"], r["errors"]) and abs(p50 - r["p50_ms"]) < 1 and abs(p95 - r["p95_ms"]) < 1
        out["error_rate_24h"] = (f"{'same' if same else 'DIFFERENT'}: tracesieve {total} traces, {errors} errors, "
                                 f"p50 {p50:.0f} ms, p95 {p95:.0f} ms; MLflow {r['total']}, {r['errors']}, "
                                 f"{r['p50_ms']:.0f}, {r['p95_ms']:.0f}")
    a, b = ts.get("analysis.span_latency_window"), ml.get("analysis.span_latency_window")
    if a and b:
        mine = {row[0]: row[1] for row in a.result[0]}
        theirs = {k.split(".")[-1]: v[0] for k, v in b.result.items()}
        out["span_latency_window"] = ("same span counts per type" if mine == theirs
                                      else f"DIFFERENT: tracesieve {mine}, MLflow {theirs}")
    return out


def run_size(n: int, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    results_path = data_dir / "results" / f"n{n}.json"
    previous = json.loads(results_path.read_text()) if results_path.exists() and (args.reuse or args.load_only) else {}
    ds = ensure_dataset(n, data_dir=data_dir, log=log)
    if args.replicate_from:
        ds, previous = replicated(n, args.replicate_from, data_dir, previous)
    record: dict[str, Any] = {"n": n, "spans": ds.spans, "otlp_bytes": ds.bytes, "tagged": len(ds.tagged),
                              "now_ms": ds.now_ms, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    repeats, budget = args.repeats, args.budget

    from bench.tracesieve_side import TraceSieveSide, mcp_roundtrip

    if args.load_only:
        return load_only(n, ds, args, data_dir, previous, record, results_path)
    log(f"[{n:,}] tracesieve: ingest")
    ts = TraceSieveSide(ds, data_dir / f"ts-n{n}.duckdb")
    load = ts.load(reuse=args.reuse) or (previous.get("tracesieve") or {}).get("load")
    log(f"[{n:,}] tracesieve: questions")
    ts_t = ts.run(repeats=repeats, budget_s=budget)
    record["tracesieve"] = {"load": load, "timings": timings_json(ts_t)}
    if args.experiments:
        from bench.experiments import HeldConnectionStore

        log(f"[{n:,}] tracesieve experiment: held connection")
        held = TraceSieveSide(ds, ts.db_path)
        held.store = HeldConnectionStore(ts.db_path)
        held_t = held.run(repeats=repeats, budget_s=budget)
        held.store.close()
        record["tracesieve_held"] = {"timings": timings_json(held_t)}
    if not args.no_mcp:
        log(f"[{n:,}] tracesieve: MCP over stdio")
        m = mcp_roundtrip(ts, repeats=repeats, calls=20 if args.quick else 100)
        record["mcp"] = {"mcp_median_s": m["mcp"].median, "mcp_p95_s": m["mcp"].p95,
                         "direct_median_s": m["direct"].median, "rss_peak": m.get("rss_peak"),
                         "rss_idle": m.get("rss_idle")}
    if not args.skip_mlflow and n <= args.mlflow_max:
        from bench.mlflow_baseline import MlflowSide

        log(f"[{n:,}] mlflow: load")
        ml = MlflowSide(ds, data_dir / f"mlflow-n{n}")
        ml_load = ml.load(reuse=args.reuse, log=log) or (previous.get("mlflow") or {}).get("load")
        log(f"[{n:,}] mlflow: questions")
        ml_t = ml.run(repeats=repeats, budget_s=budget * 4)
        record["mlflow"] = {"load": ml_load, "timings": timings_json(ml_t)}
        record["answers"] = answers(ts_t, ml_t)
    elif previous.get("mlflow") and args.reuse:
        record["mlflow"] = previous["mlflow"]
    else:
        record["mlflow_skipped"] = ("--skip-mlflow" if args.skip_mlflow
                                    else f"above --mlflow-max {args.mlflow_max:,} (loading time)")
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(record, indent=1, default=str))
    return record


def replicated(n: int, src_n: int, data_dir: Path, previous: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The size-``n`` store as ``n / src_n`` copies of the ingested ``src_n`` store (bench/replicate.py).

    Returns the dataset description to ask questions with (the source's ids, clock and tags,
    with this size's counts) and a results record whose load entry says how the store was made.
    """
    import dataclasses

    from bench.replicate import replicate

    src = ensure_dataset(src_n, data_dir=data_dir, log=log)
    db = data_dir / f"ts-n{n}.duckdb"
    marker = db.with_suffix(".complete")
    info = (previous.get("tracesieve") or {}).get("load") or {}
    if not (marker.exists() and db.exists() and info.get("replicated_from") == src_n):
        log(f"[{n:,}] tracesieve: replicating the {src_n:,}-trace store {n // src_n}x")
        made = replicate(data_dir / f"ts-n{src_n}.duckdb", db, n // src_n)
        info = {"replicated_from": src_n, "replicate": made, "db_bytes": db.stat().st_size}
        marker.write_text(str(time.time()))
    spans = info["replicate"]["spans"]
    ds = dataclasses.replace(src, n=info["replicate"]["traces"], spans=spans)
    return ds, {**previous, "tracesieve": {**(previous.get("tracesieve") or {}), "load": info}}


def load_only(n: int, ds: Any, args: argparse.Namespace, data_dir: Path, previous: dict[str, Any],
              record: dict[str, Any], results_path: Path) -> dict[str, Any]:
    """Fill the stores (for a later ``--reuse`` run) and keep the load figures in the results."""
    record = {**previous, **record}
    if args.only in (None, "tracesieve"):
        from bench.tracesieve_side import TraceSieveSide

        log(f"[{n:,}] tracesieve: ingest (load only)")
        load = TraceSieveSide(ds, data_dir / f"ts-n{n}.duckdb").load(reuse=True)
        if load:
            record["tracesieve"] = {**(previous.get("tracesieve") or {}), "load": load}
    if args.only in (None, "mlflow") and not args.skip_mlflow:
        from bench.mlflow_baseline import MlflowSide

        log(f"[{n:,}] mlflow: load (load only)")
        load = MlflowSide(ds, data_dir / f"mlflow-n{n}").load(reuse=True, log=log)
        if load:
            record["mlflow"] = {**(previous.get("mlflow") or {}), "load": load}
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(record, indent=1, default=str))
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_SIZE} traces, 1 repeat")
    p.add_argument("--sizes", default=None, help="comma-separated trace counts (default 10000,100000,1000000)")
    p.add_argument("--skip-mlflow", action="store_true", help="measure tracesieve only")
    p.add_argument("--mlflow-max", type=int, default=MLFLOW_MAX, help="largest size MLflow is loaded at")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per workload (default 7; quick 1)")
    p.add_argument("--budget", type=float, default=None, help="seconds per workload before stopping repeats")
    p.add_argument("--data-dir", type=Path, default=None, help="where data and stores go (/tmp/tracesieve-bench)")
    p.add_argument("--reuse", action="store_true", help="reuse complete stores from an earlier run (ingest figures "
                                                          "then come from that run's results)")
    p.add_argument("--no-mcp", action="store_true", help="skip the stdio round trip / server RSS")
    p.add_argument("--experiments", action="store_true", help="also run the held-connection experiment")
    p.add_argument("--load-only", action="store_true", help="only fill the stores (timed); ask nothing")
    p.add_argument("--only", choices=("tracesieve", "mlflow"), default=None, help="with --load-only: one system")
    p.add_argument("--replicate-from", type=int, default=None,
                   help="build each size's store by copying the ingested store of this size (see bench/replicate.py)")
    p.add_argument("--report", type=Path, default=None, help="write the markdown here too")
    args = p.parse_args(argv)
    from bench.mlflow_baseline import OFFLINE_ENV

    os.environ.update(OFFLINE_ENV)  # before anything imports mlflow
    sizes = [QUICK_SIZE] if args.quick and not args.sizes else [
        int(s.replace("_", "")) for s in (args.sizes or ",".join(map(str, DEFAULT_SIZES))).split(",")]
    args.reuse = args.reuse or bool(args.replicate_from)
    args.repeats = args.repeats or (1 if args.quick else 7)
    args.budget = args.budget or (5.0 if args.quick else 20.0)
    data_dir = args.data_dir or (default_data_dir() / "quick" if args.quick else default_data_dir())
    data_dir.mkdir(parents=True, exist_ok=True)
    records = [run_size(n, args, data_dir) for n in sizes]
    if args.load_only:
        print(json.dumps(records, indent=1, default=str))
        return 0
    header = {"machine": machine(), "versions": versions(), "command": "python -m bench.run " + " ".join(
        argv if argv is not None else sys.argv[1:])}
    text = (f"Machine: {header['machine']}\n\nVersions: {header['versions']}\n\nCommand: `{header['command']}`\n\n"
            + report.render(records))
    (data_dir / "report.md").write_text(text)
    (data_dir / "results" / "last_run.json").write_text(json.dumps({**header, "records": records}, default=str))
    if args.report:
        args.report.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
