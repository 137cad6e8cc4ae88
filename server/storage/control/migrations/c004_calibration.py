"""Control-plane migration c004 (calibration): the stored ``calibration_report`` verdicts.

Mirrors DuckDB's ``calibrations`` (m004) column for column. ``compare_runs``, the CI gate and the
monitors read the latest row per judge to decide which judges are calibrated well enough to gate,
so the index leads with the judge and its time. The pairs a report is computed from (labels and
scores) stay in ClickHouse; only the small verdict row is transactional state.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations


def upgrade(op: Operations) -> None:
    op.create_table(
        "calibrations",
        sa.Column("calibration_id", sa.String(200), primary_key=True),
        sa.Column("judge", sa.String(500), nullable=False),
        sa.Column("judge_version", sa.String(200)),
        sa.Column("criterion", sa.String(500), nullable=False),
        sa.Column("run_id", sa.String(200)),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("mcc", sa.Float),
        sa.Column("mcc_low", sa.Float),
        sa.Column("mcc_high", sa.Float),
        sa.Column("kappa", sa.Float),
        sa.Column("verdict", sa.String(20), nullable=False),  # 'gate' | 'signal' | 'revise' | 'insufficient'
        sa.Column("gate_threshold", sa.Float, nullable=False),
        sa.Column("signal_threshold", sa.Float, nullable=False),
        sa.Column("computed_at_ms", sa.BigInteger, nullable=False),
        sa.Column("summary", sa.Text),  # JSON
    )
    op.create_index("calibrations_judge_time", "calibrations", ["judge", "computed_at_ms"])
