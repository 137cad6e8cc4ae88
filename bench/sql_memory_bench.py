"""``python -m bench.sql_memory_bench``: peak memory of one big query_sql answer, each way in a fresh process.

The query is 1,000 rows of 1 MB text (``SELECT repeat('x', 1000000) FROM range(1000)``, ``limit=1000``).
query_sql now fetches 16 rows at a time, cuts cells to 2,000 characters and stops at 200,000 characters
of answer. The baseline, measured in the same run, is what it did before: ``fetchmany(limit + 1)`` (every
row in Python at once) and then the same cell cutting. Prints peak RSS (``ru_maxrss``) and answer size
for both, and their ratio.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

SQL = "SELECT repeat('x', 1000000) AS blob FROM range(1000)"


def _child(mode: str, db: str) -> None:
    from server.storage.duckdb.sql_sandbox import _plain
    from server.storage.duckdb.store import DuckDBTraceStore

    store = DuckDBTraceStore(db)
    if mode == "query_sql":
        result = store.query_sql(SQL, limit=1000)
        rows = result.rows
    else:
        with store._keeper.sandboxed_cursor(lock_timeout_s=10, idle_release_s=0) as cursor:
            rows = [[_plain(v) for v in row] for row in cursor.execute(SQL).fetchmany(1001)[:1000]]
    size = len(json.dumps(rows))
    print(json.dumps({"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "rows": len(rows), "answer_chars": size}))


def main() -> None:
    from server.storage.duckdb.store import DuckDBTraceStore

    db = Path(tempfile.mkdtemp(prefix="tracesieve-sqlmem-")) / "empty.duckdb"
    DuckDBTraceStore(db).release()
    report = {}
    for mode in ("query_sql", "baseline_fetch_all"):
        done = subprocess.run([sys.executable, "-m", "bench.sql_memory_bench", "--child", mode, str(db)],
                              capture_output=True, text=True, check=True)
        report[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    report["peak_rss_ratio_baseline_over_query_sql"] = round(
        report["baseline_fetch_all"]["peak_rss_mb"] / report["query_sql"]["peak_rss_mb"], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main()
