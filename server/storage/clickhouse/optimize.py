"""``tracesieve optimize`` on ClickHouse: fold the replacing tables' row versions now.

Every write to a ``ReplacingMergeTree`` table adds rows: a re-sent span, a re-derived trace row,
a tag set again, a tombstone (``is_deleted = 1``), a superseded score or dataset record. Reads fold
them with ``FINAL`` (``client.with_final``) every time, and background merges fold them on disk
only when ClickHouse gets round to it, maybe never for small parts. ``OPTIMIZE TABLE … FINAL``
merges each partition into one part now, keeping the newest version of each key, so ``FINAL``
reads do less work. Nothing a read returns changes: a tombstone still wins over what it deleted
(it stays, as one row, rather than being cleaned up, so an older copy sent later cannot come back).
It is safe beside writers: a merge swaps parts atomically and rows inserted meanwhile stay in
parts of their own.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from server.storage.clickhouse.client import REPLACING_TABLES, ClickHouseClient


class TableFold(BaseModel):
    table: str
    rows_before: int = Field(description="Rows stored (every version and tombstone) before the merge.")
    rows_after: int = Field(description="Rows stored after it: one per key, the newest version.")
    parts_before: int
    parts_after: int


class FoldReport(BaseModel):
    engine: str
    tables: list[TableFold]
    rows_folded: int = Field(description="Stored row versions merged away in all (reads return the same rows).")
    seconds: float


def _physical(client: ClickHouseClient) -> dict[str, tuple[int, int]]:
    """Rows and parts stored per replacing table (active parts of this node: a read without FINAL)."""
    rows = client.read("SELECT table, sum(rows), count() FROM system.parts WHERE database = {db:String} AND active "
                       "AND table IN {tables:Array(String)} GROUP BY table",
                       {"db": client.database, "tables": list(REPLACING_TABLES)})
    counted = {str(table): (int(n), int(parts)) for table, n, parts in rows}
    return {table: counted.get(table, (0, 0)) for table in REPLACING_TABLES}


def fold_replacing_tables(client: ClickHouseClient, *, engine: str, cluster: str | None = None) -> FoldReport:
    """``OPTIMIZE TABLE … FINAL`` on each replacing table (``ON CLUSTER`` on a cluster), with the
    stored rows and parts before and after (counted on the node this client talks to)."""
    started = time.perf_counter()
    before = _physical(client)
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    for table in REPLACING_TABLES:  # identifiers from the schema, never caller text
        if before[table][0]:
            client.command(f"OPTIMIZE TABLE {table}{on_cluster} FINAL")
    after = _physical(client)
    tables = [TableFold(table=t, rows_before=before[t][0], rows_after=after[t][0], parts_before=before[t][1],
                        parts_after=after[t][1]) for t in REPLACING_TABLES]
    return FoldReport(engine=engine, tables=tables, rows_folded=sum(t.rows_before - t.rows_after for t in tables),
                      seconds=round(time.perf_counter() - started, 2))
