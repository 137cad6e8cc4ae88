"""A store as the server sees it: the trace store, the feature stores it offers, and its file.

The MCP app and the CLI depend on this and on the Protocols in ``tools`` only, never on an engine's
classes; ``server.storage.factory`` is the one place that builds a backend for a store URL. An
engine that does not (yet) hold a family of features leaves ``features`` empty: the server then
publishes only the tools it can serve, and a CLI command for a missing family says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.calibration.agreement import CalibrationStore
from tools.datasets.models import DatasetStore
from tools.errors import InvalidInputError
from tools.judges.ports import JudgeStore
from tools.labels.annotation_queue import QueueStore
from tools.labels.labelling import LabelStore
from tools.monitors.ports import MonitorStore
from tools.ports import TraceStore


@dataclass(frozen=True)
class FeatureStores:
    """The adapters behind the tools past tracing: datasets, judges and runs, labels, the
    annotation queue, calibration and run comparison, the analyses and monitors. A family an
    engine does not hold yet is None; ``Backend.require_features`` then names it."""

    analytics: Any = None  # tools.analysis: ProfileStore and ErrorStore in one adapter
    datasets: DatasetStore | None = None
    judges: JudgeStore | None = None
    labels: LabelStore | None = None
    queue: QueueStore | None = None
    calibration: CalibrationStore | None = None  # also tools.calibration.regression.RegressionStore
    monitors: MonitorStore | None = None
    #: The labelling page's store (reviewers, skips, proposed criteria; server.http.label).
    reviewers: Any = None

    def missing(self) -> tuple[str, ...]:
        return tuple(name for name, value in vars(self).items() if value is None)


@dataclass(frozen=True)
class Backend:
    """One store: ``engine`` names it (duckdb, chdb, clickhouse), ``location`` says where it is
    without secrets, ``path`` is the local file whose folder holds ``exports/`` (None for a server),
    ``sql_tables`` are what ``query_sql`` may read, ``control`` is where the control plane is
    (None for DuckDB, whose one file holds everything)."""

    engine: str
    location: str
    traces: TraceStore
    sql_tables: tuple[str, ...]
    path: Path | None = None
    features: FeatureStores | None = None
    control: str | None = None

    def has(self, family: str) -> bool:
        return self.features is not None and getattr(self.features, family) is not None

    def require_features(self, what: str, *families: str) -> FeatureStores:
        """The feature stores, or an error saying why ``what`` is unavailable and what to do."""
        if self.features is None:
            raise InvalidInputError(
                f"{what} needs a control plane beside the {self.engine} store {self.location}, and none is "
                "configured: pass --control postgresql://USER:PASSWORD@HOST:5432/DB (env TRACESIEVE_CONTROL). "
                "Over ClickHouse without one, tracesieve serves traces only (describe, search, show, tag, SQL).")
        absent = [family for family in families if getattr(self.features, family) is None]
        if absent:
            raise InvalidInputError(
                f"{what} is not available on a {self.engine} store yet ({self.location}): its "
                f"{', '.join(absent)} store is not built for this engine. Use a DuckDB store "
                "(--db PATH or --store duckdb:///PATH) for it.")
        return self.features
