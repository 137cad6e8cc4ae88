"""Opening the DuckDB file: one short-lived connection per call, with a bounded lock retry.

Several MCP clients usually each start their own ``tracesieve serve`` on the same store file,
and DuckDB lets only one process hold a file read-write (a reader cannot open it while a writer
holds it either). So no process keeps the file open: every call opens it, works, and closes,
and a call that meets another process's lock retries with jittered backoff for up to
``lock_timeout_s`` before failing with a ``StoreBusyError`` that names the holder.

Within one process a lock serialises calls: DuckDB caches one database instance per path and
refuses a second one with a different configuration (read-only vs read-write, sandboxed), and
a single open instance at a time keeps the file free between calls for the other processes.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from tools.errors import StoreBusyError

#: Settings for connections that run caller-written SQL: no files, network or extensions,
#: and the settings cannot be changed back from inside a query.
SANDBOX_CONFIG: dict[str, str | bool] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "lock_configuration": True,
}

_PID = re.compile(r"PID (\d+)")
_process_locks: dict[Path, threading.RLock] = {}
_process_locks_guard = threading.Lock()


def default_lock_timeout() -> float:
    """Seconds to wait for another process's lock (``TRACESIEVE_LOCK_TIMEOUT``, default 10)."""
    return float(os.environ.get("TRACESIEVE_LOCK_TIMEOUT", "10"))


def _process_lock(path: Path) -> threading.RLock:
    with _process_locks_guard:
        return _process_locks.setdefault(path, threading.RLock())


def _is_lock_conflict(error: duckdb.Error) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text


@contextmanager
def open_connection(path: Path, *, read_only: bool, lock_timeout_s: float,
                    config: dict[str, str | bool] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to ``path`` held only for the ``with`` block."""
    path = path.resolve()
    with _process_lock(path):
        deadline = time.monotonic() + lock_timeout_s
        delay = 0.005
        while True:
            try:
                con = duckdb.connect(str(path), read_only=read_only, config=dict(config or {}))
                break
            except duckdb.IOException as error:
                if not _is_lock_conflict(error):
                    raise
                if time.monotonic() >= deadline:
                    pid = _PID.search(str(error))
                    holder = f"another process (PID {pid.group(1)})" if pid else "another process"
                    raise StoreBusyError(
                        f"Trace store {path} is locked by {holder} and stayed locked for "
                        f"{lock_timeout_s:g}s. Stop it (often a 'tracesieve serve' or a notebook holding "
                        "the file open), raise TRACESIEVE_LOCK_TIMEOUT, or pass --db to use another store."
                    ) from error
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.2)
        try:
            yield con
        finally:
            con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT around the block, ROLLBACK if it raises: a write is whole or absent."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
