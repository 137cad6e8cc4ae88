"""The feature stores of a ClickHouse store: each family's adapter over ClickHouse (the big rows)
and the control plane (the transactional ones). A family not built for this engine yet stays
None, and the server leaves its tools out (``server.mcp.toolsets.NEEDS``)."""

from __future__ import annotations

from server.storage.backend import FeatureStores
from server.storage.clickhouse.analytics_store import ClickHouseAnalytics
from server.storage.clickhouse.calibration_store import ClickHouseCalibrationStore
from server.storage.clickhouse.datasets_store import ClickHouseDatasetStore
from server.storage.clickhouse.judges_store import ClickHouseJudgeStore
from server.storage.clickhouse.labels_store import ClickHouseLabelStore, ClickHouseReviewStore
from server.storage.clickhouse.monitors_store import ClickHouseMonitorStore
from server.storage.clickhouse.queue_store import ClickHouseQueueStore
from server.storage.clickhouse.store import ClickHouseTraceStore
from server.storage.control.plane import ControlPlane
from server.storage.control.reviewers import ControlReviewers


def clickhouse_features(store: ClickHouseTraceStore, control: ControlPlane) -> FeatureStores:
    """Every family this engine has, over ``store`` and ``control``."""
    return FeatureStores(
        analytics=ClickHouseAnalytics(store, control), datasets=ClickHouseDatasetStore(store, control),
        judges=ClickHouseJudgeStore(store, control),
        labels=ClickHouseLabelStore(store, control), queue=ClickHouseQueueStore(store, control),
        reviewers=ControlReviewers(control), review=ClickHouseReviewStore(store, control),
        calibration=ClickHouseCalibrationStore(store, control), monitors=ClickHouseMonitorStore(store, control),
    )
