"""ClickHouse adapter of the monitors feature (``tools.monitors.ports.MonitorStore``).

Monitor versions, windows and alerts are control-plane rows (``server/storage/control/monitors.py``,
migration c005), where a window is claimed exactly once. What a window measures is read here from
ClickHouse: verdict counts and spend of its judge run (``scores``), slow traces (``traces``, with
the same filter compiler as ``search_traces``), and error rate / p95 / error groups from the
analytics adapter's ``error_data``, the SQL ``error_patterns`` uses, so a monitor and the daily
health check never disagree about the same window (as on DuckDB).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from server.storage.clickhouse.analytics_store import ClickHouseAnalytics
from server.storage.clickhouse.calibration_store import ClickHouseCalibrationStore
from server.storage.clickhouse.store import ClickHouseTraceStore
from server.storage.control.monitors import ControlMonitors
from server.storage.control.plane import ControlPlane
from tools.analysis.error_patterns import ErrorData, ErrorRequest
from tools.calibration.regression import CalibrationStatus
from tools.monitors.ports import JudgeCount, Spend

#: Slice fields a monitor may test per value (as DuckDB's ``SLICE_SQL``).
SLICE_FIELDS = ("model", "environment", "prompt_version", "name")


class ClickHouseMonitorStore(ControlMonitors):
    """Monitors over a ClickHouse trace store and a control plane."""

    def __init__(self, store: ClickHouseTraceStore, control: ControlPlane) -> None:
        super().__init__(control)
        self.store = store
        self.client = store.client
        self._calibrations = ClickHouseCalibrationStore(store, control)
        # the window's tail count and error patterns are the analytics family's SQL, so a monitor and
        # profile_traces / error_patterns never disagree about the same window
        self._analytics = ClickHouseAnalytics(store, control)

    def window_counts(self, run_id: str, slice_by: list[str]) -> list[JudgeCount]:
        """Verdict counts per judge, overall and per value of each slice field: one grouped read,
        summed here (a handful of rows: judges x distinct slice values)."""
        unknown = [f for f in slice_by if f not in SLICE_FIELDS]
        if unknown:
            raise KeyError(unknown[0])   # the spec validates fields; DuckDB's adapter fails the same way
        rows = self.client.read("""
            SELECT s.judge, t.model, t.environment, t.prompt_version, t.name, countIf(s.verdict = 'pass'),
                   countIf(s.verdict = 'fail'), countIf(s.verdict = 'unknown')
            FROM scores AS s
            LEFT JOIN (SELECT t.trace_id, t.model, t.environment, t.prompt_version, t.name FROM traces AS t
                       WHERE t.trace_id IN (SELECT trace_id FROM scores WHERE run_id = {r:String})) AS t
                ON t.trace_id = s.trace_id
            WHERE s.run_id = {r:String}
            GROUP BY s.judge, t.model, t.environment, t.prompt_version, t.name
            SETTINGS join_use_nulls = 1""", {"r": run_id})
        totals: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0, 0, 0])
        for judge, *values, passed, failed, unknown_count in rows:
            by_field = dict(zip(("model", "environment", "prompt_version", "name"), values))
            for slice_name in [None] + [f"{f}={by_field[f] if by_field[f] is not None else '(none)'}"
                                        for f in slice_by]:
                counts = totals[(judge, slice_name)]
                counts[0] += passed
                counts[1] += failed
                counts[2] += unknown_count
        keys = sorted(totals, key=lambda k: (k[0], k[1] is not None, k[1] or ""))
        return [JudgeCount(judge=j, slice=s, passed=totals[(j, s)][0], failed=totals[(j, s)][1],
                           unknown=totals[(j, s)][2]) for j, s in keys]

    def run_spend(self, run_id: str) -> Spend:
        row = self.client.read("""
            SELECT countIf(cache_key IS NOT NULL AND cached = 0), coalesce(sum(input_tokens), 0),
                   coalesce(sum(output_tokens), 0), coalesce(sum(cost_usd), 0), countIf(cached = 1)
            FROM scores WHERE run_id = {r:String}""", {"r": run_id})[0]
        return Spend(calls=row[0], input_tokens=row[1], output_tokens=row[2], usd=row[3], cache_hits=row[4])

    def count_slower(self, expr: Any, now_ms: int, start_ms: int, end_ms: int, threshold_ms: float) -> int:
        return self._analytics.count_slower(expr, now_ms, start_ms, end_ms, threshold_ms)

    def error_data(self, request: ErrorRequest) -> ErrorData:
        return self._analytics.error_data(request)

    def latest_calibrations(self, judges: list[str]) -> dict[str, CalibrationStatus]:
        return self._calibrations.latest_calibrations(judges)
