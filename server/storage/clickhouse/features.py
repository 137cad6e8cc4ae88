"""The feature stores of a ClickHouse store: each family's adapter over ClickHouse (the big rows)
and the control plane (the transactional ones). A family not built for this engine yet stays
None, and the server leaves its tools out (``server.mcp.toolsets.NEEDS``)."""

from __future__ import annotations

from server.storage.backend import FeatureStores
from server.storage.clickhouse.store import ClickHouseTraceStore
from server.storage.control.plane import ControlPlane


def clickhouse_features(store: ClickHouseTraceStore, control: ControlPlane) -> FeatureStores:
    """Every family this engine has, over ``store`` and ``control``."""
    return FeatureStores()
