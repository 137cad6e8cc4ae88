"""Sharing the DuckDB file: a connection held across a burst of calls, released when idle.

Several MCP clients usually each start their own ``tracesieve serve`` on the same store file,
and DuckDB lets only one process hold a file read-write (a reader cannot open it while a writer
holds it either). Opening the file costs tens of milliseconds, far more than most queries, so a
process keeps its connection while calls keep coming and lets go of it after ``idle_release_s``
without use (``TRACESIEVE_IDLE_RELEASE_MS``, default 500). Idleness alone is not enough: a
process whose clients never pause never goes idle, and the audit saw others time out behind it.
So a connection is also let go between two calls once it has been held ``max_hold_s``
(``TRACESIEVE_MAX_HOLD_MS``, default 2000), and the process then waits ``YIELD_S`` before opening
the file again, longer than a waiting process's retry step, so the others get their turn; a
process that meets the lock also raises a ``WaitSignal`` (``wait_signal``) that makes the
holders let go after their current call. Reads hold the file read-only, so
servers read side by side; a write upgrades to read-write for its own burst. A call that meets
another process's lock retries with jittered backoff for up to ``lock_timeout_s`` and then fails
with a ``StoreBusyError`` naming the holder.

Within one process a lock serialises calls: DuckDB caches one database instance per path and
refuses a second one with a different configuration (read-only vs read-write, sandboxed).

The kept read-only connection is the sandboxed one (no files, network or extensions, settings
locked, a cap on temporary disk). Caller-written SQL runs on a cursor of its own made from it
(``sandboxed_cursor``): a separate DuckDB session that no other code path uses and that is closed
after the call, so temporary objects cannot shadow the tables other readers see. That cursor runs
outside the keeper's lock, so a slow query does not hold up other tools; the file is not
released (or reopened read-write) until it finishes. Every connection is opened with the
resource limits below.
"""

from __future__ import annotations

import atexit
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import duckdb

from server.storage.duckdb.wait_signal import WaitSignal
from tools.errors import InvalidInputError, StoreBusyError

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

#: Default for ``TRACESIEVE_SPILL_LIMIT``: the temporary disk a read-only (query_sql) connection may
#: fill when a sort or join spills past ``memory_limit``; the audit saw one query spill 3.4 GB.
DEFAULT_SPILL_LIMIT = "1GB"


def sandbox_config() -> dict[str, str | bool]:
    """``SANDBOX_CONFIG`` plus the spill cap from the environment."""
    return {**SANDBOX_CONFIG,
            "max_temp_directory_size": os.environ.get("TRACESIEVE_SPILL_LIMIT", DEFAULT_SPILL_LIMIT)}

#: Defaults for ``TRACESIEVE_MEMORY_LIMIT`` / ``TRACESIEVE_THREADS``. DuckDB's own default memory
#: limit is 80 % of RAM; a server that sits beside an IDE should stay small, and DuckDB spills to
#: disk (sorts, joins, aggregates) rather than fail when a query needs more.
DEFAULT_MEMORY_LIMIT = "1GB"

#: DuckDB checkpoints at commit once the write-ahead log would pass its default 16 MB, and it
#: counts an update of scattered rows (tagging 1000 traces picked across a 1M-trace store) as far
#: more than it writes: each such commit rewrote the touched row groups (200 ms). With a larger
#: threshold the log stays small and the checkpoint happens once, when the connection is
#: released after a burst of writes (``ConnectionKeeper``), or when the log really is this big.
WAL_AUTOCHECKPOINT = "1GB"

#: After letting go on the clock, how long a process keeps off the file; waiting processes retry
#: at most every ``_MAX_RETRY_STEP`` seconds, so each of them gets a try in that pause.
YIELD_S = 0.12
_MAX_RETRY_STEP = 0.05
#: How long a process waits quietly before raising the ``WaitSignal``: a short wait is cheaper
#: than making every holder close and reopen the file.
SIGNAL_AFTER_S = 0.3

_PID = re.compile(r"PID (\d+)")
_process_locks_guard = threading.Lock()


def default_lock_timeout() -> float:
    """Seconds to wait for another process's lock (``TRACESIEVE_LOCK_TIMEOUT``, default 10)."""
    return float(os.environ.get("TRACESIEVE_LOCK_TIMEOUT", "10"))


def default_idle_release() -> float:
    """Seconds an idle connection is kept before the file is released (``TRACESIEVE_IDLE_RELEASE_MS``)."""
    return float(os.environ.get("TRACESIEVE_IDLE_RELEASE_MS", "500")) / 1000


def default_max_hold() -> float:
    """Seconds a process may keep the file through a burst of calls before it lets go between two
    calls (``TRACESIEVE_MAX_HOLD_MS``, default 2000), so other processes get their turn."""
    return float(os.environ.get("TRACESIEVE_MAX_HOLD_MS", "2000")) / 1000


def out_of_memory(error: duckdb.OutOfMemoryException) -> InvalidInputError:
    """What a tool call that ran out of the store's memory and spill space says, with the two knobs:
    the defaults keep a server beside an IDE small, and a store of millions of spans may need more
    for a whole-store analysis."""
    memory = os.environ.get("TRACESIEVE_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)
    spill = os.environ.get("TRACESIEVE_SPILL_LIMIT", DEFAULT_SPILL_LIMIT)
    return InvalidInputError(
        f"This call needed more than the store's memory limit ({memory}, TRACESIEVE_MEMORY_LIMIT) and temporary "
        f"disk ({spill}, TRACESIEVE_SPILL_LIMIT). Narrow it to fewer traces (a time bound such as "
        "\"attributes.timestamp_ms > '-7d'\" or another filter), or restart the server with larger limits, e.g. "
        f"TRACESIEVE_SPILL_LIMIT=20GB. (DuckDB: {str(error).splitlines()[0]})")


def resource_config() -> dict[str, str | bool]:
    """The memory and thread limits every connection opens with (environment, else defaults),
    and ``WAL_AUTOCHECKPOINT``."""
    config: dict[str, str | bool] = {"memory_limit": os.environ.get("TRACESIEVE_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT),
                                     "wal_autocheckpoint": WAL_AUTOCHECKPOINT}
    if threads := os.environ.get("TRACESIEVE_THREADS"):
        config["threads"] = threads
    return config


def _is_lock_conflict(error: duckdb.Error) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text


def connect(path: Path, *, read_only: bool, lock_timeout_s: float, config: dict[str, str | bool] | None = None,
            signal: WaitSignal | None = None) -> duckdb.DuckDBPyConnection:
    """Open ``path``, waiting with jittered backoff while another process holds its lock; a
    process that has to wait says so through ``signal``, so the holders let go."""
    with ExitStack() as announced:
        def announce() -> None:
            if signal is not None:
                announced.enter_context(signal.waiting())

        return _connect(path, read_only, lock_timeout_s, config, announce)


def _connect(path: Path, read_only: bool, lock_timeout_s: float, config: dict[str, str | bool] | None,
             announce: Callable[[], None]) -> duckdb.DuckDBPyConnection:
    started = time.monotonic()
    deadline = started + lock_timeout_s
    delay, waited = 0.005, False
    while True:
        try:
            return _open(path, read_only, {**resource_config(), **(config or {})})
        except duckdb.IOException as error:
            if not _is_lock_conflict(error):
                raise
            if not waited and time.monotonic() >= started + SIGNAL_AFTER_S:
                announce()
                waited = True
            if time.monotonic() >= deadline:
                pid = _PID.search(str(error))
                holder = f"another process (PID {pid.group(1)})" if pid else "another process"
                raise StoreBusyError(
                    f"Trace store {path} is locked by {holder} and stayed locked for "
                    f"{lock_timeout_s:g}s. Stop it (often a 'tracesieve serve' or a notebook holding "
                    "the file open), raise TRACESIEVE_LOCK_TIMEOUT, or pass --db to use another store."
                ) from error
            time.sleep(min(delay * (0.5 + random.random()), _MAX_RETRY_STEP))
            delay = min(delay * 2, _MAX_RETRY_STEP)


def _open(path: Path, read_only: bool, config: dict[str, str | bool]) -> duckdb.DuckDBPyConnection:
    """Connect with ``config``, the progress bar off (DuckDB draws it on stderr, which MCP clients
    log, for any query over two seconds). It is a per-connection setting, so it is set before a
    requested ``lock_configuration`` takes effect."""
    settings = dict(config)
    lock = settings.pop("lock_configuration", False)
    con = duckdb.connect(str(path), read_only=read_only, config=settings)
    con.execute("SET enable_progress_bar = false")
    if lock:
        con.execute("SET lock_configuration = true")
    return con


class ConnectionKeeper:
    """The one connection a process holds to a store file, kept while in use and released when idle."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._read_only = True
        self._generation = 0
        self._opened_at = 0.0
        self._yield_until = 0.0
        self._cursors = 0
        self._cursors_done = threading.Condition()
        self.max_hold_s = default_max_hold()
        self.signal = WaitSignal(path)

    @contextmanager
    def use(self, *, write: bool, lock_timeout_s: float, idle_release_s: float,
            sandboxed: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The kept connection: read-write if ``write``; read-only and sandboxed if ``sandboxed``
        (a read-write one kept from a write burst is let go first); otherwise whichever is held."""
        with self.lock:
            con = self._hold(write=write, sandboxed=sandboxed, lock_timeout_s=lock_timeout_s)
            try:
                yield con
            finally:
                self._done(idle_release_s)

    @contextmanager
    def sandboxed_cursor(self, *, lock_timeout_s: float,
                         idle_release_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor (its own DuckDB session) of the sandboxed connection, closed after the block.

        The block runs outside ``self.lock``, so other calls go on while a slow query runs;
        ``release`` waits for it, so the file is never closed or reopened under a running query."""
        with self.lock:
            cursor = self._hold(write=False, sandboxed=True, lock_timeout_s=lock_timeout_s).cursor()
            with self._cursors_done:
                self._cursors += 1
        try:
            yield cursor
        finally:
            cursor.close()
            with self._cursors_done:
                self._cursors -= 1
                self._cursors_done.notify_all()
            with self.lock:
                self._done(idle_release_s)

    def _hold(self, *, write: bool, sandboxed: bool, lock_timeout_s: float) -> duckdb.DuckDBPyConnection:
        """The kept connection in the mode asked for, opened if need be; the caller holds ``self.lock``."""
        if write and sandboxed:
            raise ValueError("a sandboxed connection is read-only")
        if self._con is not None and ((write and self._read_only) or (sandboxed and not self._read_only)):
            self.release()
        if self._con is None:
            if (pause := self._yield_until - time.monotonic()) > 0:
                time.sleep(pause)  # holding self.lock on purpose: this whole process stays off the file
            deadline = time.monotonic() + lock_timeout_s  # let a waiting process in first (it holds one burst)
            while self.signal.someone_waiting() and time.monotonic() < deadline:
                time.sleep(_MAX_RETRY_STEP)
            self._con = connect(self.path, read_only=not write, lock_timeout_s=lock_timeout_s,
                                config=None if write else sandbox_config(), signal=self.signal)
            self._read_only = not write
            self._opened_at = time.monotonic()
        return self._con

    def _done(self, idle_release_s: float) -> None:
        """After a call: release now if idle release is off, the file has been held for
        ``max_hold_s`` (so a process whose clients never pause still lets others in between
        bursts) or another process signals that it waits; else after ``idle_release_s`` without
        use. The caller holds ``self.lock``."""
        self._drop_unfinished_result()
        self._generation += 1
        if self._cursors:
            return  # the last running query's _done decides
        if idle_release_s <= 0:
            self.release()
        elif self._con is not None and (time.monotonic() - self._opened_at >= self.max_hold_s
                                        or self.signal.someone_waiting()):
            self.release()
            self._yield_until = time.monotonic() + YIELD_S
        else:
            timer = threading.Timer(idle_release_s, self._release_if_idle, args=(self._generation,))
            timer.daemon = True
            timer.start()

    def _drop_unfinished_result(self) -> None:
        """Cancel whatever result the block left half-read (a ``fetchone`` of a query).

        DuckDB 2 streams results, and a connection with an unfinished one refuses ``register``,
        so the next block to use the kept connection (an ingest right after the store's
        version check) would fail. Writes are complete once ``execute`` returns and no
        transaction is open between blocks, so cancelling loses nothing; a connection that
        cannot even do that is closed and reopened on next use.
        """
        if self._con is None:
            return
        try:
            self._con.abort()
        except duckdb.Error:
            self.release()

    def _release_if_idle(self, generation: int) -> None:
        with self.lock:
            if generation == self._generation and not self._cursors:
                self.release()

    def release(self) -> None:
        with self.lock:
            with self._cursors_done:
                self._cursors_done.wait_for(lambda: self._cursors == 0)
            if self._con is not None:
                con, self._con = self._con, None
                con.close()


_keepers: dict[Path, ConnectionKeeper] = {}


def keeper_for(path: Path) -> ConnectionKeeper:
    path = path.resolve()
    with _process_locks_guard:
        if path not in _keepers:
            _keepers[path] = ConnectionKeeper(path)
        return _keepers[path]


@atexit.register
def _release_all() -> None:
    for keeper in list(_keepers.values()):
        keeper.release()


def fetch_dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows a cursor holds, as dicts keyed by column name."""
    columns = [d[0] for d in cursor.description or []]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


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
