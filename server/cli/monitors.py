"""``tracesieve monitor define|list|run|status|alerts|ack``.

``monitor run --once`` is made for cron and CI: it runs every due window and exits 1 when a new
``regression`` alert fired (0 otherwise). ``--follow`` keeps running, sleeping until the next
window is due. Results are JSON on stdout; logs go to stderr.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import anyio
import click

from server.cli.common import echo_result, open_backend, store_option
from server.errors import cli_errors
from server.storage.backend import FeatureStores
from server.storage.factory import StoreUrl
from tools.clock import now_ms
from tools.monitors.ports import MonitorStore
from tools.monitors import specs
from tools.monitors import status as st
from tools.monitors.render import render_status


def _features(db: StoreUrl) -> FeatureStores:
    """The monitors' and judges' stores of the command's store (any engine with a control plane)."""
    return open_backend(db).require_features("Monitors", "monitors", "judges")


def _monitors(db: StoreUrl) -> MonitorStore:
    return open_backend(db).require_features("Monitors", "monitors").monitors  # type: ignore[return-value]


def _json_option(text: str | None, what: str) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except ValueError as error:
        raise click.UsageError(f"{what} must be a JSON object (or @file.json): {error}") from error
    if not isinstance(value, dict):
        raise click.UsageError(f"{what} must be a JSON object, e.g. '{{\"max_judge_calls\": 500}}'.")
    return value


@click.group("monitor")
def monitor() -> None:
    """Run the same judges on live traffic, window by window, with tested alerts.

    Example:

        tracesieve monitor define prod --judge grounded --filter "tags.environment = 'production'" --every 1h
        tracesieve monitor run --once        # cron: exits 1 on a new regression alert
    """


@monitor.command("define")
@store_option
@click.argument("name")
@click.option("--judge", "judges", multiple=True, required=True, help="Judge name or ref (repeat for several).")
@click.option("--filter", "filter_", default="", help="search_traces filter selecting the live traffic.")
@click.option("--sample-rate", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--every", default="1h", show_default=True, help="Window length and cadence (whole minutes).")
@click.option("--window", default=None, help="Judge only the last part of each window (<= every).")
@click.option("--settle", default="5m", show_default=True, help="Wait after a window ends before judging it.")
@click.option("--since", type=int, default=None, help="Epoch ms of the first window's start (past = backfill).")
@click.option("--budget", "budget_text", default=None,
              help='Per-window budget JSON, e.g. \'{"max_judge_calls": 500, "max_usd": 2}\'.')
@click.option("--alerts", "alerts_text", default=None,
              help='Alert rules JSON, e.g. \'{"baseline_windows": 6, "slice_by": ["model"]}\'.')
def define_cmd(db: StoreUrl, name: str, judges: tuple[str, ...], filter_: str, sample_rate: float, every: str,
               window: str | None, settle: str, since: int | None, budget_text: str | None,
               alerts_text: str | None) -> None:
    """Define monitor NAME (a changed definition becomes a new version).

    Example:

        tracesieve monitor define prod --judge grounded --judge helpful --sample-rate 0.1 --every 1h \\
            --budget '{"max_judge_calls": 500}' --since 1764892800000
    """
    with cli_errors():
        features = _features(db)
        inp = specs.DefineMonitorInput(name=name, judges=list(judges), filter=filter_, sample_rate=sample_rate,
                                       every=every, window=window, settle=settle, since=since,
                                       budget=specs.Budget(**_json_option(budget_text, "--budget")),
                                       alerts=specs.AlertRules(**_json_option(alerts_text, "--alerts")))
        echo_result(specs.define_monitor(features.monitors, features.judges, inp, now_ms=now_ms()))


@monitor.command("list")
@store_option
def list_cmd(db: StoreUrl) -> None:
    """List monitors (latest versions), explained in words.

    Example:

        tracesieve monitor list
    """
    with cli_errors():
        for record in _monitors(db).latest_monitors():
            version = specs.to_version(record)
            click.echo(f"{version.ref}  {version.explained}")


@monitor.command("run")
@store_option
@click.option("--once", "mode", flag_value="once", default=True, help="Run every due window, then exit (cron).")
@click.option("--follow", "mode", flag_value="follow", help="Keep running: each window as it becomes due.")
@click.option("--monitor", "monitors", multiple=True, help="Only these monitors (default: all).")
@click.option("--max-windows", type=click.IntRange(1), default=1000, show_default=True,
              help="Catch-up cap per monitor per pass.")
@click.option("--poll", type=click.FloatRange(1), default=60.0, show_default=True,
              help="With --follow: longest sleep between passes, seconds.")
def run_cmd(db: StoreUrl, mode: str, monitors: tuple[str, ...], max_windows: int, poll: float) -> None:
    """Judge every due window (catch-up included), raise and deliver alerts.

    Exit codes with --once: 0 ok, 1 a new regression alert fired, 2 bad input. The webhook
    (TRACESIEVE_ALERT_WEBHOOK) receives each new alert once. LLM judges use TRACESIEVE_JUDGE_*.

    Example:

        */15 * * * *  tracesieve monitor run --once --db /data/traces.duckdb
    """
    from server.monitoring.loop import follow, run_pass

    with cli_errors():
        store = _features(db)
    if mode == "follow":
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            follow(store, stop, monitors=list(monitors) or None, poll_s=poll,
                   on_result=lambda r: [click.echo(w.model_dump_json()) for w in r.windows])
        except KeyboardInterrupt:
            pass
        return
    with cli_errors():
        result = anyio.run(lambda: run_pass(store, list(monitors) or None, max_windows))
        echo_result(result)
    if result.new_regressions:
        click.echo(f"{result.new_regressions} new regression alert(s).", err=True)
        sys.exit(1)


@monitor.command("status")
@store_option
@click.argument("name")
@click.option("--windows", type=click.IntRange(1, 100), default=24, show_default=True)
@click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the trend chart here.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of markdown.")
def status_cmd(db: StoreUrl, name: str, windows: int, png_path: Path | None, as_json: bool) -> None:
    """A monitor's latest windows, pass-rate trend with intervals, and open alerts.

    Example:

        tracesieve monitor status prod --png prod.png
    """
    with cli_errors():
        result = st.monitor_status(_monitors(db), name, windows=windows, now_ms=now_ms())
        if as_json:
            echo_result(result)
        else:
            click.echo(render_status(result))
        if png_path is not None:
            from server.monitoring.chart import trend_png

            png_path.write_bytes(trend_png(result))


@monitor.command("alerts")
@store_option
@click.option("--monitor", "monitor_name", default=None)
@click.option("--status", type=click.Choice(["open", "acked", "resolved"]), default=None)
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
def alerts_cmd(db: StoreUrl, monitor_name: str | None, status: str | None, limit: int) -> None:
    """List alerts, newest first.

    Example:

        tracesieve monitor alerts --status open
    """
    with cli_errors():
        echo_result(st.list_alerts(_monitors(db), monitor=monitor_name, status=status,
                                   limit=limit))


@monitor.command("ack")
@store_option
@click.argument("alert_id")
@click.option("--by", default="cli", show_default=True)
@click.option("--note", default=None)
def ack_cmd(db: StoreUrl, alert_id: str, by: str, note: str | None) -> None:
    """Acknowledge alert ALERT_ID.

    Example:

        tracesieve monitor ack al-3f9a0c12b4de --by oncall --note "rolling back"
    """
    with cli_errors():
        echo_result(st.ack_alert(_monitors(db),
                                 st.AckAlertInput(alert_id=alert_id, by=by, note=note), now_ms=now_ms()))


COMMANDS = (monitor,)
