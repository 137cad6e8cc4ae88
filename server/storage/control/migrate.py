"""Bring a control-plane database up to date, safely when several servers start at once.

Migrations are discovered by module name (``migrations/cNNN_*.py``) and recorded by name, not by a
count, so a gap in the numbering (a family that no migration has touched yet) is harmless. The
whole upgrade runs in one transaction under a database-wide lock: PostgreSQL's DDL is
transactional and an advisory lock keeps a second server waiting, then finding nothing to do;
SQLite's ``BEGIN IMMEDIATE`` does the same for processes sharing the file.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from server.storage.control import migrations
from tools import clock

_NAME = re.compile(r"c\d{3}_\w+\Z")
#: Any fixed 64-bit key: the advisory lock every tracesieve server takes to migrate.
_MIGRATION_LOCK = 0x7472616365736976

_BOOKKEEPING = sa.Table(
    "control_migrations", sa.MetaData(),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("applied_at_ms", sa.BigInteger, nullable=False),
)


def migration_names() -> list[str]:
    """Every migration module's name, in the order they apply."""
    return sorted(name for _, name, _ in pkgutil.iter_modules(migrations.__path__) if _NAME.match(name))


def upgrade(engine: sa.Engine) -> list[str]:
    """Apply the migrations ``engine``'s database lacks; returns the names applied."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        _BOOKKEEPING.create(conn, checkfirst=True)
        done = set(conn.execute(sa.select(_BOOKKEEPING.c.name)).scalars())
        op = Operations(MigrationContext.configure(conn))
        for name in migration_names():
            if name in done:
                continue
            importlib.import_module(f"{migrations.__name__}.{name}").upgrade(op)
            conn.execute(_BOOKKEEPING.insert().values(name=name, applied_at_ms=clock.now_ms()))
            applied_now.append(name)
    return applied_now
