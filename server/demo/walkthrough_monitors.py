"""Demo walk-through, monitoring part: the judges on live production traffic, window by window.

``monitor_steps(session, echo, store_path)`` runs after the calibration part. The demo store
above is a thin sample (~130 production traces a day): too little for any test to see the v13
release's 6-point drop within a day. So a week of live traffic at production volume streams in
first, from the same generator (other seed; tagged ``stream=live``), with prompt v13 reaching
production 24 h ago. A monitor backfilled over that week (6-hour windows; the early ones become
the baseline) runs the way cron would (``tracesieve monitor run --once`` in a subprocess, exit
code included), and each window is printed: v13's share, the judges' pass rates, any alert.
Whatever the monitor says is printed as it is — nothing here is scripted to look right.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from server.demo.generate import generate_demo_traces
from server.ingestion.pipeline import ingest
from server.storage.duckdb.store import DuckDBTraceStore

Echo = Callable[[str], None]
DAY = 86_400_000
EVERY = 6 * 3_600_000
LIVE_DAYS = 7
LIVE_PER_DAY = 1200
FILTER = "tags.environment = 'production' AND tags.stream = 'live'"
JUDGES = ["grounded_citations", "answer_length"]
MONITOR = "prod_quality"


def _v13_share(store_path: Path, start: int, end: int) -> float | None:
    with DuckDBTraceStore(store_path).reading() as con:
        total, v13 = con.execute("""SELECT count(*), count(*) FILTER (WHERE prompt_version = 'v13') FROM traces
                                    WHERE environment = 'production' AND json_extract_string(tags, '$.stream') = 'live'
                                    AND timestamp_ms > $s AND timestamp_ms <= $e""", {"s": start, "e": end}).fetchone()
    return v13 / total if total else None


def _stream_live(store_path: Path, now_ms: int, echo: Echo) -> int:
    """Days of traffic at production volume, v13 in production for the last 24 h. Returns the days."""
    store = DuckDBTraceStore(store_path)
    with store.reading() as con:
        demo_size = con.execute("SELECT count(*) FROM traces").fetchone()[0]
    days = LIVE_DAYS if demo_size >= 3000 else 2          # a small demo (the tests') streams less
    live = [t.model_copy(update={"trace_id": "live-" + t.trace_id, "tags": {**t.tags, "stream": "live"}})
            for t in generate_demo_traces(days * LIVE_PER_DAY, seed=19, now_ms=now_ms, days=days)]
    report = ingest(store, live)
    store.release()
    echo(f"  {report.traces} live traces over the last {days} days streamed in (tagged stream=live; "
         "prompt v13 reached production 24 h ago).")
    return days


async def monitor_steps(session: Any, echo: Echo, store_path: Path) -> None:
    echo("")
    echo("── Monitoring: the same judges on live production traffic, window by window ──")
    now_ms = int(time.time() * 1000) // 3_600_000 * 3_600_000
    days = await anyio.to_thread.run_sync(_stream_live, store_path, now_ms, echo)
    since = (now_ms - days * DAY) // EVERY * EVERY + EVERY
    r = await session.call("define_monitor", {
        "name": MONITOR, "judges": JUDGES, "filter": FILTER, "every": "6h", "settle": "0m", "since": since,
        "alerts": {"baseline_windows": 8}},
        "Watch live production with the citation and length judges: 6-hour windows, backfilled over the stream.")
    if not isinstance(r, dict):
        return
    echo(f"  {r['monitor']['ref']}: {r['monitor']['explained']}")
    echo("")
    echo(f"▶ Run it as cron would: tracesieve monitor run --once --db {store_path}")
    done = await anyio.run_process([sys.executable, "-m", "server", "monitor", "run", "--once", "--db",
                                    str(store_path)], check=False)
    if done.returncode not in (0, 1):
        echo("  ✗ " + done.stderr.decode()[-500:])
        return
    result = json.loads(done.stdout)
    for k, w in enumerate(result["windows"]):
        start = since + k * EVERY
        share = _v13_share(store_path, start, start + EVERY)
        rates = "  ".join(f"{j.split('@')[0]} {p:.1%}" if p is not None else f"{j.split('@')[0]} —"
                          for j, p in w["pass_rates"].items())
        alerts = "; ".join(f"{a['kind'].upper()} {a['subject']}" for a in w["new_alerts"]) or "quiet"
        echo(f"  {(w['end'] or '')[5:16]}  {w['traces']:>4} traces  v13 {share or 0:>4.0%}  {rates}  → {alerts}")
    echo(f"  exit code {done.returncode} ({'a new regression alert fired' if done.returncode else 'no new regression'}"
         f"; cron/CI can page on it). New alerts: {result['new_alerts']}.")
    listed = await session.call("list_alerts", {"monitor": MONITOR, "status": "open"},
                                "What did the monitor raise, with what evidence?")
    for a in listed.get("alerts", [])[:4] if isinstance(listed, dict) else []:
        echo(f"  {a['alert_id']} {a['kind']}: {a['summary']}")
    status = await session.call("monitor_status", {"monitor": MONITOR, "windows": 14, "include_plot": False},
                                "The trend with intervals (the MCP result also carries a PNG chart).")
    if isinstance(status, dict):
        echo(f"  {status['windows_done']} windows done; trend {status['trend']}")
    if isinstance(listed, dict) and listed.get("alerts"):
        alerts = listed["alerts"]
        first = next((a for a in alerts if a["kind"] == "regression"), alerts[0])["alert_id"]
        acked = await session.call("ack_alert", {"alert_id": first, "by": "demo", "note": "rolling back v13"},
                                   "Acknowledge it: it stays known and is not raised again while the drop lasts.")
        if isinstance(acked, dict):
            echo(f"  {first}: {acked['alert']['status']}")
