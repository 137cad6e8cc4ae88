"""monitor_status, list_alerts and ack_alert: what the monitors saw, compactly.

Pass-rate intervals are Wilson score intervals (scipy's ``proportion_ci``): honest at small
windows and near 0 or 1, where the normal approximation is not.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.errors import InvalidInputError, NotFoundError
from tools.monitors.ports import AlertRecord, MonitorStore
from tools.monitors.scheduler import AlertView, alert_view, due_windows
from tools.monitors.specs import MonitorSpec, explain, resolve_monitor
from tools.traces.search import iso_ms

MonitorRef = Annotated[str, Field(min_length=1, description="Monitor name (latest version) or 'name@2'.")]
WindowCount = Annotated[int, Field(ge=1, le=100, description="How many of the latest windows to show (1-100).")]
AlertStatusFilter = Annotated[Literal["open", "acked", "resolved"] | None, Field(
    description="Only alerts in this state; omit for all.")]
AlertLimit = Annotated[int, Field(ge=1, le=200, description="Max alerts, newest first (1-200).")]


class JudgeWindowRate(BaseModel):
    judge: str
    passed: int
    failed: int
    unknown: int
    pass_rate: float | None
    low: float | None = Field(description="Wilson 95% interval, lower end.")
    high: float | None


class WindowRow(BaseModel):
    start: str | None
    end: str | None
    status: str
    run_id: str | None
    traces: int
    sampled: int
    selection_probability: float
    error_rate: float | None
    p95_ms: float | None
    judges: list[JudgeWindowRate]
    calls: int
    cost_usd: float
    note: str | None


class MonitorStatusResult(BaseModel):
    monitor: str
    explained: str
    windows_done: int = Field(description="Finished windows of this version.")
    windows_due: int = Field(description="Windows whose end (+ settle) has passed; due - done = backlog.")
    windows: list[WindowRow] = Field(description="Latest windows, oldest first (a trend reads left to right).")
    open_alerts: list[AlertView]
    trend: str = Field(description="Per judge, the pass rates of these windows in one line.")


class ListAlertsResult(BaseModel):
    alerts: list[AlertView]


class AckAlertInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: Annotated[str, Field(min_length=1, description="The alert's id, e.g. 'al-3f9a0c12b4de'.")]
    by: Annotated[str, Field(min_length=1, max_length=100, description="Who acknowledges it.")] = "agent"
    note: Annotated[str | None, Field(max_length=2000, description="Why / what is being done.")] = None


class AckAlertResult(BaseModel):
    alert: AlertView
    changed: bool = Field(description="False when the alert was already acked or resolved.")


def wilson(passed: int, n: int) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    from scipy.stats import binomtest

    ci = binomtest(passed, n).proportion_ci(confidence_level=0.95, method="wilson")
    return round(float(ci.low), 4), round(float(ci.high), 4)


def monitor_status(store: MonitorStore, ref: str, *, windows: int, now_ms: int) -> MonitorStatusResult:
    record = resolve_monitor(store, ref)
    spec = MonitorSpec.model_validate(record.spec)
    latest = store.finished_windows(record.name, record.version, before_end_ms=None, limit=windows)
    rows = []
    for w in reversed(latest):
        s = w.stats
        if s is None:
            continue
        rates = []
        for c in s.judges:
            if c.slice is None:
                low, high = wilson(c.passed, c.known)
                rates.append(JudgeWindowRate(judge=c.judge, passed=c.passed, failed=c.failed, unknown=c.unknown,
                                             pass_rate=round(c.passed / c.known, 4) if c.known else None,
                                             low=low, high=high))
        rows.append(WindowRow(start=iso_ms(w.start_ms), end=iso_ms(w.end_ms), status=w.status, run_id=w.run_id,
                              traces=s.traces, sampled=s.sampled, selection_probability=s.selection_probability,
                              error_rate=round(s.errors / s.traces, 4) if s.traces else None, p95_ms=s.p95_ms,
                              judges=rates, calls=s.spend.calls, cost_usd=round(s.spend.usd, 6), note=w.note))
    trend = "; ".join(f"{j}: " + " ".join(f"{r.pass_rate:.0%}" if r.pass_rate is not None else "-"
                                           for row in rows for r in row.judges if r.judge == j)
                      for j in spec.judges)
    return MonitorStatusResult(monitor=f"{record.name}@{record.seq}", explained=explain(spec),
                               windows_done=len(store.finished_ends(record.name, record.version)),
                               windows_due=len(due_windows(record, spec, now_ms)),
                               windows=rows, open_alerts=[alert_view(a) for a in
                                                          store.live_alerts(record.name, record.version)],
                               trend=trend)


def list_alerts(store: MonitorStore, *, monitor: str | None, status: str | None, limit: int) -> ListAlertsResult:
    name = resolve_monitor(store, monitor).name if monitor else None
    return ListAlertsResult(alerts=[alert_view(a) for a in store.list_alerts(monitor=name, status=status,
                                                                             limit=limit)])


def ack_alert(store: MonitorStore, inp: AckAlertInput, *, now_ms: int) -> AckAlertResult:
    """Acknowledge: the alert stays known (it is not raised again while its condition lasts)."""
    before: AlertRecord | None = store.get_alert(inp.alert_id)
    if before is None:
        raise NotFoundError(f"No alert {inp.alert_id!r}. list_alerts(status='open') shows the open ones.")
    if before.status == "resolved":
        raise InvalidInputError(f"Alert {inp.alert_id} is already resolved (its condition cleared in later "
                                "windows); nothing to acknowledge.")
    store.ack_alert(inp.alert_id, by=inp.by, note=inp.note, now_ms=now_ms)
    after = store.get_alert(inp.alert_id)
    assert after is not None
    return AckAlertResult(alert=alert_view(after), changed=before.status == "open")
