"""The one factory that turns a store URL (``server.storage.urls``) into a backend.

This module is the only one that names the engines' classes; everything above it (the MCP app,
the CLI) sees a ``Backend`` and the Protocols in ``tools``.
"""

from __future__ import annotations

from typing import Any

from server.storage.backend import Backend, FeatureStores
from server.storage.urls import StoreUrl, parse_store_url, resolve_store
from tools.errors import InvalidInputError

__all__ = ["StoreUrl", "as_backend", "build_backend", "duckdb_backend", "open_sync_state", "parse_store_url",
           "resolve_store"]


def build_backend(url: StoreUrl) -> Backend:
    """Open (creating and migrating on first use) the store ``url`` names."""
    if url.engine == "duckdb":
        from server.storage.duckdb.store import DuckDBTraceStore

        assert url.path is not None
        return duckdb_backend(DuckDBTraceStore(url.path))
    try:
        from server.storage.clickhouse.store import ClickHouseTraceStore
        if url.engine == "chdb":
            import chdb  # noqa: F401  (clickhouse-connect imports it only on first use)
    except ImportError as error:
        extra = "chdb" if url.engine == "chdb" else "clickhouse"
        raise InvalidInputError(
            f"{url.display()} needs the '{error.name}' package, which is not installed. Install it with "
            f"pip install 'tracesieve[{extra}]'.") from error
    control = _control_plane(url)
    store = ClickHouseTraceStore.open(
        url, control.exclusive(f"clickhouse-migrations:{url.database}") if control is not None else None)
    features = None
    if control is not None:
        from server.storage.clickhouse.features import clickhouse_features

        features = clickhouse_features(store, control)
    return Backend(engine=url.engine, location=url.display(), traces=store, sql_tables=store.sql_tables,
                   path=url.path, features=features, control=control.location if control else None)


def _control_plane(url: StoreUrl) -> Any:
    """The control plane ``url`` names, a chdb store's own SQLite file by default, or None (a
    ClickHouse server without ``--control``: traces only)."""
    from server.storage.control.plane import ControlPlane

    if url.control:
        return ControlPlane.open(url.control)
    if url.engine == "chdb":
        assert url.path is not None
        return ControlPlane.beside(url.path, url.database)
    return None


def open_sync_state(url: StoreUrl, backend: Backend, source: str) -> Any:
    """``tracesieve sync``'s watermarks for ``source`` (a ``server.ingestion.mlflow_sync.SyncStatePort``):
    in a DuckDB store's file, else in the control plane ``url`` names, beside the ClickHouse tables."""
    if backend.engine == "duckdb":
        from server.storage.duckdb.sync_sql import SyncState

        return SyncState(backend.traces, source)  # type: ignore[arg-type]
    from server.storage.control.sync_state import ControlSyncState

    control = _control_plane(url)
    if control is None:
        raise InvalidInputError(
            f"tracesieve sync keeps its watermarks in a control plane, and {backend.location} has none: pass "
            "--control postgresql://USER:PASSWORD@HOST:5432/DB (env TRACESIEVE_CONTROL).")
    return ControlSyncState(control, backend.traces.client, source)  # type: ignore[attr-defined]


def duckdb_backend(store: Any) -> Backend:
    """The backend of an open ``DuckDBTraceStore``: every feature, over one file."""
    from server.storage.duckdb.analytics_sql import DuckDBAnalytics
    from server.storage.duckdb.calibration_sql import DuckDBCalibrationStore
    from server.storage.duckdb.datasets_sql import DuckDBDatasetStore
    from server.storage.duckdb.judges_sql import DuckDBJudgeStore
    from server.storage.duckdb.labels_sql import DuckDBLabelStore
    from server.storage.duckdb.monitors_sql import DuckDBMonitorStore
    from server.storage.duckdb.queue_sql import DuckDBQueueStore
    from server.storage.duckdb.reviewers_sql import DuckDBReviewers, DuckDBReviewStore
    from server.storage.duckdb.schema import QUERYABLE

    features = FeatureStores(analytics=DuckDBAnalytics(store), datasets=DuckDBDatasetStore(store),
                             judges=DuckDBJudgeStore(store), labels=DuckDBLabelStore(store),
                             queue=DuckDBQueueStore(store), calibration=DuckDBCalibrationStore(store),
                             monitors=DuckDBMonitorStore(store), reviewers=DuckDBReviewers(store),
                             review=DuckDBReviewStore(store))
    return Backend(engine="duckdb", location=str(store.path), traces=store, sql_tables=tuple(QUERYABLE),
                   path=store.path, features=features)


def as_backend(store: Backend | Any) -> Backend:
    """``store`` itself if it is a backend; an open DuckDB store wrapped as one (tests, benches)."""
    if isinstance(store, Backend):
        return store
    from server.storage.duckdb.store import DuckDBTraceStore

    if isinstance(store, DuckDBTraceStore):
        return duckdb_backend(store)
    raise TypeError(f"not a store or backend: {type(store).__name__}")
