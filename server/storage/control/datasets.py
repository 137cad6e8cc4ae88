"""Dataset version headers in the control plane: one row per committed ``name@version``.

Why the header lives here and the records in ClickHouse: a version must become visible all at
once, and two servers must never merge two writes into one version. ClickHouse has no
multi-statement transactions, so the records are written there first under a batch id of their
own, and the version exists only once its header row commits here, naming that batch. Readers
take the batch id from the header, so records of a writer that lost the race, or died before
committing, are never read. The header is inserted under ``plane.lock(conn, "datasets:" + name)``
after checking, in the same transaction, that the version is still free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from server.storage.control.plane import ControlPlane

_metadata = sa.MetaData()

#: The table ``c001_datasets`` creates (the DuckDB store's ``datasets`` plus ``records_batch``).
DATASETS = sa.Table(
    "datasets", _metadata,
    sa.Column("name", sa.String(110), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
    sa.Column("strata", sa.Text),
    sa.Column("redaction_report", sa.Text),
    sa.Column("parent_version", sa.Integer),
    sa.Column("records_batch", sa.String(64), nullable=False),
)

#: Header columns without the (possibly large) spec, strata and redaction report.
_SUMMARY_COLUMNS = (DATASETS.c.name, DATASETS.c.version, DATASETS.c.record_count, DATASETS.c.created_at_ms,
                    DATASETS.c.description)


@dataclass(frozen=True)
class SummaryRow:
    name: str
    version: int
    record_count: int
    created_at_ms: int
    description: str | None


class DatasetHeaders:
    """Reads and the one guarded write of the ``datasets`` table."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def rows(self, name: str) -> list[dict[str, Any]]:
        """Every committed header of ``name``, oldest version first."""
        with self.plane.reading() as conn:
            result = conn.execute(sa.select(DATASETS).where(DATASETS.c.name == name).order_by(DATASETS.c.version))
            return [dict(r._mapping) for r in result]

    def summary_rows(self) -> list[SummaryRow]:
        with self.plane.reading() as conn:
            result = conn.execute(sa.select(*_SUMMARY_COLUMNS).order_by(DATASETS.c.name, DATASETS.c.version))
            return [SummaryRow(*r) for r in result]

    def batch_of(self, name: str, version: int) -> str | None:
        """The records batch a committed version reads, or None if ``name@version`` is not committed."""
        with self.plane.reading() as conn:
            return conn.execute(sa.select(DATASETS.c.records_batch).where(
                DATASETS.c.name == name, DATASETS.c.version == version)).scalar_one_or_none()

    def committed_batches(self) -> set[str]:
        """Every records batch some committed header names (the batches readers may read)."""
        with self.plane.reading() as conn:
            return set(conn.execute(sa.select(DATASETS.c.records_batch)).scalars())

    def taken(self, name: str, version: int) -> bool:
        return self.batch_of(name, version) is not None

    def commit(self, row: dict[str, Any]) -> bool:
        """Insert the header ``row`` unless its version was committed first; False if it was. The
        primary key backs the lock up: a duplicate that got past it is refused all the same."""
        try:
            with self.plane.transaction() as conn:
                self.plane.lock(conn, "datasets:" + row["name"])
                exists = conn.execute(sa.select(sa.literal(1)).where(
                    DATASETS.c.name == row["name"], DATASETS.c.version == row["version"])).first()
                if exists is not None:
                    return False
                conn.execute(DATASETS.insert().values(**row))
                return True
        except sa.exc.IntegrityError:
            return False
