"""``tracesieve sync``'s state and the curation it pushes back, read and written in the store."""

from __future__ import annotations

from typing import Any

from server.storage.duckdb.connection import fetch_dicts
from server.storage.duckdb.store import DuckDBTraceStore


class SyncState:
    """Watermarks of one followed source (see migration 8)."""

    def __init__(self, store: DuckDBTraceStore, source: str) -> None:
        self.store = store
        self.source = source

    def get(self) -> tuple[int | None, int | None]:
        """``(watermark_ms, pushed_at_ms)``; ``(None, None)`` before the first sync."""
        with self.store.reading() as con:
            row = con.execute("SELECT watermark_ms, pushed_at_ms FROM sync_state WHERE source = $s",
                              {"s": self.source}).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def set(self, *, now_ms: int, watermark_ms: int | None = None, pushed_at_ms: int | None = None) -> None:
        """Move the watermarks forward (never back), in one transaction."""
        with self.store.transaction() as con:
            old = con.execute("SELECT watermark_ms, pushed_at_ms FROM sync_state WHERE source = $s",
                              {"s": self.source}).fetchone() or (None, None)
            con.execute("DELETE FROM sync_state WHERE source = $s", {"s": self.source})
            con.execute("INSERT INTO sync_state VALUES ($s, $w, $p, $now)", {
                "s": self.source, "now": now_ms,
                "w": max((v for v in (old[0], watermark_ms) if v is not None), default=None),
                "p": max((v for v in (old[1], pushed_at_ms) if v is not None), default=None)})

    def curation_since(self, since_ms: int, source: str) -> dict[str, list[dict[str, Any]]]:
        """Tags set or removed and labels given here (not imported) after ``since_ms``, on traces
        that came from ``source`` (``traces.source``): what ``--push`` writes back."""
        with self.store.reading() as con:
            tags = fetch_dicts(con.execute("""
                SELECT h.trace_id, h.key, h.value, h.op, h.at_ms FROM tag_history h
                JOIN traces t USING (trace_id)
                WHERE t.source = $src AND h.at_ms > $since AND coalesce(h.set_by, '') NOT LIKE 'ingest:%'
                ORDER BY h.at_ms, h.trace_id, h.key""", {"src": source, "since": since_ms}))
            labels = fetch_dicts(con.execute("""
                SELECT l.trace_id, l.criterion, l.value, l.numeric_value, l.reviewer, l.rationale, l.created_at_ms
                FROM labels l JOIN traces t USING (trace_id)
                WHERE t.source = $src AND l.created_at_ms > $since AND coalesce(l.source, '') <> $src
                ORDER BY l.created_at_ms, l.trace_id""", {"src": source, "since": since_ms}))
        return {"tags": tags, "labels": labels}
