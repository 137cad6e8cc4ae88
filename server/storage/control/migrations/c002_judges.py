"""Control migration 2: judge versions, judge runs and the judge-call cache (the judges family).

The same three tables as the DuckDB store's m003, as small transactional state beside a
ClickHouse store (scores, the big part, stay in ClickHouse). ``(name, seq)`` and
``(name, version)`` are unique, so two servers defining the same judge at once cannot both
create version N: the second transaction sees the first's row (versions are allocated under a
lock) or fails on the key. JSON is TEXT (portable); epoch-ms times are BIGINT.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations


def upgrade(op: Operations) -> None:
    op.create_table(
        "judges",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),       # content hash of criterion + spec
        sa.Column("seq", sa.Integer, nullable=False),        # 1, 2, ... per name
        sa.Column("kind", sa.Text, nullable=False),          # 'rule' | 'llm' | 'classifier'
        sa.Column("criterion", sa.Text, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "seq", name="pk_judges"),
        sa.UniqueConstraint("name", "version", name="uq_judges_version"))
    op.create_table(
        "judge_runs",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("target", sa.Text, nullable=False),        # dataset name@version, or filter + window + sampling
        sa.Column("target_label", sa.Text, nullable=False),
        sa.Column("judges", sa.Text, nullable=False),        # ["name@version-hash", ...]
        sa.Column("model", sa.Text),
        sa.Column("status", sa.Text, nullable=False),        # 'running' | 'completed' | 'failed' | 'interrupted'
        sa.Column("started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_at_ms", sa.BigInteger),
        sa.Column("heartbeat_ms", sa.BigInteger),
        sa.Column("items_total", sa.BigInteger, nullable=False),
        sa.Column("stats", sa.Text),
        sa.Column("error", sa.Text))
    op.create_index("ix_judge_runs_started", "judge_runs", ["started_at_ms", "run_id"])
    op.create_table(
        "judge_cache",
        sa.Column("cache_key", sa.Text, primary_key=True),  # sha256(judge version, model, prompt hash)
        sa.Column("judge_version", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("verdict", sa.Text, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("rationale", sa.Text),
        sa.Column("input_tokens", sa.BigInteger),
        sa.Column("output_tokens", sa.BigInteger),
        sa.Column("cost_usd", sa.Float),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False))
