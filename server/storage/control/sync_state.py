"""``tracesieve sync``'s state over a ClickHouse store: watermarks in the control plane, the
curation to push back read from ClickHouse.

The watermarks are small transactional state (c006): each move is one transaction under
``plane.lock`` on the source, and only ever forward, so two sync processes on one source never
move a mark back. What ``--push`` writes back (tags set or removed here, labels given here, on
traces from the source) is read from ClickHouse's ``tag_history`` and ``labels`` through the
client's de-duplicating reads, as the DuckDB ``SyncState`` reads them from its file.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from server.storage.clickhouse.client import ClickHouseClient
from server.storage.control.plane import ControlPlane

_GET = sa.text("SELECT watermark_ms, pushed_at_ms FROM sync_state WHERE source = :source")
_PUT = sa.text("""
    INSERT INTO sync_state (source, watermark_ms, pushed_at_ms, synced_at_ms)
    VALUES (:source, :watermark, :pushed, :now)
    ON CONFLICT (source) DO UPDATE SET watermark_ms = excluded.watermark_ms, pushed_at_ms = excluded.pushed_at_ms,
                                       synced_at_ms = excluded.synced_at_ms""")


class ControlSyncState:
    """Watermarks of one followed source, kept in the control plane of a ClickHouse store."""

    def __init__(self, plane: ControlPlane, client: ClickHouseClient, source: str) -> None:
        self.plane = plane
        self.client = client
        self.source = source

    def get(self) -> tuple[int | None, int | None]:
        """``(watermark_ms, pushed_at_ms)``; ``(None, None)`` before the first sync."""
        with self.plane.reading() as conn:
            row = conn.execute(_GET, {"source": self.source}).first()
        return (row[0], row[1]) if row else (None, None)

    def set(self, *, now_ms: int, watermark_ms: int | None = None, pushed_at_ms: int | None = None) -> None:
        """Move the watermarks forward (never back), in one transaction."""
        with self.plane.transaction() as conn:
            self.plane.lock(conn, "sync:" + self.source)
            old = conn.execute(_GET, {"source": self.source}).first() or (None, None)
            conn.execute(_PUT, {
                "source": self.source, "now": now_ms,
                "watermark": max((v for v in (old[0], watermark_ms) if v is not None), default=None),
                "pushed": max((v for v in (old[1], pushed_at_ms) if v is not None), default=None)})

    def curation_since(self, since_ms: int, source: str) -> dict[str, list[dict[str, Any]]]:
        """Tags set or removed and labels given here (not imported) after ``since_ms``, on traces
        that came from ``source`` (``traces.source``): what ``--push`` writes back."""
        params = {"src": source, "since": since_ms}
        from_source = "SELECT trace_id FROM traces WHERE source = {src:String}"
        tags = self.client.read_dicts(f"""
            SELECT trace_id, key, value, op, at_ms FROM tag_history
            WHERE trace_id IN ({from_source}) AND at_ms > {{since:Int64}}
              AND NOT startsWith(coalesce(set_by, ''), 'ingest:')
            ORDER BY at_ms, trace_id, key""", params)
        labels = self.client.read_dicts(f"""
            SELECT trace_id, criterion, value, numeric_value, reviewer, rationale, created_at_ms FROM labels
            WHERE trace_id IN ({from_source}) AND created_at_ms > {{since:Int64}}
              AND coalesce(source, '') != {{src:String}}
            ORDER BY created_at_ms, trace_id""", params)
        return {"tags": tags, "labels": labels}
