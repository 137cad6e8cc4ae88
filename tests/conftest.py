from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import small_set
from tests.postgres import PostgresServer, start_or_skip

# Tests open store files directly (duckdb.connect) right after tool calls; a store kept open by the
# process would refuse that. Release after every call by default; tests of the keeper set their own.
os.environ.setdefault("TRACESIEVE_IDLE_RELEASE_MS", "0")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if not SHARED.exists():  # CI clones the repo with shared/ beside it; allow an override
    SHARED = Path(os.environ.get("TRACESIEVE_SHARED", "/work/shared"))
FIXTURES = SHARED / "fixtures"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A real store file holding the small known trace set; no connection stays open."""
    path = tmp_path / "traces.duckdb"
    DuckDBTraceStore(path).write_traces(small_set())
    return path


@pytest.fixture
def store(db_path: Path) -> DuckDBTraceStore:
    return DuckDBTraceStore(db_path)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session (see ``tests/postgres.py``)."""
    server = start_or_skip()
    yield server
    server.stop()
