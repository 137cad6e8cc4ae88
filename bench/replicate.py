"""Build a large store from an ingested one by copying it k times with fresh trace ids.

Used for the 1M size when the product ingest cannot finish within the session on this shared
2-core machine (BENCHMARKS.md says which figures come from such a store). Copy ``i`` keeps every
row and rewrites the trace id's first two hex digits to ``i`` (ids stay 32 hex and distinct);
timestamps are unchanged, so each copy has the same 21-day shape and the 24 h window holds k
times the traces, as a k-times bigger generation would. ``environment`` tags are copied to every
copy, ``eval_candidate`` tags only to copy 0 (so ~10k traces stay tagged, as in the generated set).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb

from server.storage.duckdb_store import DuckDBTraceStore


def replicate(src: Path, dst: Path, copies: int) -> dict[str, float]:
    for stale in (dst, dst.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    DuckDBTraceStore(dst)  # create + migrate with the product's schema
    t0 = time.perf_counter()
    con = duckdb.connect(str(dst))
    con.execute(f"ATTACH '{src}' AS src (READ_ONLY)")
    # A fresh 32-hex id per copy (md5 of id and copy number): rewriting a prefix collided with originals.
    new_id = "CASE WHEN $i = 0 THEN trace_id ELSE md5(trace_id || ':' || $i) END"
    for i in range(copies):
        con.execute("BEGIN")
        con.execute(f"INSERT INTO traces SELECT * REPLACE ({new_id} AS trace_id) FROM src.traces", {"i": i})
        con.execute(f"INSERT INTO spans SELECT * REPLACE ({new_id} AS trace_id) FROM src.spans", {"i": i})
        con.execute(f"""INSERT INTO tags SELECT * REPLACE ({new_id} AS trace_id) FROM src.tags
                        WHERE key = 'environment' OR $i = 0""", {"i": i})
        con.execute(f"""INSERT INTO tag_history SELECT * REPLACE ({new_id} AS trace_id) FROM src.tag_history
                        WHERE key = 'environment' OR $i = 0""", {"i": i})
        con.execute("COMMIT")
    con.execute("DETACH src")
    con.execute("CHECKPOINT")
    traces, spans = con.execute("SELECT count(*), sum(span_count) FROM traces").fetchone()
    con.close()
    return {"seconds": time.perf_counter() - t0, "traces": traces, "spans": int(spans)}


if __name__ == "__main__":
    print(replicate(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
