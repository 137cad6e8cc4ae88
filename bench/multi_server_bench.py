"""``python -m bench.multi_server_bench [--servers 4] [--seconds 60] [--rate 4]``: several stdio
servers on one store, each driven by its own MCP client, counting ``StoreBusyError``s.

Each client calls at ``rate`` calls/s (the audit's load: 3,561 calls from 4 servers in a minute
is about 3.7 calls/s each), three reads (search_traces, get_trace, describe_store) to one write
(tag_trace). The baseline, measured in the same run on a copy of the same store, is the same load
with the release clock and the wait signal turned off (``TRACESIEVE_MAX_HOLD_MS`` an
hour, ``TRACESIEVE_WAIT_SIGNAL=off``: the file is let go only after ``TRACESIEVE_IDLE_RELEASE_MS``
of idleness, as before), where a server whose client never pauses keeps the others out. Prints one JSON object: calls, busy errors, other errors, latency
percentiles and lost writes, for both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import duckdb
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[1]
READS = (("search_traces", {"limit": 5}), ("get_trace", {"trace_id": "t01", "max_chars": 2000}),
         ("describe_store", {}))


def server_params(db: Path, env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "server", "serve", "--db", str(db)],
                                 cwd=str(REPO), env={**os.environ, **env})


async def _client(name: str, db: Path, env: dict[str, str], seconds: float, rate: float,
                  out: dict[str, Any]) -> None:
    latencies: list[float] = []
    try:
        await _calls(name, db, env, seconds, rate, latencies, out)
    except Exception as error:  # a server that could not even start (its start-up check met the lock)
        out[name] = {"latencies": latencies, "busy": 0, "other": 0, "writes": 0, "failed": str(error)[:300] or repr(error), "acked": []}


async def _calls(name: str, db: Path, env: dict[str, str], seconds: float, rate: float, latencies: list[float],
                 out: dict[str, Any]) -> None:
    busy = other = writes = 0
    acked: list[str] = []
    async with Client(server_params(db, env)) as client:
        started = time.monotonic()
        i = 0
        while (elapsed := time.monotonic() - started) < seconds:
            if rate > 0 and (wait := i / rate - elapsed) > 0:
                await anyio.sleep(wait)
            tool, args = READS[i % 3] if i % 4 != 3 else ("tag_trace", {
                "key": name, "value": str(i), "trace_ids": ["t01", "t05"]})  # each write changes 2 traces
            t0 = time.monotonic()
            result = await client.call_tool(tool, args)
            latencies.append(time.monotonic() - t0)
            if result.is_error:
                text = result.content[0].text if result.content else ""
                busy, other = busy + ("locked by" in text), other + ("locked by" not in text)
            elif tool == "tag_trace":
                writes += 1
                acked.append(args["value"])
            i += 1
    out[name] = {"latencies": latencies, "busy": busy, "other": other, "writes": writes, "failed": None, "acked": acked}


async def drive(db: Path, *, servers: int, seconds: float, rate: float, env: dict[str, str]) -> dict[str, Any]:
    """Run ``servers`` stdio servers on ``db`` for ``seconds``; the per-run figures."""
    per: dict[str, Any] = {}
    async with anyio.create_task_group() as group:
        for n in range(servers):
            group.start_soon(_client, f"s{n}", db, env, seconds, rate, per)
    latencies = sorted(x for p in per.values() for x in p["latencies"])
    con = duckdb.connect(str(db), read_only=True)
    stored = set(con.execute("SELECT DISTINCT key, value FROM tag_history WHERE regexp_matches(key, '^s[0-9]+$') "
                             "GROUP BY 1, 2 HAVING count(*) = 2").fetchall())
    con.close()
    lost = [(name, v) for name, p in per.items() for v in p["acked"] if (name, v) not in stored]
    writes = sum(p["writes"] for p in per.values())
    return {"calls": len(latencies), "servers_failed": [p["failed"] for p in per.values() if p["failed"]],
            "busy_errors": sum(p["busy"] for p in per.values()),
            "other_errors": sum(p["other"] for p in per.values()), "writes_acknowledged": writes,
            "writes_lost": len(lost), "lost_examples": lost[:5],
            "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
            "max_ms": round(1000 * latencies[-1], 1) if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=4.0, help="Calls per second per client (0: back to back).")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    from server.storage.duckdb.store import DuckDBTraceStore
    from tests.factory import small_set

    work = Path(tempfile.mkdtemp(prefix="tracesieve-multi-"))
    seed = work / "seed.duckdb"
    seeded = DuckDBTraceStore(seed)
    seeded.write_traces(small_set())
    seeded.release()
    runs = {"release_on_a_clock": {}}
    if not args.skip_baseline:
        runs["baseline_idle_release_only"] = {"TRACESIEVE_MAX_HOLD_MS": "3600000", "TRACESIEVE_WAIT_SIGNAL": "off"}
    report: dict[str, Any] = {"servers": args.servers, "seconds": args.seconds, "rate_per_client": args.rate}
    for name, env in runs.items():
        db = work / f"{name}.duckdb"
        shutil.copy(seed, db)
        report[name] = anyio.run(lambda: drive(db, servers=args.servers, seconds=args.seconds, rate=args.rate,
                                               env=env))
    print(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
