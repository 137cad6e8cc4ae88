"""Control-plane migration c005 (monitors): monitor versions, the windows they ran, their alerts.

Mirrors DuckDB's m009 tables, with the keys DuckDB's single writer made unnecessary:

* ``monitors``: (name, version) and (name, seq) are unique, so two servers defining the same
  monitor at once store one version, and two different definitions get two sequence numbers.
* ``monitor_windows``: (monitor, version, end_ms) is the primary key, the unit of exactly-once:
  a second process claiming the same window hits the key (or waits on the claim lock) instead of
  running it twice.
* ``monitor_alerts``: keyed by the stable ``alert_id``; JSON columns are TEXT.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations


def upgrade(op: Operations) -> None:
    op.create_table(
        "monitors",
        sa.Column("name", sa.String(500), primary_key=True),
        sa.Column("version", sa.String(200), primary_key=True),  # content hash of the definition
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),  # JSON
        sa.Column("since_ms", sa.BigInteger, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("name", "seq", name="monitors_name_seq"),
    )
    op.create_table(
        "monitor_windows",
        sa.Column("monitor", sa.String(500), primary_key=True),
        sa.Column("version", sa.String(200), primary_key=True),
        sa.Column("end_ms", sa.BigInteger, primary_key=True),  # inclusive
        sa.Column("start_ms", sa.BigInteger, nullable=False),  # exclusive
        sa.Column("status", sa.String(20), nullable=False),  # 'running' | 'completed' | 'budget_stopped'
        sa.Column("run_id", sa.String(200)),
        sa.Column("target", sa.Text),  # JSON
        sa.Column("claimed_at_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_at_ms", sa.BigInteger),
        sa.Column("stats", sa.Text),  # JSON
        sa.Column("note", sa.Text),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("alert_id", sa.String(200), primary_key=True),
        sa.Column("monitor", sa.String(500), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("key", sa.String(1000), nullable=False),  # kind + subject
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(1000), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),  # open | acked | resolved
        sa.Column("first_window_end", sa.BigInteger, nullable=False),
        sa.Column("last_window_end", sa.BigInteger, nullable=False),
        sa.Column("windows_seen", sa.Integer, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),  # JSON
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("acked_at_ms", sa.BigInteger),
        sa.Column("acked_by", sa.String(500)),
        sa.Column("ack_note", sa.Text),
        sa.Column("resolved_at_ms", sa.BigInteger),
        sa.Column("notified_at_ms", sa.BigInteger),
    )
    op.create_index("monitor_alerts_monitor_status", "monitor_alerts", ["monitor", "version", "status"])
