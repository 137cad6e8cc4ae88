"""Ports and stored nouns of the monitors feature.

``server/storage/duckdb/monitors_sql.py`` implements ``MonitorStore`` (it also serves
``tools.analysis.error_patterns.ErrorStore`` so a window's error rate, p95 and error groups come
from the same SQL ``error_patterns`` uses). Everything here is plain data: the statistics live in
``alerts.py``, the scheduling in ``scheduler.py``.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from tools.analysis.error_patterns import ErrorData, ErrorRequest
from tools.calibration.regression import CalibrationStatus

WindowStatus = Literal["running", "completed", "budget_stopped"]
AlertKind = Literal["regression", "signal", "error_rate", "latency_p95", "emerging_pattern"]
AlertStatus = Literal["open", "acked", "resolved"]


class MonitorRecord(BaseModel):
    name: str
    version: str
    seq: int
    spec: dict[str, Any]
    since_ms: int
    created_at_ms: int


class JudgeCount(BaseModel):
    """Verdict counts of one judge in one window, overall (slice None) or in one slice."""

    judge: str
    slice: str | None = Field(None, description="'model=gpt-4o' style, or null for all items.")
    passed: int = 0
    failed: int = 0
    unknown: int = 0

    @property
    def known(self) -> int:
        return self.passed + self.failed


class Spend(BaseModel):
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    cache_hits: int = 0


class WindowStats(BaseModel):
    """What a finished window measured; stored with the window so later baselines pool it."""

    traces: int = Field(description="Finished (not IN_PROGRESS) traces the filter selects in the window.")
    sampled: int = Field(description="Traces the hash sample (and a call budget) selected for judging.")
    selection_probability: float = Field(description="sampled / traces: each judged trace's inclusion probability.")
    judges: list[JudgeCount] = Field(default_factory=list)
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    spend: Spend = Spend()


class WindowRecord(BaseModel):
    monitor: str
    version: str
    start_ms: int
    end_ms: int
    status: WindowStatus
    run_id: str | None = None
    target: dict[str, Any] | None = None
    claimed_at_ms: int
    finished_at_ms: int | None = None
    stats: WindowStats | None = None
    note: str | None = None


class AlertRecord(BaseModel):
    alert_id: str
    monitor: str
    version: str
    key: str
    kind: AlertKind
    subject: str
    status: AlertStatus
    first_window_end: int
    last_window_end: int
    windows_seen: int
    evidence: dict[str, Any]
    summary: str
    created_at_ms: int
    acked_at_ms: int | None = None
    acked_by: str | None = None
    ack_note: str | None = None
    resolved_at_ms: int | None = None
    notified_at_ms: int | None = None


class MonitorStore(Protocol):
    """Monitor versions, windows and alerts, plus the few aggregates a window needs."""

    def save_monitor(self, record: MonitorRecord) -> MonitorRecord: ...

    def monitor_versions(self, name: str) -> list[MonitorRecord]: ...

    def latest_monitors(self) -> list[MonitorRecord]: ...

    def get_window(self, monitor: str, version: str, end_ms: int) -> WindowRecord | None: ...

    def claim_window(self, window: WindowRecord, *, stale_before_ms: int) -> bool:
        """Insert the window as 'running', or take over a 'running' one claimed before ``stale_before_ms``.
        False when another process holds it (or it is finished)."""

    def release_window(self, monitor: str, version: str, end_ms: int) -> None: ...

    def set_window_run(self, monitor: str, version: str, end_ms: int, run_id: str | None,
                       target: dict[str, Any] | None) -> None: ...

    def finished_windows(self, monitor: str, version: str, *, before_end_ms: int | None,
                         limit: int) -> list[WindowRecord]:
        """Completed or budget-stopped windows, newest first."""

    def finished_ends(self, monitor: str, version: str) -> set[int]:
        """End times of the finished windows (cheap: no stats)."""

    def finish_window(self, window: WindowRecord, *, new_alerts: list[AlertRecord], seen_alerts: list[AlertRecord],
                      resolved_ids: list[str], now_ms: int) -> None:
        """Store the window's stats and status and its alert changes in one transaction."""

    def live_alerts(self, monitor: str, version: str) -> list[AlertRecord]:
        """Open or acked alerts (the ones a window must not raise again)."""

    def list_alerts(self, *, monitor: str | None, status: str | None, limit: int) -> list[AlertRecord]: ...

    def get_alert(self, alert_id: str) -> AlertRecord | None: ...

    def ack_alert(self, alert_id: str, *, by: str, note: str | None, now_ms: int) -> None: ...

    def unnotified_alerts(self) -> list[AlertRecord]: ...

    def mark_notified(self, alert_ids: list[str], now_ms: int) -> None: ...

    def find_run(self, target: dict[str, Any], judges: list[str]) -> str | None:
        """The judge run (if any) created for exactly this target: how a killed window finds its run."""

    def window_counts(self, run_id: str, slice_by: list[str]) -> list[JudgeCount]: ...

    def run_spend(self, run_id: str) -> Spend: ...

    def count_slower(self, expr: Any, now_ms: int, start_ms: int, end_ms: int, threshold_ms: float) -> int: ...

    def error_data(self, request: ErrorRequest) -> ErrorData: ...

    def latest_calibrations(self, judges: list[str]) -> dict[str, CalibrationStatus]: ...
