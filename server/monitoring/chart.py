"""A monitor's pass-rate trend as a PNG (matplotlib, Agg): one line per judge with Wilson 95% bands,
windows that raised an alert marked. Drawn only from ``MonitorStatusResult``, so the picture and
the numbers cannot disagree."""

from __future__ import annotations

from typing import Any

from server.plots import figure_png
from tools.monitors.status import MonitorStatusResult


def trend_png(r: MonitorStatusResult, *, dpi: int = 80) -> bytes:
    def draw(_fig: Any, axes: Any) -> None:
        ax = axes[0]
        xs = list(range(len(r.windows)))
        judges = sorted({j.judge for w in r.windows for j in w.judges})
        for judge in judges:
            pts = [(i, j) for i, w in enumerate(r.windows) for j in w.judges if j.judge == judge
                   and j.pass_rate is not None]
            if not pts:
                continue
            ax.plot([i for i, _ in pts], [j.pass_rate for _, j in pts], marker="o", ms=3, label=judge)
            ax.fill_between([i for i, _ in pts], [j.low for _, j in pts], [j.high for _, j in pts], alpha=0.2)
        alerted = {a.last_window_end for a in r.open_alerts} | {a.first_window_end for a in r.open_alerts}
        for i, w in enumerate(r.windows):
            if w.end in alerted:
                ax.axvline(i, color="red", alpha=0.5, lw=1)
        lows = [j.low for w in r.windows for j in w.judges if j.low is not None]
        ax.set_ylim(max(0.0, min(lows, default=0.0) - 0.05), 1.01)   # zoom to where the rates are
        ax.set_ylabel("pass rate")
        ax.set_xticks(xs[:: max(1, len(xs) // 8)])
        ax.set_xticklabels([(r.windows[i].end or "")[5:16] for i in xs[:: max(1, len(xs) // 8)]], fontsize=7)
        ax.set_title(f"{r.monitor}: pass rate per window (95% Wilson bands; red = open alert)", fontsize=9)
        if judges:
            ax.legend(fontsize=7, loc="lower left")

    return figure_png(draw, figsize=(7.5, 3.2), dpi=dpi)
