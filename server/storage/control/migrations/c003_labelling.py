"""Control migration c003 (labelling): the annotation queue's draws and the labelling page's state.

The small, transactional rows of labelling, mirroring DuckDB's m004 (``queue_items``) and m010
(the rest); the labels themselves are big and append-only and live in ClickHouse (M003).

* ``queue_items``: every item ``annotation_queue`` handed out, with its selection probability (for
  Horvitz-Thompson reweighting); a queue is written in one transaction, so it is stored whole.
* ``reviewers``: who may use ``/label``; only the SHA-256 of a token is kept. A partial unique index
  allows one active reviewer per name, so two servers adding the same name at once cannot both win.
* ``review_skips``: "skip" is not a label; it only moves that reviewer on.
* ``criteria``: failure modes proposed from the page, unique by name for the same reason.
* ``reveal_log``: every time a lead showed a redacted field: who, which trace and field, when.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

_ID = 500  # trace ids are up to 500 characters (tools.labels.labelling.TraceId)
_NAME = 200


def upgrade(op: Operations) -> None:
    op.create_table(
        "queue_items",
        sa.Column("queue_id", sa.String(_NAME), nullable=False),
        sa.Column("criterion", sa.String(_NAME), nullable=False),
        sa.Column("trace_id", sa.String(_ID), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("priority", sa.Double, nullable=False),
        sa.Column("selected_by", sa.String(20), nullable=False),
        sa.Column("selection_probability", sa.Double, nullable=False),
        sa.Column("reasons", sa.Text),
        sa.Column("population", sa.BigInteger, nullable=False),
        sa.Column("filter", sa.Text),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("queue_id", "rank", name="pk_queue_items"),
    )
    op.create_index("ix_queue_items_latest", "queue_items", ["criterion", "created_at_ms"])
    op.create_index("ix_queue_items_trace", "queue_items", ["trace_id", "criterion"])
    op.create_table(
        "reviewers",
        sa.Column("name", sa.String(_NAME), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger),
    )
    op.create_index("ux_reviewers_active_name", "reviewers", ["name"], unique=True,
                    sqlite_where=sa.text("revoked_at_ms IS NULL"), postgresql_where=sa.text("revoked_at_ms IS NULL"))
    op.create_table(
        "review_skips",
        sa.Column("reviewer", sa.String(_NAME), nullable=False),
        sa.Column("trace_id", sa.String(_ID), nullable=False),
        sa.Column("criterion", sa.String(_NAME), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_review_skips", "review_skips", ["reviewer", "criterion", "trace_id"])
    op.create_table(
        "criteria",
        sa.Column("name", sa.String(_NAME), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("scale_min", sa.Double),
        sa.Column("scale_max", sa.Double),
        sa.Column("proposed_by", sa.String(_NAME), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "reveal_log",
        sa.Column("reviewer", sa.String(_NAME), nullable=False),
        sa.Column("trace_id", sa.String(_ID), nullable=False),
        sa.Column("field", sa.String(_NAME), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_reveal_log", "reveal_log", ["trace_id", "created_at_ms"])
