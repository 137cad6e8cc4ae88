"""Turn the per-size result records into the markdown tables of BENCHMARKS.md (ratios first)."""

from __future__ import annotations

import math
from typing import Any

from bench.workloads import THROUGHPUT, TITLES, search_questions

ROWS = ["ingest", *[q.key for q in search_questions(0)], "search.page10", "analysis.error_rate_24h",
        "analysis.span_latency_trace", "analysis.span_latency_window", "dataset.from_tags",
        "tag.by_ids", "tag.by_filter"]
QUESTION_TITLES = {q.key: q.title for q in search_questions(0)}


def title(key: str) -> str:
    return TITLES.get(key) or QUESTION_TITLES.get(key, key)


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:,.1f} ms"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


def figure(record: dict[str, Any], system: str, key: str) -> dict[str, Any] | None:
    """{'value', 'p95', 'runs', 'kind'} for one cell: seconds per call, or a rate for throughputs."""
    side = record.get(system) or {}
    if key == "ingest":
        ing = (side.get("load") or {}).get("ingest")
        return None if not ing else {"value": ing["rate"], "p95": None, "runs": 1, "kind": "rate"}
    t = (side.get("timings") or {}).get(key)
    if not t:
        return None
    if key in THROUGHPUT:
        count = t.get("count") or 0
        return {"value": count / t["median_s"] if t["median_s"] else None, "p95": None, "runs": t["runs"],
                "kind": "rate"}
    return {"value": t["median_s"], "p95": t["p95_s"], "runs": t["runs"], "kind": "time", "warmed": t["warmed"]}


def speedup(ts: dict[str, Any] | None, ml: dict[str, Any] | None) -> float | None:
    """How many times faster tracesieve is (> 1 is faster), from medians or rates."""
    if not ts or not ml or not ts["value"] or not ml["value"]:
        return None
    return ml["value"] / ts["value"] if ts["kind"] == "time" else ts["value"] / ml["value"]


def ratio(ts: dict[str, Any] | None, ml: dict[str, Any] | None) -> float | None:
    """tracesieve / MLflow of the figure itself (time for latencies, rate for throughputs)."""
    if not ts or not ml or not ts["value"] or not ml["value"]:
        return None
    return ts["value"] / ml["value"]


def _cell(f: dict[str, Any] | None) -> str:
    if f is None:
        return "not measured"
    if f["kind"] == "rate":
        return _rate(f["value"])
    text = f"{_ms(f['value'])} (p95 {_ms(f['p95'])}, n={f['runs']})"
    return text if f.get("warmed", True) else text + " cold"


def size_table(record: dict[str, Any]) -> str:
    n = record["n"]
    has_held = bool((record.get("tracesieve_held") or {}).get("timings"))
    head = ["workload", "tracesieve median (p95, runs)", "MLflow median (p95, runs)", "ratio ts/MLflow", "speed-up"]
    if has_held:
        head.append("held-connection experiment")
    lines = [f"### {n:,} traces ({record.get('spans', 0):,} spans)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in ROWS:
        ts, ml = figure(record, "tracesieve", key), figure(record, "mlflow", key)
        if ts is None and ml is None:
            continue
        r, s = ratio(ts, ml), speedup(ts, ml)
        row = [title(key), _cell(ts), _cell(ml), "—" if r is None else f"{r:.3g}",
               "—" if s is None else (f"**{s:,.1f}×**" if s >= 1 else f"{s:.2g}× (slower)")]
        if has_held:
            held = figure(record, "tracesieve_held", key)
            row.append("—" if held is None else _cell(held).split(" (")[0])
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def extras(record: dict[str, Any]) -> str:
    out = []
    ts = record.get("tracesieve") or {}
    ml = record.get("mlflow") or {}
    spans = record.get("spans") or 0
    for name, side in (("tracesieve (DuckDB)", ts), ("MLflow (sqlite)", ml)):
        load = side.get("load") or {}
        if load.get("db_bytes") and spans:
            out.append(f"- {name} store: {load['db_bytes'] / 2**20:,.0f} MiB, "
                       f"{load['db_bytes'] / spans * 1e6 / 2**30:,.2f} GiB per million spans")
        if load.get("replicated_from"):
            r = load["replicate"]
            out.append(f"- {name} store built by copying the ingested {load['replicated_from']:,}-trace store "
                       f"{record['n'] // load['replicated_from']}x with fresh ids (bench/replicate.py, {r['seconds']:.0f} s); "
                       "no ingest figure at this size")
        ing = load.get("ingest")
        if ing:
            out.append(f"- {name} ingest: {ing['traces']:,} traces / {ing['spans']:,} spans in {ing['seconds']:,.1f} s")
        if (load.get("optimize") or {}).get("rewritten"):
            out.append(f"- {name}: rows put in time order after the load (`tracesieve optimize`) in "
                       f"{load['optimize']['seconds']:,.1f} s, not counted in the ingest rate")
    mcp = record.get("mcp") or {}
    if mcp.get("mcp_median_s") is not None:
        out.append(f"- MCP stdio round trip of a small search_traces call: median {_ms(mcp['mcp_median_s'])} "
                   f"(p95 {_ms(mcp['mcp_p95_s'])}) vs {_ms(mcp['direct_median_s'])} in-process: overhead "
                   f"{_ms(mcp['mcp_median_s'] - mcp['direct_median_s'])}")
    if mcp.get("rss_peak"):
        out.append(f"- `tracesieve serve` peak RSS (VmHWM) after answering every search and analysis question "
                   f"once over stdio: {mcp['rss_peak'] / 2**20:,.0f} MiB (idle after start: "
                   f"{(mcp.get('rss_idle') or 0) / 2**20:,.0f} MiB)")
    checks = record.get("answers") or {}
    for key, value in checks.items():
        out.append(f"- answer check `{key}`: {value}")
    return "\n".join(out)


def render(records: list[dict[str, Any]]) -> str:
    parts = []
    for record in records:
        parts.append(size_table(record))
        more = extras(record)
        if more:
            parts.append(more)
    return "\n\n".join(parts) + "\n"


def all_ratios(record: dict[str, Any]) -> dict[str, float]:
    """Every finite ratio of a record (what the smoke test checks)."""
    out = {}
    for key in ROWS:
        r = ratio(figure(record, "tracesieve", key), figure(record, "mlflow", key))
        if r is not None and math.isfinite(r):
            out[key] = r
    return out
