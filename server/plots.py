"""PNG charts of a calibration report (matplotlib, Agg backend: no display, safe on worker threads).

Kept in ``server`` because matplotlib is presentation, not logic; it draws only from the
structured ``CalibrationReportResult``, so the picture can never disagree with the numbers.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from tools.calibration.agreement import CalibrationReportResult  # noqa: E402

#: pyplot's figure registry is global state; sync MCP tools run on worker threads.
_LOCK = threading.Lock()


def figure_png(draw: Callable[[Any, Any], None], *, figsize: tuple[float, float], dpi: int = 80,
               ncols: int = 1) -> bytes:
    """``draw(fig, axes)`` on a fresh figure, as PNG bytes. One place holds pyplot's lock and
    always closes the figure, whichever chart is drawn."""
    with _LOCK:
        fig, axes = plt.subplots(1, ncols, figsize=figsize, squeeze=False)
        try:
            draw(fig, axes[0])
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=dpi)
        finally:
            plt.close(fig)
    return buffer.getvalue()


def calibration_png(r: CalibrationReportResult, *, dpi: int = 80) -> bytes:
    """Confusion matrix, score-vs-label histogram and MCC by window, side by side."""
    panels = 1 + (r.score_histogram is not None) + (len(r.by_window) >= 2)

    def draw(fig: Any, axes: Any) -> None:
        _confusion(axes[0], r)
        i = 1
        if r.score_histogram is not None:
            _histogram(axes[i], r)
            i += 1
        if len(r.by_window) >= 2:
            _drift(axes[i], r)
        mcc = r.metrics["mcc"].value
        fig.suptitle(f"{r.judge} vs humans on {r.criterion}: {r.verdict.upper()} "
                     f"(MCC {'–' if mcc is None else f'{mcc:.2f}'}, n={r.n})", fontsize=10)

    return figure_png(draw, figsize=(3.6 * panels, 3.2), dpi=dpi, ncols=panels)


def _confusion(ax, r: CalibrationReportResult) -> None:  # type: ignore[no-untyped-def]
    c = r.confusion
    grid = np.array([[c.tp, c.fp], [c.fn, c.tn]])
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=max(1.0, float(grid.max())))
    names = [["TP", "FP"], ["FN", "TN"]]
    for y in range(2):
        for x in range(2):
            dark = grid[y, x] > grid.max() / 2
            ax.text(x, y, f"{grid[y, x]:g}\n{names[y][x]}", ha="center", va="center", fontsize=10,
                    color="white" if dark else "black")
    ax.set_xticks([0, 1], ["human fail", "human pass"], fontsize=8)
    ax.set_yticks([0, 1], ["judge fail", "judge pass"], fontsize=8)
    ax.set_title("confusion (positive = fail)", fontsize=9)


def _histogram(ax, r: CalibrationReportResult) -> None:  # type: ignore[no-untyped-def]
    h = r.score_histogram
    assert h is not None
    edges = np.array(h.edges)
    width = (edges[1] - edges[0]) * 0.45
    ax.bar(edges[:-1] + width * 0.55, h.human_pass, width=width, color="#4c9f70", label="human pass")
    ax.bar(edges[:-1] + width * 1.45, h.human_fail, width=width, color="#d1495b", label="human fail")
    ax.set_xlabel("judge score", fontsize=8)
    ax.set_ylabel("labelled traces", fontsize=8)
    ax.set_title("judge score by human label", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)


def _drift(ax, r: CalibrationReportResult) -> None:  # type: ignore[no-untyped-def]
    rows = r.by_window
    x = np.arange(len(rows))
    mcc = np.array([np.nan if g.mcc is None else g.mcc for g in rows])
    low = np.array([np.nan if g.mcc_low is None else g.mcc_low for g in rows])
    high = np.array([np.nan if g.mcc_high is None else g.mcc_high for g in rows])
    ax.fill_between(x, low, high, color="#9db4c0", alpha=0.5, label="95% CI")
    ax.plot(x, mcc, marker="o", color="#1d3557", label="MCC")
    ax.axhline(r.thresholds.gate, color="#4c9f70", linestyle="--", linewidth=1, label="gate")
    ax.axhline(r.thresholds.signal, color="#e9c46a", linestyle="--", linewidth=1, label="signal")
    ax.set_xticks(x, [g.group[5:] for g in rows], fontsize=7, rotation=45)
    ax.set_ylim(-1, 1)
    ax.set_title("MCC by window (drift)", fontsize=9)
    ax.legend(fontsize=6, loc="lower left")
    ax.tick_params(labelsize=7)
