"""Monitors over a real store file with an injected clock: windows run once and in order, a seeded
drop raises one alert (regression only for a calibrated judge), the webhook reaches a real HTTP
server on 127.0.0.1, the budget stops a window cleanly, and the MCP tools read it all back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import duckdb
import pytest
from mcp import Client

from server.mcp.app import build_app
from server.monitoring.webhook import deliver_pending
from server.providers import EndpointConfig
from server.storage.duckdb.judges_sql import DuckDBJudgeStore
from server.storage.duckdb.monitors_sql import DuckDBMonitorStore
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import BASE_MS, stored_rows, trace
from tests.scripted_llm import scripted_llm
from tools.judges import registry
from tools.monitors import scheduler, specs, status

MIN = 60_000
EVERY = 10 * MIN
PER_WINDOW = 40
NO_SORRY = {"type": "regex", "field": "output", "pattern": "Sorry", "must": "not_match"}


def traffic(window: int, failing: int, *, in_progress: int = 0) -> list:
    """PER_WINDOW finished traces in window ``window`` (0-based), ``failing`` of them apologise."""
    out = [trace(f"w{window:02d}-{i:02d}", window * 10 + 1 + i % 8, question=f"Where is order {window}-{i}?",
                 answer="Sorry, I cannot help." if i < failing else "It ships tomorrow.") for i in range(PER_WINDOW)]
    out += [trace(f"w{window:02d}-run{i}", window * 10 + 2, answer="Sorry").model_copy(
        update={"status": "IN_PROGRESS"}) for i in range(in_progress)]
    return out


def setup(db: Path, windows: list[int], **monitor: object) -> tuple[DuckDBTraceStore, DuckDBMonitorStore,
                                                                    DuckDBJudgeStore]:
    store = DuckDBTraceStore(db, idle_release_s=5)   # kept across a pass's many small calls, as in production
    store.write_traces([t for k, failing in enumerate(windows) for t in traffic(k, failing, in_progress=2)])
    judges, monitors = DuckDBJudgeStore(store), DuckDBMonitorStore(store)
    registry.define_judge(judges, registry.DefineJudgeInput(name="no_sorry", kind="rule", criterion="helpful",
                                                            spec=NO_SORRY), now_ms=BASE_MS)
    specs.define_monitor(monitors, judges, specs.DefineMonitorInput(
        name="prod", judges=["no_sorry"], every="10m", settle="0m", since=BASE_MS, **monitor), now_ms=BASE_MS)
    return store, monitors, judges


def run(monitors: DuckDBMonitorStore, judges: DuckDBJudgeStore, windows_done: int, model: object = None
        ) -> scheduler.RunMonitorsResult:
    """One pass with the clock at the end of window ``windows_done``."""
    return anyio.run(lambda: scheduler.run_monitors(monitors, judges, judges, scheduler.RunMonitorsInput(),
                                                    model=model, no_model_hint="configure a model",
                                                    now_ms=BASE_MS + windows_done * EVERY))


def test_windows_run_once_in_order_and_a_drop_raises_one_alert_that_persists(tmp_path: Path) -> None:
    store, monitors, judges = setup(tmp_path / "m.duckdb", [6] * 5 + [16, 16])
    first = run(monitors, judges, 5)
    assert [w.end for w in first.windows] == sorted(w.end for w in first.windows) and len(first.windows) == 5
    assert all(w.status == "completed" and w.traces == PER_WINDOW for w in first.windows)  # IN_PROGRESS left out
    assert first.new_alerts == 0 and first.windows[-1].pass_rates == {"no_sorry@1": 0.85}
    assert run(monitors, judges, 5).windows == []                      # nothing twice
    second = run(monitors, judges, 7)
    alert, = second.windows[0].new_alerts
    assert alert.kind == "signal" and alert.subject == "no_sorry@1"    # not calibrated: signal, not regression
    assert alert.evidence["window"]["failed"] == 16 and alert.evidence["baseline"]["passed"] == 5 * 34
    assert alert.evidence["p_adjusted"] < 0.05 and len(alert.evidence["example_trace_ids"]) == 5
    assert second.windows[1].new_alerts == [] and second.new_regressions == 0
    stored, = monitors.list_alerts(monitor="prod", status="open", limit=10)
    assert stored.alert_id == alert.alert_id and stored.windows_seen == 2
    store.release()
    assert stored_rows(tmp_path / "m.duckdb", "SELECT count(*), count(DISTINCT end_ms) FROM monitor_windows") == \
        [(7, 7)]


def test_a_calibrated_judge_raises_regression_and_stable_windows_stay_quiet(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    store, monitors, judges = setup(db, [6, 5, 7, 6, 5, 16])
    version = registry.resolve(judges, "no_sorry").version
    store.release()
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO calibrations VALUES ('c1', 'no_sorry', $v, 'helpful', NULL, 60, 0.8, 0.7, 0.9, 0.8, "
                "'gate', 0.6, 0.4, 1, '{}')", {"v": version})
    con.close()
    result = run(monitors, judges, 6)
    assert [len(w.new_alerts) for w in result.windows] == [0] * 5 + [1]
    assert result.new_regressions == 1 and result.windows[-1].new_alerts[0].kind == "regression"


def test_an_acked_alert_is_not_raised_again_and_resolves_after_two_clear_windows(tmp_path: Path) -> None:
    _, monitors, judges = setup(tmp_path / "m.duckdb", [6] * 4 + [16, 16, 6, 6])
    run(monitors, judges, 5)
    alert, = monitors.list_alerts(monitor=None, status="open", limit=5)
    acked = status.ack_alert(monitors, status.AckAlertInput(alert_id=alert.alert_id, by="oncall"), now_ms=BASE_MS)
    assert acked.changed and acked.alert.status == "acked"
    assert run(monitors, judges, 6).new_alerts == 0                    # still dropped: no new alert
    run(monitors, judges, 7)                                            # back to 85%: one clear window ...
    assert monitors.get_alert(alert.alert_id).status == "acked"
    run(monitors, judges, 8)                                            # ... two in a row resolve it
    assert monitors.get_alert(alert.alert_id).status == "resolved"


def test_an_error_pattern_absent_from_the_baseline_is_an_emerging_pattern_with_examples(tmp_path: Path) -> None:
    store, monitors, judges = setup(tmp_path / "m.duckdb", [6] * 4)
    store.write_traces([trace(f"w04-{i:02d}", 41 + i % 8, question=f"Refund {i}?", tool_status="ERROR" if i < 6
                              else "OK") for i in range(PER_WINDOW)])
    window = run(monitors, judges, 5).windows[-1]
    alert, = window.new_alerts
    assert alert.kind == "emerging_pattern" and alert.subject == "TimeoutError at 'lookup_order'"
    assert alert.evidence["traces"] == 6 and alert.evidence["baseline_traces"] == 0
    assert sorted(alert.evidence["example_trace_ids"]) == [f"w04-0{i}" for i in range(3, 6)]


def test_new_alerts_reach_a_webhook_on_loopback_once(tmp_path: Path) -> None:
    _, monitors, judges = setup(tmp_path / "m.duckdb", [6] * 4 + [16])
    run(monitors, judges, 5)
    with webhook_server() as (url, received):
        assert deliver_pending(monitors, url) == (1, 0)
        assert deliver_pending(monitors, url) == (0, 0)                 # delivered once
    body, = received
    assert body["text"].startswith(":warning: [prod] signal: no_sorry@1 pass rate 60.0% (24/40)")
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"


def test_an_unreachable_webhook_keeps_the_alert_for_the_next_run(tmp_path: Path) -> None:
    _, monitors, judges = setup(tmp_path / "m.duckdb", [6] * 4 + [16])
    run(monitors, judges, 5)
    with webhook_server() as (url, _):
        pass                                                            # closed again: nothing listens
    assert deliver_pending(monitors, url, timeout_s=2) == (0, 1)
    assert len(monitors.unnotified_alerts()) == 1


def test_a_token_budget_stops_the_window_cleanly_and_a_new_window_is_judged(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    store = DuckDBTraceStore(db, idle_release_s=5)
    store.write_traces(traffic(0, 0) + traffic(1, 0))
    judges, monitors = DuckDBJudgeStore(store), DuckDBMonitorStore(store)
    registry.define_judge(judges, registry.DefineJudgeInput(name="helpful", kind="llm", criterion="helpful", spec={
        "type": "llm", "rubric": "Pass if the answer helps the customer.", "fields": ["input", "output"]}),
        now_ms=BASE_MS)
    specs.define_monitor(monitors, judges, specs.DefineMonitorInput(
        name="llm", judges=["helpful"], every="10m", settle="0m", since=BASE_MS, sample_rate=0.5,
        budget=specs.Budget(max_tokens=600)), now_ms=BASE_MS)
    with scripted_llm() as llm:
        model = EndpointConfig.from_env({"TRACESIEVE_JUDGE_BASE_URL": llm.base_url + "/v1",
                                         "TRACESIEVE_JUDGE_MODEL": "judge-mini"}).build({"OPENAI_API_KEY": "k"})
        result = run(monitors, judges, 2, model=model)
        calls = len(llm.requests)
    first, second = result.windows
    assert first.status == second.status == "budget_stopped"
    assert 0 < first.spend.calls < first.sampled < PER_WINDOW           # stopped early, sample was hash-cut
    assert "token budget 600 reached" in first.note
    assert calls == first.spend.calls + second.spend.calls              # every call paid is accounted for
    assert first.spend.input_tokens + first.spend.output_tokens >= 600


def test_a_call_budget_cuts_the_sample_before_anything_runs(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "m.duckdb", idle_release_s=5)
    store.write_traces(traffic(0, 0))
    judges, monitors = DuckDBJudgeStore(store), DuckDBMonitorStore(store)
    registry.define_judge(judges, registry.DefineJudgeInput(name="helpful", kind="llm", criterion="helpful", spec={
        "type": "llm", "rubric": "Pass if the answer helps the customer.", "fields": ["output"]}), now_ms=BASE_MS)
    specs.define_monitor(monitors, judges, specs.DefineMonitorInput(
        name="llm", judges=["helpful"], every="10m", settle="0m", since=BASE_MS,
        budget=specs.Budget(max_judge_calls=7)), now_ms=BASE_MS)
    with scripted_llm() as llm:
        model = EndpointConfig.from_env({"TRACESIEVE_JUDGE_BASE_URL": llm.base_url + "/v1",
                                         "TRACESIEVE_JUDGE_MODEL": "judge-mini"}).build({"OPENAI_API_KEY": "k"})
        window, = run(monitors, judges, 1, model=model).windows
    assert window.status == "completed" and window.sampled == 7 and window.traces == PER_WINDOW
    assert "judged 7 of 40" in window.note and window.spend.calls <= 7
    store.release()
    (stats,), = stored_rows(tmp_path / "m.duckdb", "SELECT stats FROM monitor_windows")
    assert json.loads(stats)["selection_probability"] == 7 / 40


def test_define_refuses_overlapping_windows_and_unknown_judges(tmp_path: Path) -> None:
    _, monitors, judges = setup(tmp_path / "m.duckdb", [6])
    with pytest.raises(Exception, match="longer than every '10m': windows would overlap"):
        specs.define_monitor(monitors, judges, specs.DefineMonitorInput(name="x", judges=["no_sorry"], every="10m",
                                                                        window="1h"), now_ms=BASE_MS)
    with pytest.raises(Exception, match="No judge named 'no_sory'. Did you mean 'no_sorry'"):
        specs.define_monitor(monitors, judges, specs.DefineMonitorInput(name="x", judges=["no_sory"]), now_ms=BASE_MS)
    again = specs.define_monitor(monitors, judges, specs.DefineMonitorInput(
        name="prod", judges=["no_sorry"], every="10m", settle="0m", since=BASE_MS + 1), now_ms=BASE_MS)
    assert not again.created and again.monitor.ref == "prod@1"


@pytest.mark.anyio
async def test_mcp_tools_show_status_with_a_chart_and_ack_alerts(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    store, monitors, judges = setup(db, [6] * 4 + [16])
    await scheduler.run_monitors(monitors, judges, judges, scheduler.RunMonitorsInput(), model=None,
                                 no_model_hint="", now_ms=BASE_MS + 5 * EVERY)
    store.release()
    async with Client(build_app(DuckDBTraceStore(db))) as client:
        st = await client.call_tool("monitor_status", {"monitor": "prod", "windows": 5})
        assert not st.is_error and st.content[1].mime_type == "image/png"
        data = st.structured_content
        assert len(data["windows"]) == 5 and data["windows"][-1]["judges"][0]["pass_rate"] == 0.6
        low, high = data["windows"][-1]["judges"][0]["low"], data["windows"][-1]["judges"][0]["high"]
        assert low < 0.6 < high
        alerts = (await client.call_tool("list_alerts", {"status": "open"})).structured_content["alerts"]
        acked = await client.call_tool("ack_alert", {"alert_id": alerts[0]["alert_id"], "note": "rolling back"})
        assert acked.structured_content["alert"]["status"] == "acked"
        missing = await client.call_tool("ack_alert", {"alert_id": "al-nope"})
        assert missing.is_error and "No alert 'al-nope'" in missing.content[0].text
        defined = await client.call_tool("define_monitor", {"name": "p2", "judges": ["no_sorry"], "every": "1h",
                                                            "budget": {"max_judge_calls": 100}})
        assert defined.structured_content["created"] and "100 calls" in defined.structured_content["monitor"][
            "explained"]


@contextmanager
def webhook_server() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_follow_loop_judges_due_windows_and_stops_when_asked(tmp_path: Path) -> None:
    from server.monitoring.loop import follow

    now = int(time.time() * 1000)
    since = now // EVERY * EVERY - 2 * EVERY
    minute = (since - BASE_MS) // MIN
    store = DuckDBTraceStore(tmp_path / "f.duckdb", idle_release_s=5)
    store.write_traces([trace(f"f{i:02d}", minute + 1 + i % 8, question=f"Q{i}") for i in range(30)])
    judges, monitors = DuckDBJudgeStore(store), DuckDBMonitorStore(store)
    registry.define_judge(judges, registry.DefineJudgeInput(name="no_sorry", kind="rule", criterion="helpful",
                                                            spec=NO_SORRY), now_ms=now)
    specs.define_monitor(monitors, judges, specs.DefineMonitorInput(name="live", judges=["no_sorry"], every="10m",
                                                                    settle="0m", since=since), now_ms=now)
    stop, passes = threading.Event(), []

    def seen(result: scheduler.RunMonitorsResult) -> None:
        passes.append(result)
        stop.set()

    loop = threading.Thread(target=follow, args=(store, stop), kwargs={"poll_s": 1.0, "on_result": seen})
    loop.start()
    loop.join(60)
    assert not loop.is_alive()
    assert [(w.status, w.traces) for w in passes[0].windows] == [("completed", 30), ("completed", 0)]


def test_slices_are_tested_under_one_holm_family_and_a_pinned_run_can_be_the_baseline(tmp_path: Path) -> None:
    _, monitors, judges = setup(tmp_path / "m.duckdb", [6, 6, 6, 16])
    first = run(monitors, judges, 1).windows[0]
    specs.define_monitor(monitors, judges, specs.DefineMonitorInput(
        name="pinned", judges=["no_sorry"], every="10m", settle="0m", since=BASE_MS + 3 * EVERY,
        alerts=specs.AlertRules(baseline_run=first.run_id, slice_by=["environment"])), now_ms=BASE_MS)
    window, = anyio.run(lambda: scheduler.run_monitors(
        monitors, judges, judges, scheduler.RunMonitorsInput(monitors=["pinned"]), model=None, no_model_hint="",
        now_ms=BASE_MS + 4 * EVERY)).windows
    # judge overall + judge x environment=production, then error rate and p95: four tests, one correction
    assert window.tests == 4
    subjects = sorted(a.subject for a in window.new_alerts)
    assert subjects == ["no_sorry@1", "no_sorry@1 [environment=production]"]
    assert all(a.evidence["baseline_from"] == f"run {first.run_id}" for a in window.new_alerts)


def test_monitor_run_once_exits_1_on_a_new_regression_and_posts_it_to_the_configured_webhook(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from server.cli.main import cli

    db = tmp_path / "c.duckdb"
    since = int(time.time() * 1000) // EVERY * EVERY - 5 * EVERY
    shift = (since - BASE_MS) // MIN
    store = DuckDBTraceStore(db)
    store.write_traces([t.model_copy(update={"timestamp_ms": t.timestamp_ms + shift * MIN})
                        for k, failing in enumerate([6, 6, 6, 6, 16]) for t in traffic(k, failing)])
    judges, monitors = DuckDBJudgeStore(store), DuckDBMonitorStore(store)
    registry.define_judge(judges, registry.DefineJudgeInput(name="no_sorry", kind="rule", criterion="helpful",
                                                            spec=NO_SORRY), now_ms=since)
    version = registry.resolve(judges, "no_sorry").version
    with store.writing() as con:
        con.execute("INSERT INTO calibrations VALUES ('c1', 'no_sorry', $v, 'helpful', NULL, 60, 0.8, 0.7, 0.9, "
                    "0.8, 'gate', 0.6, 0.4, 1, '{}')", {"v": version})
    runner = CliRunner()
    defined = runner.invoke(cli, ["monitor", "define", "live", "--judge", "no_sorry", "--every", "10m", "--settle",
                                  "0m", "--since", str(since), "--db", str(db)])
    assert defined.exit_code == 0, defined.output
    with webhook_server() as (url, received):
        monkeypatch.setenv("TRACESIEVE_ALERT_WEBHOOK", url)
        ran = runner.invoke(cli, ["monitor", "run", "--once", "--db", str(db)])
    assert ran.exit_code == 1, ran.output
    assert "1 new regression alert(s)." in ran.output
    body, = received
    assert body["text"].startswith(":rotating_light: [live] regression: no_sorry@1 pass rate 60.0% (24/40)")
    again = runner.invoke(cli, ["monitor", "run", "--once", "--db", str(db)])
    assert again.exit_code == 0 and json.loads(again.output)["windows"] == []
