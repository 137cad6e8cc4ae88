"""Build a large store from an ingested one by copying it k times with fresh trace ids.

Used for the 1M size when the product ingest cannot finish within the session on this shared
2-core machine (BENCHMARKS.md says which figures come from such a store). Copy ``i`` keeps every
row and gives each trace a fresh 32-hex id (md5 of the id and ``i``); timestamps are unchanged,
so each copy has the same 21-day shape and the 24 h window holds k times the traces, as a
k-times bigger generation would. Rows are written in time order, as a store that receives its
traces as they happen holds them (DuckDB's per-row-group min/max then let time-bounded reads skip
most of the file). ``environment`` tags are copied to every copy, ``eval_candidate`` tags only to
copy 0 (so ~10k traces stay tagged, as in the generated set).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb

from server.storage.duckdb.store import DuckDBTraceStore


def replicate(src: Path, dst: Path, copies: int) -> dict[str, float]:
    for stale in (dst, dst.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    DuckDBTraceStore(dst).release()  # create + migrate with the product's schema, then let go of the file
    t0 = time.perf_counter()
    con = duckdb.connect(str(dst), config={"memory_limit": "8GB", "preserve_insertion_order": True})
    con.execute(f"ATTACH '{src}' AS src (READ_ONLY)")
    # A fresh 32-hex id per copy (md5 of id and copy number): rewriting a prefix collided with originals.
    new_id = "CASE WHEN c.i = 0 THEN x.trace_id ELSE md5(x.trace_id || ':' || c.i) END"
    copies_sql = f"range({int(copies)}) c(i)"
    con.execute("BEGIN")
    con.execute(f"""INSERT INTO traces SELECT x.* REPLACE ({new_id} AS trace_id) FROM src.traces x, {copies_sql}
                    ORDER BY x.timestamp_ms""")
    con.execute(f"""INSERT INTO spans SELECT x.* REPLACE ({new_id} AS trace_id) FROM src.spans x, {copies_sql}
                    ORDER BY x.start_time_ns""")
    for table in ("tags", "tag_history"):
        con.execute(f"""INSERT INTO {table} SELECT x.* REPLACE ({new_id} AS trace_id) FROM src.{table} x, {copies_sql}
                        WHERE x.key = 'environment' OR c.i = 0""")
    con.execute("COMMIT")
    con.execute("DETACH src")
    con.execute("CHECKPOINT")
    traces, spans = con.execute("SELECT count(*), sum(span_count) FROM traces").fetchone()
    con.close()
    return {"seconds": time.perf_counter() - t0, "traces": traces, "spans": int(spans)}


if __name__ == "__main__":
    print(replicate(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
