"""``ControlPlane``: one SQLAlchemy engine on the control database, with the two ways to use it.

``transaction()`` is for writes: everything inside commits together or not at all. On SQLite it
begins ``IMMEDIATE`` (the write lock is taken at the start, so two writers queue instead of one
failing at commit with "database is locked"); on PostgreSQL it is READ COMMITTED, and code that
allocates (a dataset version, a judge version, a monitor window) takes ``lock(conn, key)`` first,
a transaction-scoped advisory lock, so two servers allocating at once get two versions.
``reading()`` is for reads and never blocks a writer (SQLite runs in WAL mode).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from server.storage.control.migrate import upgrade
from tools.errors import InvalidInputError, StoreBusyError

_FORMS = "postgresql://USER:PASSWORD@HOST:5432/DATABASE or sqlite:///PATH"
_BEGIN = "tracesieve_sqlite_begin"


class ControlPlane:
    """The control database of one store (see the package docstring for what it holds)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        #: Where it is, without the password (for messages and ``describe_store``).
        self.location: str = engine.url.render_as_string(hide_password=True)

    @classmethod
    def open(cls, url: str) -> ControlPlane:
        """Connect to ``url`` (``postgresql://…`` or ``sqlite:///PATH``) and migrate it."""
        engine = _engine(url)
        try:
            upgrade(engine)
        except OperationalError as error:
            engine.dispose()
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise StoreBusyError(
                f"Cannot use the control database {engine.url.render_as_string(hide_password=True)}: {reason}. "
                "Check the host, port, user, password and database in --control (env TRACESIEVE_CONTROL), and "
                "that the server is running.") from error
        return cls(engine)

    @classmethod
    def beside(cls, folder: Path, database: str) -> ControlPlane:
        """The SQLite control plane a chdb store keeps in its own folder (a laptop needs no server)."""
        folder.mkdir(parents=True, exist_ok=True)
        return cls.open(f"sqlite:///{folder.resolve() / f'{database}.control.sqlite'}")

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection inside one transaction, committed on exit (rolled back on an exception)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A connection for reads (on SQLite, a deferred transaction that never takes the write lock)."""
        with self.engine.connect().execution_options(**{_BEGIN: "DEFERRED"}) as conn:
            yield conn

    def lock(self, conn: sa.Connection, key: str) -> None:
        """Hold an exclusive lock on ``key`` until ``conn``'s transaction ends. On SQLite the
        transaction already holds the database's write lock, which covers every key."""
        if self.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})

    @contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        """Hold ``key`` for the block: how servers starting together on one ClickHouse database take
        turns migrating it. On PostgreSQL an advisory lock, against every process using this control
        plane. On SQLite (a chdb store's own file: chdb lets one process use the folder) a lock in this
        process: holding SQLite's write lock for the block instead would stall every other
        control-plane write, past its busy timeout if the block is slow."""
        if self.dialect == "postgresql":
            with self.transaction() as conn:
                self.lock(conn, key)
                yield
            return
        with _process_lock(f"{self.location}|{key}"):
            yield

    def dispose(self) -> None:
        self.engine.dispose()


_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(name: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(name, threading.Lock())


def _engine(url: str) -> sa.Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise InvalidInputError(f"Control URL '{url}' cannot be parsed. Use {_FORMS}.") from error
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            return sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
        except (ModuleNotFoundError, NoSuchModuleError) as error:
            raise InvalidInputError(
                "A PostgreSQL control plane needs the psycopg package, which is not installed. Install it "
                "with pip install 'tracesieve[postgres]'.") from error
    if backend == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})
        _sqlite_transactions(engine)
        return engine
    raise InvalidInputError(f"Control URL '{parsed.render_as_string(hide_password=True)}' names the "
                            f"'{backend}' database, which tracesieve does not support. Use {_FORMS}.")


def _sqlite_transactions(engine: sa.Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, begin transactions, and begin writers ``IMMEDIATE``
    (SQLAlchemy's documented recipe for pysqlite); WAL lets readers run beside a writer."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _into_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN, 'IMMEDIATE')}")


def _into_wal(cursor: sqlite3.Cursor, patience_s: float = 30.0) -> None:
    """``PRAGMA journal_mode=WAL``, retried: on a file other connections are opening at the same
    moment SQLite answers "database is locked" at once rather than through its busy timeout (four
    threads opening a new control file together failed 4 times in 30 tries without this)."""
    deadline = time.monotonic() + patience_s
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.2)
