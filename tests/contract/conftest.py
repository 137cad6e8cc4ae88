"""The contract suite's backends: every test here runs once per store engine.

``duckdb`` (a file per test) and ``chdb`` (the ClickHouse engine in this process: one folder for
the whole session, since chdb allows one per process, and a database per test) always run; a
real ClickHouse server runs when ``CLICKHOUSE_URL`` names one (e.g.
``clickhouse://default:@127.0.0.1:8123/tracesieve_test``; each test gets its own database beside
it, dropped afterwards), and is skipped with that reason otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from server.storage.backend import Backend
from server.storage.clickhouse.client import ClickHouseClient
from server.storage.factory import StoreUrl, build_backend, parse_store_url
from tests.factory import small_set

ENGINES = ("duckdb", "chdb", "clickhouse")
#: The stores of the feature contract tests: each engine with the control plane it would have.
FEATURE_STORES = ("duckdb", "chdb", "chdb+postgres", "clickhouse+postgres")


@pytest.fixture(scope="session")
def chdb_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "clickhouse" and not os.environ.get("CLICKHOUSE_URL"):
        pytest.skip("no ClickHouse server: set CLICKHOUSE_URL=clickhouse://USER:PASS@HOST:8123/DB to run "
                    "the contract suite against one")
    return request.param


def _new_store(engine: str, folder: Path, chdb_folder: Path) -> Iterator[StoreUrl]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    if engine == "duckdb":
        yield StoreUrl("duckdb", path=folder / f"{database}.duckdb")
    elif engine == "chdb":
        url = StoreUrl("chdb", path=chdb_folder, database=database)
        yield url
        # Dropped after the test: every database left in the one chdb folder slows the next store's
        # creation (0.2 s with drops; 1.7 s once 120 were left), which cost the suite minutes.
        ClickHouseClient.connect(url).command(f"DROP DATABASE IF EXISTS {database} SYNC")
    else:
        url = replace(parse_store_url(os.environ["CLICKHOUSE_URL"]), database=database)
        yield url
        build_backend(url).traces.client.command(f"DROP DATABASE IF EXISTS {database}")  # type: ignore[attr-defined]


@pytest.fixture
def store_url(engine: str, tmp_path: Path, chdb_folder: Path) -> Iterator[StoreUrl]:
    """A URL of a new, empty store of ``engine``."""
    yield from _new_store(engine, tmp_path, chdb_folder)


@pytest.fixture(scope="module")
def shared_backend(engine: str, tmp_path_factory: pytest.TempPathFactory, chdb_folder: Path) -> Iterator[Backend]:
    """One store per engine holding ``small_set``, shared by a module's tests that only read.
    (Creating a store costs 1-2 s on a busy machine; the read tests would pay it dozens of times.)"""
    for url in _new_store(engine, tmp_path_factory.mktemp("shared"), chdb_folder):
        backend = build_backend(url)
        backend.traces.write_traces(small_set())
        yield backend


@pytest.fixture
def empty_backend(store_url: StoreUrl) -> Backend:
    return build_backend(store_url)


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    """A store of each engine holding the twelve known traces of ``tests.factory.small_set``."""
    empty_backend.traces.write_traces(small_set())
    return empty_backend


@pytest.fixture
def reopen(store_url: StoreUrl) -> Callable[[], Backend]:
    """Open the same store again, as a second server process would."""
    return lambda: build_backend(store_url)


@pytest.fixture(scope="module", params=FEATURE_STORES)
def feature_engine(request: pytest.FixtureRequest) -> str:
    """An engine with its control plane: ``duckdb`` (one file), ``chdb`` (a SQLite control file in the
    chdb folder), ``chdb+postgres`` and ``clickhouse+postgres`` (a real PostgreSQL server from the test
    session; the last also needs CLICKHOUSE_URL)."""
    if request.param.startswith("clickhouse") and not os.environ.get("CLICKHOUSE_URL"):
        pytest.skip("no ClickHouse server: set CLICKHOUSE_URL=clickhouse://USER:PASS@HOST:8123/DB to run "
                    "the contract suite against one")
    return request.param


@pytest.fixture
def feature_store_url(feature_engine: str, tmp_path: Path, chdb_folder: Path,
                      request: pytest.FixtureRequest) -> Iterator[StoreUrl]:
    """A URL of a new, empty store of ``feature_engine``, with its control plane."""
    engine, _, control = feature_engine.partition("+")
    for url in _new_store(engine, tmp_path, chdb_folder):
        if control == "postgres":
            url = replace(url, control=request.getfixturevalue("postgres_server").new_database())
        yield url


@pytest.fixture
def feature_backend(feature_store_url: StoreUrl) -> Backend:
    """A store of each engine and control plane holding ``tests.factory.small_set``."""
    backend = build_backend(feature_store_url)
    backend.traces.write_traces(small_set())
    return backend


@pytest.fixture
def reopen_features(feature_store_url: StoreUrl) -> Callable[[], Backend]:
    """Open the same store (and control plane) again, as a second server process would."""
    return lambda: build_backend(feature_store_url)
