"""One store's load for ``bench.scale``, run in its own process so its peak RSS is its own.

``python -m bench.scale_load ENGINE STORE_PATH DATA_DIR COPIES`` prints one JSON line:

1. **ingest** of every generated OTLP file as ``tracesieve ingest`` does on that engine
   (``ingest_files``: reading processes for DuckDB, one process for ClickHouse, which takes
   ``Trace`` objects rather than DuckDB's Arrow tables), timed; then the bench's tags (``environment``
   by filter, ``eval_candidate`` by ids, as in ``bench.run``), timed apart;
2. **replication** to ``COPIES`` times the traces, server-side, with the same new ids on both
   engines (md5 of the id and the copy number, as ``bench.replicate`` does for DuckDB), because
   pushing tens of millions of spans through the Python ingest does not fit the session on this
   shared 2-core machine; the ingest rate is measured on step 1 and said to be so.

Peak RSS is ``VmHWM`` of this process, and for the reading workers the largest child's
``ru_maxrss``, read before exit.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.datagen import ensure_dataset
from bench.measure import proc_status, time_once
from bench.replicate import replicate
from bench.tracesieve_side import TraceSieveSide
from server.ingestion import list_files
from server.ingestion.parallel import ingest_files
from server.storage.factory import StoreUrl, build_backend

#: ClickHouse's spelling of ``bench.replicate``'s new id, ``md5(id || ':' || copy)`` as 32 lowercase hex
#: (with an empty salt: the same ids as the DuckDB copies).
CH_NEW_ID = "lower(hex(MD5(concat(x.trace_id, ':', {salt:String}, toString(c.number)))))"


def folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + ".wal"))
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def ingest_and_tag(engine: str, store_path: Path, data_dir: Path, n: int) -> dict[str, Any]:
    """Steps 1 of the module docstring, on a fresh store."""
    ds = ensure_dataset(n, data_dir=data_dir, log=lambda *a: None)
    backend = build_backend(StoreUrl(engine, path=store_path))
    workers = None if engine == "duckdb" else 1  # as server/cli/main.py's ingest chooses
    seconds, report = time_once(lambda: ingest_files(backend.traces, list_files(ds.dir), "otlp",  # type: ignore[arg-type]
                                                     workers=workers))
    if report.error_count:
        raise RuntimeError(f"ingest reported errors: {report.errors[:3]}")
    side = TraceSieveSide(ds, store_path)
    side.store = backend.traces  # type: ignore[assignment]  # the tool calls take any TraceStore
    tags = side._apply_tags()
    return {"ingest_s": seconds, "ingest_traces": report.traces, "ingest_spans": report.spans_new,
            "ingest_rate": report.spans_new / seconds, **tags, "backend": backend}


def replicate_clickhouse(backend: Any, copies: int, salt: str = "") -> None:
    """Copies 1..copies-1 of every stored trace, read ``FINAL`` and inserted server-side (one statement
    per table): spans, traces and ``environment`` tags for every copy, other tags for copy 0 only.
    ``salt`` keeps a second round of copies (growing the store again) from reusing the first's ids."""
    client = backend.traces.client
    for table, where in (("spans", ""), ("traces", ""), ("tags", "WHERE x.key = 'environment'"),
                         ("tag_history", "WHERE x.key = 'environment'")):
        columns = [r[0] for r in client.read("SELECT name FROM system.columns WHERE database = currentDatabase() "
                                             "AND table = {t:String} ORDER BY position", {"t": table})]
        select = ", ".join(CH_NEW_ID if c == "trace_id" else f"x.{c}" for c in columns)
        client.command(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table} AS x, "
                       f"numbers(1, {int(copies) - 1}) AS c {where}", {"salt": salt})


def main(argv: list[str]) -> None:
    engine, store_path, data_dir, n, copies = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3]), int(argv[4])
    out: dict[str, Any] = {"engine": engine}
    if engine == "duckdb":
        base = store_path.with_name(store_path.stem + "-base.duckdb")
        for stale in (base, base.with_suffix(".duckdb.wal"), store_path, store_path.with_suffix(".duckdb.wal")):
            stale.unlink(missing_ok=True)
        loaded = ingest_and_tag(engine, base, data_dir, n)
        loaded.pop("backend").traces.release()
        out.update(loaded)
        out["ingested_store_bytes"] = folder_bytes(base)
        out["ingest_peak_rss"] = max(proc_status().get("VmHWM", 0),
                                     resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
        started = time.perf_counter()
        copied = replicate(base, store_path, copies)  # rewrites in time order, as `tracesieve optimize` leaves it
        out["replicate_s"] = time.perf_counter() - started
        out.update(traces=copied["traces"], spans=copied["spans"])
        base.unlink()
    else:
        shutil.rmtree(store_path, ignore_errors=True)
        loaded = ingest_and_tag(engine, store_path, data_dir, n)
        backend = loaded.pop("backend")
        out.update(loaded)
        out["ingested_store_bytes"] = folder_bytes(store_path)
        out["ingest_peak_rss"] = proc_status().get("VmHWM", 0)
        started = time.perf_counter()
        if copies > 1:
            replicate_clickhouse(backend, copies)
        out["replicate_s"] = time.perf_counter() - started
        traces, spans = backend.traces.client.read("SELECT count(), sum(span_count) FROM traces")[0]
        out.update(traces=int(traces), spans=int(spans))
        backend.traces.release()
    out["store_bytes"] = folder_bytes(store_path)
    out["peak_rss"] = max(proc_status().get("VmHWM", 0), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
