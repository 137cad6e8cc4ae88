"""Monitors: false-alarm rate on stable traffic and detection delay for a seeded 10-point drop.

Two measurements, both through the shipped code (``tools.monitors.scheduler`` over a real DuckDB
store, a rule judge, the same alert tests and Holm correction):

1. **False alarms**: ``--stable`` windows (default 60) of stable synthetic traffic: pass rate
   0.85, error rate 3 % spread over three recurring error patterns, lognormal latency; every
   draw random (seeded), nothing tuned. The figure is the share of windows that raised any
   alert (target <= 5 %).
2. **Detection delay**: ``--drops`` independent replicates (default 5), each ``--before`` stable
   windows (default 8) then the pass rate drops 10 points (0.85 -> 0.75) for ``--after``
   windows; delay = windows from the drop until the pass-rate condition first fires (1 = the
   first dropped window; a new alert, or one already open from a false alarm seen again). A
   third, store-free figure replays the same test on 2,000 simulated
   windows (counts only) to give the delay distribution more precisely.

Volumes are "realistic": ``--per-window`` judged traces (default 300, e.g. 6,000 traces/hour
sampled at 5 %). Run: ``.venv/bin/python -m bench.monitor_bench`` (about 5-10 min on 2 busy cores).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np

from server.storage.duckdb.judges_sql import DuckDBJudgeStore
from server.storage.duckdb.monitors_sql import DuckDBMonitorStore
from server.storage.duckdb.store import DuckDBTraceStore
from tools.analysis.error_patterns import ErrorData, WindowCounts
from tools.judges import registry
from tools.models import Span, Trace
from tools.monitors import alerts as A
from tools.monitors import scheduler, specs
from tools.monitors.ports import JudgeCount

HOUR = 3_600_000
START = 1_764_000_000_000 - 1_764_000_000_000 % HOUR
PATTERNS = ("TimeoutError: inventory lookup timed out after 30s", "HTTP 503 from payments gateway",
            "ValueError: could not parse order id 'A-77'")
JUDGE = {"type": "regex", "field": "output", "pattern": "Sorry", "must": "not_match"}


def make_trace(rng: random.Random, tid: str, ts: int, pass_rate: float) -> Trace:
    ok = rng.random() < pass_rate
    failed = rng.random() < 0.03
    dur = int(rng.lognormvariate(7.2, 0.5))
    msg = rng.choice(PATTERNS) if failed else None
    root = Span(span_id=f"{tid}-r", parent_span_id=None, name="agent", span_type="AGENT", start_time_ns=ts * 10**6,
                end_time_ns=(ts + dur) * 10**6, status="ERROR" if failed else "OK")
    tool = Span(span_id=f"{tid}-t", parent_span_id=f"{tid}-r", name="lookup", span_type="TOOL", tool_name="lookup",
                start_time_ns=(ts + 5) * 10**6, end_time_ns=(ts + 50) * 10**6, status="ERROR" if failed else "OK",
                status_message=msg)
    answer = "It ships tomorrow." if ok else "Sorry, I cannot help with that."
    return Trace(trace_id=tid, timestamp_ms=ts, execution_time_ms=dur, status="ERROR" if failed else "OK",
                 name="agent", request=json.dumps({"q": f"order {tid}"}), response=json.dumps({"content": answer}),
                 environment="production", source="bench", spans=[root, tool], tags={})


def traffic(rng: random.Random, prefix: str, rates: list[float], per_window: int) -> list[Trace]:
    out = []
    for w, rate in enumerate(rates):
        for i in range(per_window):
            ts = START + w * HOUR + 1 + rng.randrange(HOUR - 2)
            out.append(make_trace(rng, f"{prefix}-{w:03d}-{i:04d}", ts, rate))
    return out


def run_monitor(db: Path, traces: list[Trace], n_windows: int) -> list[scheduler.WindowOutcome]:
    store = DuckDBTraceStore(db)
    for i in range(0, len(traces), 5000):
        store.write_traces(traces[i:i + 5000])
    judges, monitors = DuckDBJudgeStore(store), DuckDBMonitorStore(store)
    registry.define_judge(judges, registry.DefineJudgeInput(name="no_sorry", kind="rule", criterion="helpful",
                                                            spec=JUDGE), now_ms=START)
    specs.define_monitor(monitors, judges, specs.DefineMonitorInput(name="bench", judges=["no_sorry"], every="1h",
                                                                    settle="0m", since=START), now_ms=START)
    result = anyio.run(lambda: scheduler.run_monitors(monitors, judges, judges, scheduler.RunMonitorsInput(),
                                                      model=None, no_model_hint="", now_ms=START + n_windows * HOUR))
    return result.windows


def _sim_window(rng: np.random.Generator, per_window: int, history: list[tuple[int, int]], rate: float,
                rules: specs.AlertRules) -> tuple[bool, tuple[int, int]]:
    """One window of counts (judge passes, errors) tested against the last K: any alert?"""
    passed, errors = int(rng.binomial(per_window, rate)), int(rng.binomial(per_window, 0.03))
    base = history[-rules.baseline_windows:]
    n_base = per_window * len(base)
    ev = A.WindowEvidence(
        window=[JudgeCount(judge="j", passed=passed, failed=per_window - passed)],
        baseline=[JudgeCount(judge="j", passed=sum(b[0] for b in base), failed=n_base - sum(b[0] for b in base))],
        baseline_label="sim", errors=ErrorData(current=WindowCounts(traces=per_window, errors=errors),
                                               previous=WindowCounts(traces=n_base, errors=sum(b[1] for b in base)),
                                               patterns=[], pattern_count=0))
    return bool(A.evaluate(ev, rules)[0]), (passed, errors)


def simulated(per_window: int, runs: int, seed: int) -> tuple[float, list[int | None]]:
    """The same ``alerts.evaluate`` (judge + error-rate tests, Holm) on counts only, no store:
    the false-alarm rate over ``runs`` stable windows, and the delay per drop replicate."""
    rng = np.random.default_rng(seed)
    rules = specs.AlertRules()
    history = [(int(rng.binomial(per_window, 0.85)), int(rng.binomial(per_window, 0.03)))
               for _ in range(rules.baseline_windows)]
    alarms = 0
    for _ in range(runs):
        alarmed, counts = _sim_window(rng, per_window, history, 0.85, rules)
        alarms += alarmed
        history.append(counts)
    delays: list[int | None] = []
    for _ in range(runs):
        hist = history[-rules.baseline_windows:]
        delay = None
        for k in range(1, 13):
            alarmed, counts = _sim_window(rng, per_window, hist, 0.75, rules)
            if alarmed:
                delay = k
                break
            hist = hist + [counts]
        delays.append(delay)
    return alarms / runs, delays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stable", type=int, default=60)
    ap.add_argument("--drops", type=int, default=5)
    ap.add_argument("--before", type=int, default=8)
    ap.add_argument("--after", type=int, default=4)
    ap.add_argument("--per-window", type=int, default=300)
    ap.add_argument("--seed", type=int, default=19)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        windows = run_monitor(Path(tmp) / "stable.duckdb", traffic(rng, "s", [0.85] * args.stable, args.per_window),
                              args.stable)
        alarmed = [w for w in windows if w.new_alerts]
        kinds = sorted({a.kind for w in alarmed for a in w.new_alerts})
        print(f"false alarms: {len(alarmed)}/{len(windows)} stable windows raised an alert "
              f"({len(alarmed) / len(windows):.1%}; kinds: {', '.join(kinds) or 'none'}); "
              f"{args.per_window} traces/window, {(time.perf_counter() - started) / len(windows):.2f} s/window")
        delays, pre_alarms, pre_kinds = [], 0, []
        for r in range(args.drops):
            rates = [0.85] * args.before + [0.75] * args.after
            ws = run_monitor(Path(tmp) / f"drop{r}.duckdb", traffic(rng, f"d{r}", rates, args.per_window), len(rates))
            early = sum(bool(w.new_alerts) for w in ws[:args.before])
            pre_alarms += early
            pre_kinds += [a.kind for w in ws[:args.before] for a in w.new_alerts]
            hit = next((k for k, w in enumerate(ws[args.before:], 1)    # new, or an open alert seen again
                        if any(f.startswith(("regression:", "signal:")) for f in w.firing)), None)
            delays.append(hit)
            print(f"drop replicate {r + 1}: detected in window {hit} after the drop "
                  f"({early} alert(s) in the {args.before} windows before it)")
        print(f"detection delay (store, {args.drops} replicates): {delays}")
        total = len(windows) + args.drops * args.before
        print(f"false alarms over all stable windows of this run: {len(alarmed) + pre_alarms}/{total} "
              f"({(len(alarmed) + pre_alarms) / total:.1%}; before-drop kinds: {', '.join(pre_kinds) or 'none'})")
    fa, sim = simulated(args.per_window, 2000, args.seed)
    print(f"false alarms (simulated, 2000 stable windows, judge + error-rate tests): {fa:.1%} of windows")
    caught = [d for d in sim if d is not None]
    shares = {k: sum(d == k for d in caught) / len(sim) for k in (1, 2, 3)}
    print(f"detection delay (simulated, 2000 replicates, same test): window 1 {shares[1]:.1%}, by window 2 "
          f"{shares[1] + shares[2]:.1%}, by window 3 {sum(shares.values()):.1%}, missed in 12: "
          f"{(len(sim) - len(caught)) / len(sim):.1%}")


if __name__ == "__main__":
    main()
