"""What a time-bounded search reads on ClickHouse: ``EXPLAIN indexes = 1`` of the filter the search
compiles, over ``FINAL`` as every read is, against the same read without ``FINAL``.

Under ``FINAL`` ClickHouse skips the partition min-max step for ``timestamp_ms`` (not a sorting-key
column; see ``server/storage/clickhouse/migrations.py``), and the primary key, whose first element is
the day, must then drop the parts of the older partition by itself. This checks it does, so a store
with months of partitions reads only the partitions of the window it asks for.
"""

from __future__ import annotations

import re

import pytest

from server.storage.backend import Backend
from server.storage.clickhouse.filter_sql import compile_filter
from tests.factory import BASE_MS, trace
from tools.filters.parser import parse

DAY_MINUTES = 24 * 60


def _explain(backend: Backend, sql: str, params: dict) -> dict[str, tuple[int, int]]:
    """Parts read / in table per index step of ``EXPLAIN indexes = 1``."""
    raw = backend.traces.client.raw  # type: ignore[attr-defined]
    text = "\n".join(r[0] for r in raw.query(f"EXPLAIN indexes = 1 {sql}", parameters=params).result_rows)
    steps: dict[str, tuple[int, int]] = {}
    for step in ("Min-Max", "Partition", "PrimaryKey"):
        found = re.search(step + r"\n(?:.*\n)*?\s*Parts: (\d+)/(\d+)", text)
        if found:
            steps[step] = (int(found.group(1)), int(found.group(2)))
    return steps


@pytest.mark.parametrize("engine", ["chdb", "clickhouse"], indirect=True)
def test_a_time_bounded_final_read_skips_the_older_partitions_parts(engine: str, empty_backend: Backend) -> None:
    store = empty_backend.traces
    # Two 30-day partitions, two inserts each (parts: 2 old, 2 new): days 0-1 and days 61-62.
    for first_day in (0, 1, 61, 62):
        store.write_traces([trace(f"d{first_day}-{i}", first_day * DAY_MINUTES + i) for i in range(5)])
    bound = BASE_MS + 60 * DAY_MINUTES * 60_000
    where, params = compile_filter(parse(f"attributes.timestamp_ms > {bound}"), now_ms=bound)
    client = store.client  # type: ignore[attr-defined]
    assert client.read(f"SELECT count() FROM traces AS t WHERE {where}", params) == [(10,)]

    parts = client.read("SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'traces' "
                        "AND active")[0][0]
    final = _explain(empty_backend, f"SELECT count() FROM traces AS t FINAL WHERE {where}", params)
    plain = _explain(empty_backend, f"SELECT count() FROM traces AS t WHERE {where}", params)
    # FINAL: the partition steps skip nothing …
    assert parts >= 4 and final["Min-Max"] == final["Partition"] == (parts, parts)
    assert final["PrimaryKey"] == (parts // 2, parts)  # … the primary key drops the older partition's parts …
    assert plain["Min-Max"] == (parts // 2, parts) and plain["PrimaryKey"][0] == parts // 2  # … as a plain read does
