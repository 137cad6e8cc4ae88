"""Demo walk-through, monitoring part: the judges on live production traffic, window by window.

``monitor_steps(session, echo, store)`` runs after the calibration part. The demo store
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
from typing import Any

import anyio

from server.demo.demo_store import DemoStore, stream_live

Echo = Callable[[str], None]
DAY = 86_400_000
EVERY = 6 * 3_600_000
FILTER = "tags.environment = 'production' AND tags.stream = 'live'"
JUDGES = ["grounded_citations", "answer_length"]
MONITOR = "prod_quality"


async def _matches(session: Any, filter_text: str) -> int:
    r = await session.client.call_tool("search_traces", {"filter": filter_text, "limit": 1})
    return int(r.structured_content["total_matches"]) if not r.is_error and r.structured_content else 0


async def _v13_share(session: Any, start: int, end: int) -> float | None:
    """v13's share of the live production traces in (start, end], counted by the server (any engine)."""
    window = f"{FILTER} AND attributes.timestamp_ms > {start} AND attributes.timestamp_ms <= {end}"
    total = await _matches(session, window)
    return await _matches(session, window + " AND attributes.prompt_version = 'v13'") / total if total else None


async def monitor_steps(session: Any, echo: Echo, store: DemoStore) -> None:
    echo("")
    echo("── Monitoring: the same judges on live production traffic, window by window ──")
    now_ms = int(time.time() * 1000) // 3_600_000 * 3_600_000
    streamed, days = await session.offline(store, stream_live, now_ms)
    echo(f"  {streamed} live traces over the last {days} days streamed in (tagged stream=live; "
         "prompt v13 reached production 24 h ago).")
    since = (now_ms - days * DAY) // EVERY * EVERY + EVERY
    r = await session.call("define_monitor", {
        "name": MONITOR, "judges": JUDGES, "filter": FILTER, "every": "6h", "settle": "0m", "since": since,
        "alerts": {"baseline_windows": 8}},
        "Watch live production with the citation and length judges: 6-hour windows, backfilled over the stream.")
    if not isinstance(r, dict):
        return
    echo(f"  {r['monitor']['ref']}: {r['monitor']['explained']}")
    echo("")
    echo(f"▶ Run it as cron would: tracesieve monitor run --once {store.cli_text()}")
    async with session.outside(store):
        done = await anyio.run_process([sys.executable, "-m", "server", "monitor", "run", "--once",
                                        *store.cli_args()], check=False)
    if done.returncode not in (0, 1):
        echo("  ✗ " + done.stderr.decode()[-500:])
        return
    result = json.loads(done.stdout)
    for k, w in enumerate(result["windows"]):
        start = since + k * EVERY
        share = await _v13_share(session, start, start + EVERY)
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
