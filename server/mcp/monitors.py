"""MCP tools for monitors: define_monitor, list_monitors, monitor_status (+ PNG trend), list_alerts,
ack_alert. Windows are run by ``tracesieve monitor run`` (cron / systemd) or ``serve --monitor``,
not by a tool call: a schedule belongs to the operator, and a window can take minutes."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel, Field

from server.errors import surface_errors
from server.mcp.annotations import IDEMPOTENT_WRITE, READ_ONLY, VERSIONED_WRITE
from server.storage.backend import Backend
from tools import clock
from tools.monitors import specs
from tools.monitors import status as st
from tools.monitors.render import render_status

IncludePlot = Annotated[bool, Field(description="Attach a PNG of the pass-rate trend (default true).")]


class ListMonitorsResult(BaseModel):
    monitors: list[specs.MonitorVersion]


#: ``budget`` and ``alerts`` are plain objects in the tool's schema, validated into ``specs.Budget`` and
#: ``specs.AlertRules`` by the input model: their nested schemas cost ~700 tokens of definitions on every
#: turn, and the descriptions below already list every key with its default.
BudgetArg = Annotated[dict[str, Any] | None, Field(description=specs.BUDGET_TEXT)]
AlertsArg = Annotated[dict[str, Any] | None, Field(description=specs.ALERTS_TEXT)]


def register(mcp: MCPServer, backend: Backend) -> None:
    """Add the monitor tools to ``mcp``."""
    features = backend.require_features("Monitors", "monitors", "judges")
    ms = features.monitors

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def define_monitor(name: specs.MonitorName, judges: specs.JudgeList,
                       filter: specs.TrafficFilter = "", sample_rate: specs.MonitorSampleRate = 1.0,
                       every: specs.Every = "1h", window: specs.WindowLen = None, settle: specs.Settle = "5m",
                       since: specs.Since = None, budget: BudgetArg = None,
                       alerts: AlertsArg = None) -> specs.DefineMonitorResult:
        """Define (or version) a monitor: the same judges, pinned to their current versions, run on live
        traffic window by window with tested alerts (only calibrated judges raise 'regression'). The same
        definition again changes nothing; a changed one becomes name@2. Windows run under
        `tracesieve monitor run --once` (cron), `--follow` or `serve --monitor`.
        Example: define_monitor(name='prod_quality', judges=['grounded'], filter="tags.environment = 'production'",
        sample_rate=0.1, every='1h', budget={'max_judge_calls': 500})
        """
        return specs.define_monitor(ms, features.judges, specs.DefineMonitorInput(
            name=name, judges=judges, filter=filter, sample_rate=sample_rate, every=every, window=window,
            settle=settle, since=since, budget=budget or {}, alerts=alerts or {}), now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_monitors() -> ListMonitorsResult:
        """Every monitor's latest version: judges, filter, sampling, cadence, budget and alert rules in words.
        Next: monitor_status(monitor=...) for its windows and open alerts."""
        return ListMonitorsResult(monitors=[specs.to_version(r) for r in ms.latest_monitors()])

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def monitor_status(monitor: st.MonitorRef, windows: st.WindowCount = 24,
                       include_plot: IncludePlot = True) -> Annotated[CallToolResult, st.MonitorStatusResult]:
        """One monitor's latest windows, oldest first: traffic, sample size and selection probability, pass
        rate per judge with a Wilson 95% interval, error rate, p95, calls and cost, plus its open alerts
        and the backlog (windows due but not yet run). Example: monitor_status(monitor='prod_quality',
        windows=12). Returns markdown, the structured status and (include_plot) a PNG trend chart.
        """
        result = st.monitor_status(ms, monitor, windows=windows, now_ms=clock.now_ms())
        content: list[TextContent | ImageContent] = [TextContent(type="text", text=render_status(result))]
        if include_plot and result.windows:
            from server.monitoring.chart import trend_png  # matplotlib loads on the first chart

            content.append(ImageContent(type="image", data=base64.b64encode(trend_png(result)).decode(),
                                        mime_type="image/png"))
        return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_alerts(monitor: Annotated[str | None, Field(description="Only this monitor's alerts.")] = None,
                    status: st.AlertStatusFilter = None,
                    limit: st.AlertLimit = 20) -> st.ListAlertsResult:
        """Alerts the monitors raised, newest first: kind (regression | signal | error_rate | latency_p95 |
        emerging_pattern), what changed, and the evidence (counts, p before/after Holm, effect size, example
        trace ids). One alert lasts while its condition does. Example: list_alerts(status='open')
        """
        return st.list_alerts(ms, monitor=monitor, status=status, limit=limit)

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    @surface_errors
    def ack_alert(alert_id: Annotated[str, Field(min_length=1, description="e.g. 'al-3f9a0c12b4de'.")],
                  by: Annotated[str, Field(min_length=1, max_length=100, description="Who acknowledges.")] = "agent",
                  note: Annotated[str | None, Field(max_length=2000, description="What is being done.")] = None
                  ) -> st.AckAlertResult:
        """Acknowledge an open alert (someone is on it): listed as 'acked', not raised again while its condition
        lasts. Example: ack_alert(alert_id='al-3f9a0c12b4de', by='oncall', note='rolling back prompt v7')
        """
        return st.ack_alert(ms, st.AckAlertInput(alert_id=alert_id, by=by, note=note), now_ms=clock.now_ms())
