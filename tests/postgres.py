"""A real PostgreSQL server for the control-plane tests, started by the test session on 127.0.0.1.

It runs Debian's ``postgresql`` binaries (``.ci/run`` installs them) on a fresh data folder and a
free port, with trust authentication on loopback only, and is stopped when the session ends. As
root (CI, this sandbox) the server runs as the ``postgres`` user, since PostgreSQL refuses root.
Each test gets its own database (``PostgresServer.new_database``). Without the binaries the tests
that need it are skipped, unless ``TRACESIEVE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) makes that
a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One throwaway PostgreSQL cluster."""

    def __init__(self) -> None:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise FileNotFoundError("PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql)")
        self.folder = Path(tempfile.mkdtemp(prefix="tracesieve-pg-"))
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres", "postgres")
        self._pg_ctl = pg_ctl
        data = self.folder / "data"
        self._run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c max_connections=200"
        self._run([pg_ctl, "-D", str(data), "-l", str(self.folder / "log"), "-o", options, "-w", "start"])
        self.data = data

    def _run(self, command: list[str]) -> None:
        subprocess.run(self._as_user + command, check=True, capture_output=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A URL of a new, empty database."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run([self._pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_or_skip() -> PostgresServer:
    """A running server, or a skip (a failure under ``TRACESIEVE_REQUIRE_POSTGRES=1``)."""
    try:
        return PostgresServer()
    except (FileNotFoundError, subprocess.CalledProcessError) as error:
        detail = error.stderr.decode(errors="replace")[-500:] if isinstance(error, subprocess.CalledProcessError) \
            else str(error)
        message = f"no PostgreSQL server for the control-plane tests: {detail}"
        if os.environ.get("TRACESIEVE_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
