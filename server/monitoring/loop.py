"""The monitor loop shared by ``tracesieve monitor run`` and ``tracesieve serve --monitor``.

One pass = run every due window (``tools.monitors.scheduler``), then deliver new alerts to the
webhook. ``follow`` repeats passes until stopped, sleeping until the next window is due (at most
``poll_s``, so a monitor defined meanwhile is picked up).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import anyio

from server.monitoring.webhook import deliver_pending
from server.providers import NO_ENDPOINT_HINT, EndpointConfig
from server.storage.backend import FeatureStores
from server.storage.factory import as_backend
from tools import clock
from tools.monitors import scheduler

log = logging.getLogger(__name__)


def _features(store: FeatureStores | Any) -> FeatureStores:
    """The monitors' and judges' stores of any engine (its ``FeatureStores``), or of an open DuckDB store."""
    if isinstance(store, FeatureStores):
        return store
    return as_backend(store).require_features("Monitors", "monitors", "judges")


async def run_pass(store: FeatureStores | Any, monitors: list[str] | None = None,
                   max_windows: int = 1000) -> scheduler.RunMonitorsResult:
    config = EndpointConfig.from_env()
    features = _features(store)
    judges, ms = features.judges, features.monitors
    result = await scheduler.run_monitors(ms, judges, judges, scheduler.RunMonitorsInput(
        monitors=monitors, max_windows=max_windows), model=config.build() if config else None,
        no_model_hint=NO_ENDPOINT_HINT, now_ms=clock.now_ms())
    await anyio.to_thread.run_sync(deliver_pending, ms)
    return result


def _seconds_until(result: scheduler.RunMonitorsResult, poll_s: float) -> float:
    soonest = poll_s
    for when in result.next_due.values():
        if when:
            due = dt.datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() * 1000
            soonest = min(soonest, max(1.0, (due - clock.now_ms()) / 1000))
    return soonest


def follow(store: FeatureStores | Any, stop: threading.Event, *, monitors: list[str] | None = None,
           poll_s: float = 60.0, on_result=None) -> None:  # type: ignore[no-untyped-def]
    """Run passes until ``stop`` is set; a failing pass is logged and retried, never fatal."""
    store = _features(store)   # once: a DuckDB store's adapters are built for every pass otherwise
    while not stop.is_set():
        wait = poll_s
        try:
            result = anyio.run(run_pass, store, monitors)
            if on_result is not None:
                on_result(result)
            wait = _seconds_until(result, poll_s)
        except Exception:   # the loop must outlive one bad pass (a locked store, a down model)
            log.exception("monitor pass failed; retrying in %.0f s", poll_s)
        stop.wait(wait)


def start_background(store: FeatureStores | Any, *, poll_s: float = 60.0) -> threading.Thread:
    """``serve --monitor``: the same loop on a daemon thread beside the MCP server."""
    stop = threading.Event()
    thread = threading.Thread(target=follow, args=(store, stop), kwargs={"poll_s": poll_s}, daemon=True,
                              name="tracesieve-monitor")
    thread.start()
    return thread
