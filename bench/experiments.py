"""Local experiments behind the fixes BENCHMARKS.md proposes (bench-only; the store is unchanged).

``HeldConnectionStore`` is ``DuckDBTraceStore`` with one connection kept open for the life of
the object instead of one per call. It answers: how much of a search is opening the file?
(query_sql here runs on the held connection without the sandbox settings, which only matter
for safety, not speed.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from server.storage.duckdb.store import DuckDBTraceStore
from tools.ports import SqlResult


class HeldConnectionStore(DuckDBTraceStore):
    def __init__(self, path: Path | str) -> None:
        self._held = duckdb.connect(str(Path(path).expanduser().resolve()))
        super().__init__(path)  # migrations run on the held connection

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._held.cursor() as cur:
            yield cur

    writing = reading

    def query_sql(self, sql: str, *, limit: int) -> SqlResult:
        with self.reading() as cur:
            cursor = cur.execute(sql)
            rows = cursor.fetchmany(limit + 1)
            return SqlResult(columns=[d[0] for d in cursor.description], rows=[list(r) for r in rows[:limit]],
                             truncated=len(rows) > limit)

    def close(self) -> None:
        self._held.close()
