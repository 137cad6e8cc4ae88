"""``python -m bench.scale_cpu --data-dir DIR --n TRACES ENGINE=STORE ...``: CPU seconds per call.

On a shared machine wall time says more about the neighbours than about the query; the CPU
time this process spends (chdb and DuckDB both run their threads inside it) is what a
capacity estimate needs: core-seconds per search, to multiply by searches per second. Each
case of ``bench.scale`` runs ``--runs`` times on stores ``bench.scale`` left behind (for example
``duckdb=/tmp/x/scale-2000000.duckdb chdb=/tmp/x/scale-2000000-chdb``); the median wall and
CPU seconds are printed, with the store's size, so per-span costs can be scaled.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from bench.datagen import ensure_dataset
from bench.scale import cases
from bench.tracesieve_side import TraceSieveSide
from server.storage.factory import StoreUrl, build_backend


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", help="ENGINE=PATH, e.g. chdb=/tmp/tracesieve-bench/scale/scale-1000000-chdb")
    parser.add_argument("--data-dir", type=Path, required=True, help="the --data-dir of the bench.scale run")
    parser.add_argument("--n", type=int, required=True, help="traces ingested by that run (its data folder nN-s1000)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    ds = ensure_dataset(args.n, data_dir=args.data_dir)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for spec in args.stores:
        engine, _, path = spec.partition("=")
        backend = build_backend(StoreUrl(engine, path=Path(path)))
        side = TraceSieveSide(ds, Path(path))
        side.store = backend.traces  # type: ignore[assignment]
        for title, fn in cases(side, backend, ds.sample_ids, ds.now_ms).items():
            fn()  # warm-up
            walls, cpus = [], []
            for _ in range(args.runs):
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            out.setdefault(title, {})[engine] = {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}
            print(f"{engine}: {title}: wall {out[title][engine]['wall_s']:.3f} s, CPU {out[title][engine]['cpu_s']:.3f} s",
                  file=sys.stderr, flush=True)
        if engine == "duckdb":
            backend.traces.release()  # type: ignore[attr-defined]
    engines = [s.partition("=")[0] for s in args.stores]
    print("| workload | " + " | ".join(f"{e} wall | {e} CPU" for e in engines) + " |")
    print("|---|" + "---:|---:|" * len(engines))
    for title, by in out.items():
        print(f"| {title} | " + " | ".join(
            f"{by[e]['wall_s'] * 1000:,.0f} ms | {by[e]['cpu_s'] * 1000:,.0f} ms" if e in by else "— | —"
            for e in engines) + " |")
    print(json.dumps(out), file=sys.stderr)


if __name__ == "__main__":
    main()
