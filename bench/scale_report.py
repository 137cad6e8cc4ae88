"""The table ``bench.scale`` prints: each engine's median, the chdb / DuckDB ratio, and what
ClickHouse's ``EXPLAIN indexes = 1`` says each search read (granules kept of those in the table,
and which index did the cutting), so a reader sees the pruning behind every chdb figure."""

from __future__ import annotations

import re
from typing import Any

from bench.measure import Timing

_READ = re.compile(r"ReadFromMergeTree \((?:\w+\.)?(\w+)\)")
_INDEX = re.compile(r"^\s*(Min-Max|Partition|PrimaryKey|Skip)\s*$")
_NAME = re.compile(r"^\s*Name: (\w+)")
_GRANULES = re.compile(r"^\s*Granules: (\d+)/(\d+)")


def explain_summary(plans: list[str]) -> str:
    """``table granules kept/total (by index, ...)`` for each table read by each plan, e.g.
    ``traces 12/2,400 (PrimaryKey)``; tables read by several statements appear once per read."""
    reads: list[str] = []
    for plan in plans:
        table, total, kept, cutters, index = None, None, None, [], None
        for line in plan.splitlines() + ["ReadFromMergeTree (end)"]:
            if (m := _READ.search(line)) is not None:
                if table is not None and total is not None:
                    reads.append(f"{table} {kept:,}/{total:,}" + (f" ({', '.join(cutters)})" if cutters else ""))
                table, total, kept, cutters, index = m.group(1), None, None, [], None
            elif (m := _INDEX.match(line)) is not None:
                index = m.group(1)
            elif (m := _NAME.match(line)) is not None and index == "Skip":
                index = f"skip {m.group(1)}"
            elif (m := _GRANULES.match(line)) is not None and index is not None:
                now, of = int(m.group(1)), int(m.group(2))
                if total is None:
                    total = of
                if kept is not None and now < kept or kept is None and now < of:
                    cutters.append(index)
                kept = now
    counted: dict[str, int] = {}
    for read in reads:  # paging repeats the same tag read per page: say it once, with a count
        counted[read] = counted.get(read, 0) + 1
    return "; ".join(r + (f" ×{k}" if k > 1 else "") for r, k in counted.items()) or "—"


def _fmt(t: Timing | None) -> str:
    if t is None:
        return "n/a (not on chdb yet)"
    if not t.ok:
        return f"fails: {t.error}"
    ms = t.median * 1000
    text = f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"
    return text + ("" if t.warmed else " (1 run)")


def _millions(spans: int) -> str:
    return f"{spans / 1e6:.1f}M"


def markdown(meta: dict[str, Any], loads: dict[str, dict[str, Any]], columns: dict[str, dict[str, Timing]],
             pruning: dict[str, dict[str, str]]) -> str:
    """The table: DuckDB and chdb at the first size (ratio chdb / DuckDB), then chdb at each grown size
    (ratio to chdb at the first size), then the pruning of the largest chdb store's plans."""
    duck, ch = loads["duckdb"], loads["chdb"]
    grown = [c for c in columns if c.startswith("chdb@")]
    last = grown[-1] if grown else "chdb"
    head = (f"| workload | DuckDB {_millions(duck['spans'])} | chdb {_millions(ch['spans'])} | chdb / DuckDB | "
            + "".join(f"chdb {_millions(loads[c]['spans'])} | ×{_millions(ch['spans'])} | " for c in grown)
            + f"chdb {_millions(loads[last]['spans'])}: granules read / in table (index that pruned) |")
    lines = [f"{duck['traces']:,} traces / {duck['spans']:,} spans in DuckDB and {ch['traces']:,} / {ch['spans']:,} "
             f"in chdb ({meta['copies']} copies of {meta['traces_generated']:,} ingested traces)"
             + "".join(f", then chdb alone grown to {loads[c]['traces']:,} / {loads[c]['spans']:,}" for c in grown)
             + f"; median of {meta['repeats']} after a warm-up", "", head,
             "|---|---:|---:|---:|" + "---:|---:|" * len(grown) + "---|"]
    rate_ratio = duck["ingest_rate"] / ch["ingest_rate"]
    lines.append(f"| ingest from OTLP files (spans/s) | {duck['ingest_rate']:,.0f}/s | {ch['ingest_rate']:,.0f}/s | "
                 f"{rate_ratio:.2f} (time) | " + "— | — | " * len(grown) + " |")
    for title, t in columns["duckdb"].items():
        c = columns["chdb"].get(title)
        row = f"| {title} | {_fmt(t)} | {_fmt(c)} | {f'{c.median / t.median:.2f}' if c and c.ok and t.ok else '—'} | "
        for g in grown:
            big = columns[g].get(title)
            row += f"{_fmt(big)} | {f'{big.median / c.median:.2f}' if big and c and big.ok and c.ok else '—'} | "
        lines.append(row + pruning.get(last, {}).get(title, "") + " |")
    lines.append("")
    for key, load in loads.items():
        if "ingest_s" in load:
            lines.append(
                f"- {key}: ingest {load['ingest_spans']:,} spans in {load['ingest_s']:.0f} s, peak RSS of the ingest "
                f"{load['ingest_peak_rss'] / 2**20:,.0f} MiB (whole load with copies {load['peak_rss'] / 2**20:,.0f} "
                f"MiB); copies {load['replicate_s']:.0f} s")
        else:
            lines.append(f"- {key}: grown by copies in {load['replicate_s']:.0f} s")
        lines[-1] += (f"; store {load['store_bytes'] / 2**30:.2f} GiB ({load['store_bytes'] / 2**30 / (load['spans'] / 1e6):.2f}"
                      f" GiB per million spans)" + (f"; active parts {load['parts']}" if load.get("parts") else ""))
    lines.append(f"- machine {meta['machine']}, load average at the end {tuple(round(x, 1) for x in meta['load_average'])}, "
                 f"whole run {meta['wall_s'] / 60:.0f} min")
    return "\n".join(lines)
