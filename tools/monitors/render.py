"""Markdown for people and agents: a monitor's windows as a table, its open alerts as a list."""

from __future__ import annotations

from tools.analysis.common import markdown_table, ms_text, pct_text
from tools.monitors.status import MonitorStatusResult


def render_status(r: MonitorStatusResult) -> str:
    parts = [f"**Monitor {r.monitor}**: {r.explained}",
             f"{r.windows_done} window(s) done, {r.windows_due} due"
             + (f" ({r.windows_due - r.windows_done} waiting: run `tracesieve monitor run --once`)"
                if r.windows_due > r.windows_done else "") + "."]
    if r.windows:
        judges = sorted({j.judge for w in r.windows for j in w.judges})
        rows = []
        for w in r.windows:
            rates = {j.judge: j for j in w.judges}
            cells = [f"{pct_text(rates[j].pass_rate)} [{pct_text(rates[j].low)}–{pct_text(rates[j].high)}]"
                     if j in rates and rates[j].pass_rate is not None else "—" for j in judges]
            rows.append([(w.end or "")[:16], w.status, w.traces, w.sampled, *cells, pct_text(w.error_rate, 1),
                         ms_text(w.p95_ms), w.calls])
        parts.append(markdown_table(["window end", "status", "traces", "judged", *judges, "errors", "p95", "calls"],
                                    rows, right=(2, 3)))
        parts.append(f"Trend: {r.trend}")
    if r.open_alerts:
        parts.append("Open alerts:\n" + "\n".join(f"- `{a.alert_id}` {a.kind} ({a.status}, {a.windows_seen} "
                                                  f"window(s)): {a.summary}" for a in r.open_alerts))
    else:
        parts.append("No open alerts.")
    return "\n\n".join(parts)
