"""c006: ``sync_state``, one row per followed source (``tracesieve sync`` into a ClickHouse store).

The control-plane twin of DuckDB's migration 8. ``watermark_ms`` is the newest trace start time read
from the source; the next round reads from ``watermark_ms - overlap`` so late traces and spans are
not missed (span upserts make the re-read harmless). ``pushed_at_ms`` is how far tags and labels set
here have been written back to the source (``--push``). Both only move forward.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations


def upgrade(op: Operations) -> None:
    op.create_table(
        "sync_state",
        sa.Column("source", sa.String(2000), primary_key=True),
        sa.Column("watermark_ms", sa.BigInteger, nullable=True),
        sa.Column("pushed_at_ms", sa.BigInteger, nullable=True),
        sa.Column("synced_at_ms", sa.BigInteger, nullable=False),
    )
