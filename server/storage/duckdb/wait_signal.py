"""Telling the other processes on a store that someone is waiting for the file.

DuckDB's file lock is all a process sees of the others: a read-only holder shares it with other
readers, a writer needs it alone. With several busy servers their holds overlap or follow each
other so closely that a waiting process can miss every gap, above all on a loaded machine (the
audit: 17 of 3,561 calls failed with ``StoreBusyError``, and a server could not even start, as
start-up checks the schema read-write).

So a process that meets the lock takes an exclusive ``flock`` on a sidecar file
(``<store>.waiting``) for as long as it waits, and every process checks it (a non-blocking shared
lock, a few microseconds) after each call: while someone waits, holders let the file go at the
end of their call and do not open it again until the waiter is in. Without ``fcntl`` (Windows),
or with ``TRACESIEVE_WAIT_SIGNAL=off`` (the baseline of ``bench.multi_server_bench``), the checks
are no-ops and the release clock in ``connection`` is all there is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]


class WaitSignal:
    """The sidecar lock of one store file."""

    def __init__(self, store_path: Path) -> None:
        self.path = store_path.with_name(store_path.name + ".waiting")
        self._fd: int | None = None

    def _file(self) -> int | None:
        if fcntl is None or os.environ.get("TRACESIEVE_WAIT_SIGNAL", "on") == "off":
            return None
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:  # a read-only folder: no signalling, only the release clock
                return None
        return self._fd

    def someone_waiting(self) -> bool:
        """True while another process waits for the file (holds the signal's lock)."""
        fd = self._file()
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Signal for the block that this process waits (if another one already does, that suffices)."""
        fd = self._file()
        held = False
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                pass
        try:
            yield
        finally:
            if held:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
