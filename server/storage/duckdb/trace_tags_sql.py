"""``traces.tags``: each trace's current tags as one JSON object, kept in step with ``tags``.

The ``tags`` table is the record (one row per key, with who set it and when; ``tag_history``
holds the changes). Filters and result pages read the copy on the trace row instead: testing
``tags.environment = 'production'`` as a join against every tag row cost 170 ms at 1M traces,
while the same test on the trace row runs only over the row groups a search's time window
reads (about 2 ms), and a page's tags come with its rows instead of a second query.

The copy is JSON text, not a ``MAP``: DuckDB updates a text column in place, but an update to a
nested column rewrites the row at the end of the table (50 s to retag 1M traces, and the time
order that windowed searches rely on would be lost). The text is always written by DuckDB's own
JSON encoder (``to_json`` at ingest, ``json_merge_patch`` when a tag changes), so a filter can
look for the exact encoded ``"key":"value"`` pair with ``contains`` before it parses anything
(see ``filter_sql``).

Every write to ``tags`` updates the copy of the traces it touched, in the same transaction.
"""

from __future__ import annotations

import duckdb

#: One JSON object per trace with at least one tag, for the trace ids ``{ids}`` selects.
_DOCS = """
    SELECT g.trace_id, to_json(map(list(g.key ORDER BY g.key), list(g.value ORDER BY g.key))) AS doc
    FROM tags g WHERE g.trace_id IN ({ids}) GROUP BY g.trace_id"""

#: The document of a trace without tags.
EMPTY = "{}"



def docs_sql(ids_sql: str) -> str:
    """``SELECT trace_id, doc`` for the traces ``ids_sql`` selects that have tags (join LEFT and
    coalesce to ``EMPTY`` for the rest)."""
    return _DOCS.format(ids=ids_sql)


def patch(con: duckdb.DuckDBPyConnection, rowids_sql: str, key: str, value: str | None) -> None:
    """Set ``key`` to ``value`` (remove it, if None) in ``traces.tags`` of the rows ``rowids_sql``
    selects (``SELECT <rowid> …``, which may use ``$key`` and ``$value``: they are bound to these).
    By row id, since the caller found the rows already, and a join on ``trace_id`` would scan
    every trace in the table again (50 ms at 1M traces)."""
    con.execute(f"UPDATE traces SET tags = json_merge_patch(tags, json_object($key, $value)) "
                f"WHERE rowid IN ({rowids_sql})", {"key": key, "value": value})
