"""`tracesieve demo`: build a realistic store, then drive the real server as an agent would.

The walk-through starts ``tracesieve serve`` as a subprocess and talks to it over stdio with
the real MCP client, printing what an agent sees at each step: describe the store, find
failing traces, read one, tag eval candidates, ask where the time goes and what broke, build a
redacted dataset, run judges on it, label a queue, calibrate the judges and gate a release.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment

from server.demo import demo_store
from server.demo.demo_store import DemoStore
from server.demo.walkthrough_calibration import calibration_steps
from server.demo.walkthrough_judges import judge_server_env, judge_steps
from server.demo.walkthrough_monitors import monitor_steps
from server.storage.factory import StoreUrl

Echo = Callable[[str], None]
T = TypeVar("T")

#: The DuckDB query_sql step, and the same question in ClickHouse SQL (same columns, same p95 definition:
#: linear interpolation between closest ranks, DuckDB's quantile_cont).
AGGREGATE_SQL = {
    "duckdb": "SELECT environment, count(*) AS traces, round(avg(CASE WHEN state = 'ERROR' THEN 1 ELSE 0 END) * 100, 1) "
              "AS error_pct, round(quantile_cont(execution_duration_ms, 0.95)) AS p95_ms "
              "FROM trace_unified GROUP BY 1 ORDER BY 2 DESC",
    "chdb": "SELECT environment, count(*) AS traces, round(avg(CASE WHEN state = 'ERROR' THEN 1 ELSE 0 END) * 100, 1) "
            "AS error_pct, round(quantileExactInclusive(0.95)(execution_duration_ms)) AS p95_ms "
            "FROM trace_unified GROUP BY 1 ORDER BY 2 DESC",
}


class Session:
    """A printing wrapper around a connected MCP client."""

    def __init__(self, client: Client, echo: Echo, params: StdioServerParameters | None = None) -> None:
        self.client = client
        self.echo = echo
        self._params = params  # how to start the server again (``outside``); None: a client given as is
        self._stack: AsyncExitStack | None = None

    @classmethod
    async def start(cls, params: StdioServerParameters, echo: Echo) -> Session:
        """A session on a server started with ``params``, which ``outside`` can stop and start again."""
        session = cls(None, echo, params)  # type: ignore[arg-type]  (connected on the next line)
        await session._connect()
        return session

    async def _connect(self) -> None:
        assert self._params is not None
        self._stack = AsyncExitStack()
        self.client = await self._stack.enter_async_context(Client(self._params))

    async def aclose(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    @asynccontextmanager
    async def outside(self, store: DemoStore) -> AsyncIterator[None]:
        """A block in which other processes may use ``store``: a chdb folder serves one process at a
        time, so the server stops for the block and starts again after it (a DuckDB file is shared)."""
        if not store.exclusive or self._params is None:
            yield
            return
        await self.aclose()
        try:
            yield
        finally:
            await self._connect()

    async def offline(self, store: DemoStore, fn: Callable[..., T], *args: Any) -> T:
        """``fn(store.url, *args)`` from ``server.demo.demo_store``, with the store to itself if it needs it."""
        async with self.outside(store):
            return await anyio.to_thread.run_sync(lambda: store.run(fn, *args))

    async def call(self, tool: str, args: dict[str, Any], why: str) -> dict[str, Any] | str:
        self.echo("")
        self.echo(f"▶ {why}")
        self.echo(f"  agent → {tool}({', '.join(f'{k}={v!r}' for k, v in args.items())})")
        result = await self.client.call_tool(tool, args)
        if result.is_error:
            text = "\n".join(getattr(c, "text", "") for c in result.content)
            self.echo("  ✗ error the agent reads:")
            for line in text.splitlines():
                self.echo("    " + line)
            return text
        return _with_nulls(result.structured_content or {})


class _Absent(dict):
    """Results leave null members out (``server/mcp/budget.py``); the walkthrough reads them as None."""

    def __missing__(self, key: str) -> None:
        return None


def _with_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return _Absent({k: _with_nulls(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_with_nulls(v) for v in value]
    return value


def _trace_line(t: dict[str, Any]) -> str:
    tools = ",".join(t["tool_names"]) or "-"
    return (f"    {t['trace_id'][:14]}… {t['time'][:16]} {t['status']:<5} {t['duration_ms']:>6}ms "
            f"tools={tools:<28} “{(t['request_preview'] or '')[:60]}”")


async def _walk(store: DemoStore, echo: Echo) -> None:
    # The stdio client passes the server almost no environment; add tracesieve's own settings
    # (and the judge endpoint with its key, if the operator configured one).
    env = {**get_default_environment(), **{k: v for k, v in os.environ.items() if k.startswith("TRACESIEVE_")},
           **judge_server_env()}
    # Every toolset: the walkthrough goes on to judges and calibration, beyond what serve exposes by default.
    params = StdioServerParameters(command=sys.executable, env=env,
                                   args=["-m", "server", "serve", *store.cli_args(), "--toolsets", "all"])
    s = await Session.start(params, echo)
    try:
        await _steps(s, store, echo)
    finally:
        await s.aclose()


async def _steps(s: Session, store: DemoStore, echo: Echo) -> None:
    tools = await s.client.list_tools()
    echo(f"\nConnected over stdio. Tools: {', '.join(t.name for t in tools.tools)}")

    d = await s.call("describe_store", {}, "First, what is in this store?")
    echo(f"  {d['trace_count']} traces / {d['span_count']} spans, {d['first_trace_time'][:10]} → "
         f"{d['last_trace_time'][:10]}")
    echo("  status: " + ", ".join(f"{c['value']}={c['traces']}" for c in d["statuses"]))
    echo("  environments: " + ", ".join(f"{c['value']}={c['traces']}" for c in d["environments"]))
    echo("  span types: " + ", ".join(f"{c['value']}={c['traces']}" for c in d["span_types"]))
    echo("  tools: " + ", ".join(f"{c['value']}={c['traces']}" for c in d["tools"]))

    week = "attributes.status = 'ERROR' AND attributes.timestamp_ms > now() - 7d AND tags.environment = 'production'"
    r = await s.call("search_traces", {"filter": week, "limit": 5},
                     "Which production traces failed in the last 7 days?")
    echo(f"  {r['total_matches']} match — understood as: {r['filter_explained']}")
    for t in r["traces"]:
        echo(_trace_line(t))
    first_error = r["traces"][0]["trace_id"] if r["traces"] else None

    r = await s.call("search_traces", {"filter": "span.type = 'TOOL' AND span.status = 'ERROR'", "limit": 3},
                     "Which traces had a tool call fail (one span both TOOL and ERROR)?")
    echo(f"  {r['total_matches']} traces; e.g.")
    for t in r["traces"]:
        echo(_trace_line(t))
    tool_error = r["traces"][0]["trace_id"] if r["traces"] else first_error

    if tool_error:
        g = await s.call("get_trace", {"trace_id": tool_error, "max_chars": 3000},
                         "Read one of them, within a 3000-character budget.")
        echo(f"  request: {(g['trace']['request'] or '')[:150]}")
        for span in g["spans"]:
            mark = "✗" if span["status"] == "ERROR" else " "
            extra = span["status_message"] or span["tool_name"] or span["model"] or ""
            echo(f"   {mark} {'  ' * span['depth']}{span['type']:<10} {span['name']:<16} "
                 f"{span['duration_ms']:>8.0f}ms  {extra[:70]}")
        echo(f"  truncated={g['truncated']} (cut fields end with a marker naming the call that reads the rest)")

    r = await s.call("tag_trace", {"key": "eval_candidate", "value": "error_case",
                                   "filter": "span.type = 'TOOL' AND span.status = 'ERROR'"},
                     "Tag every tool-failure trace as an eval candidate.")
    echo(f"  matched {r['matched']}, changed {r['changed']}")
    r = await s.call("tag_trace", {"key": "eval_candidate", "value": "slow_response",
                                   "filter": "attributes.execution_time_ms > 9000 AND "
                                             "tags.eval_candidate IS NULL"},
                     "…and the slowest traces (> 9 s) that are not tagged yet.")
    echo(f"  matched {r['matched']}, changed {r['changed']}")
    r = await s.call("tag_trace", {"key": "eval_candidate", "value": "error_case",
                                   "filter": "span.type = 'TOOL' AND span.status = 'ERROR'"},
                     "Tagging again is idempotent.")
    echo(f"  matched {r['matched']}, changed {r['changed']}")

    r = await s.call("search_traces", {"filter": "tags.eval_candidate IS NOT NULL", "limit": 3},
                     "The curated set (the seed's `tags.eval_candidate IS NOT NULL`).")
    echo(f"  {r['total_matches']} traces tagged eval_candidate")

    q = await s.call("query_sql", {"sql": AGGREGATE_SQL[store.url.engine]},
                     "An aggregate question, in read-only SQL.")
    echo("  " + " | ".join(q["columns"]))
    for row in q["rows"]:
        echo("  " + " | ".join(str(v) for v in row))

    await _analysis_steps(s, echo)
    await _dataset_steps(s, echo)
    echo("")
    echo("── Judges: rules in the store, a classifier from labels, an LLM when configured ──")
    await judge_steps(s, echo)
    await calibration_steps(s, echo, store)
    await monitor_steps(s, echo, store)

    echo("")
    echo("── Bad input gets an error that says how to fix it ──")
    await s.call("search_traces", {"filter": "attributes.stauts = 'ERROR'"},
                 "A typo in a filter gets an error that says how to fix it.")
    await s.call("query_sql", {"sql": "DELETE FROM traces"}, "Writes through SQL are refused.")
    echo("")
    echo("Next: connect your own agent with `tracesieve serve " + store.cli_text() + "` (see README).")


async def _analysis_steps(s: Session, echo: Echo) -> None:
    p = await s.call("profile_traces", {"filter": "tags.environment = 'production' AND attributes.timestamp_ms > "
                                                  "now() - 7d", "limit": 5},
                     "Where does the time go in production this week?")
    if isinstance(p, dict):
        for finding in p.get("findings", [])[:4]:
            echo(f"  • {finding}")
    e = await s.call("error_patterns", {"window": "7d", "limit": 4}, "What broke this week, against the week before?")
    if isinstance(e, dict):
        for finding in e.get("findings", [])[:3]:
            echo(f"  • {finding}")
        for pattern in e.get("patterns", [])[:4]:
            echo(f"    {pattern['traces']:>4} traces  {pattern['error_type']:<16} {pattern['location']:<16} "
                 f"“{(pattern['message'] or '')[:60]}”")


async def _dataset_steps(s: Session, echo: Echo) -> None:
    d = await s.call("build_dataset_from_tags", {
        "name": "support-regressions", "tags": ["eval_candidate"],
        "sample": {"n": 150, "seed": 7, "stratify_by": ["tag:eval_candidate"], "allocation": "proportional"}},
        "Turn the curated traces into a versioned, PII-redacted eval dataset (stratified sample of 150).")
    if not isinstance(d, dict):
        return
    echo(f"  {d['name']}@{d['version']} ({'new' if d['created'] else 'unchanged'}): {d['record_count']} records "
         f"from {d['selected']} selected traces")
    for stratum in d["strata"][:4]:
        echo(f"    {stratum['stratum']:<36} {stratum['sampled']:>4} of {stratum['population']} "
             f"(p={stratum['selection_probability']:.2f})")
    echo(f"  redaction: {d['redaction']['counts'] or 'nothing found'} in {d['redaction']['records_changed']} records")
    again = await s.call("build_dataset_from_tags", {
        "name": "support-regressions", "tags": ["eval_candidate"],
        "sample": {"n": 150, "seed": 7, "stratify_by": ["tag:eval_candidate"], "allocation": "proportional"}},
        "Building again with the same definition and data returns the same version.")
    if isinstance(again, dict):
        echo(f"  {again['name']}@{again['version']}, created={again['created']}")


def run_walkthrough(url: StoreUrl, *, n_traces: int, seed: int, echo: Echo) -> None:
    store = DemoStore(url)
    now_ms = int(time.time() * 1000) // 3_600_000 * 3_600_000
    echo(store.run(demo_store.build, n_traces, seed, now_ms))
    anyio.run(_walk, store, echo)

