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
    annotation queue, calibration and run comparison, the analyses and monitors."""

    analytics: Any  # tools.analysis: ProfileStore and ErrorStore in one adapter
    datasets: DatasetStore
    judges: JudgeStore
    labels: LabelStore
    queue: QueueStore
    calibration: CalibrationStore  # also tools.calibration.regression.RegressionStore
    monitors: MonitorStore


@dataclass(frozen=True)
class Backend:
    """One store: ``engine`` names it (duckdb, chdb, clickhouse), ``location`` says where it is
    without secrets, ``path`` is the local file whose folder holds ``exports/`` (None for a server),
    ``sql_tables`` are what ``query_sql`` may read."""

    engine: str
    location: str
    traces: TraceStore
    sql_tables: tuple[str, ...]
    path: Path | None = None
    features: FeatureStores | None = None

    def require_features(self, what: str) -> FeatureStores:
        """The feature stores, or an error naming the store kinds that have ``what``."""
        if self.features is None:
            raise InvalidInputError(
                f"{what} is not available on a {self.engine} store yet ({self.location}): over ClickHouse "
                "tracesieve serves traces (describe, search, show, tag, untag, SQL) so far. Use a DuckDB store "
                "(--db PATH or --store duckdb:///PATH) for it.")
        return self.features
