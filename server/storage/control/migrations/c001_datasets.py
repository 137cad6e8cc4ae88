"""Control-plane migration c001: the ``datasets`` table, one header row per committed version.

The columns are the DuckDB store's ``datasets`` (JSON as TEXT, ms timestamps as BIGINT) plus
``records_batch``: the id under which this version's records were written to ClickHouse's
``dataset_records``. A version is visible once this row commits, and its readers read only that
batch, so records of an uncommitted or losing write are never seen. ``(name, version)`` is the
primary key: a second insert of a version fails even if a writer skipped the lock.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations


def upgrade(op: Operations) -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(110), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("strata", sa.Text),
        sa.Column("redaction_report", sa.Text),
        sa.Column("parent_version", sa.Integer),
        sa.Column("records_batch", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_datasets"),
    )
