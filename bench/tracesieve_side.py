"""tracesieve's side: ingest the OTLP files, then answer the questions through the tool functions.

Every call goes through the same ``tools`` functions the MCP server calls (``search_traces``,
``tag_trace``, ``query_sql``), on a ``DuckDBTraceStore`` that opens the file per call, exactly as
``tracesieve serve`` does. The MCP round trip is measured separately over real stdio.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.datagen import Dataset
from bench.measure import Timing, child_pids, measure, proc_status, time_once
from bench.workloads import PAGE, PAGES, analysis_sql, search_questions
from server.ingestion import list_files
from server.ingestion.parallel import ingest_files
from server.storage.duckdb.store import DuckDBTraceStore
from tools.traces import sql as sql_tool
from tools.traces.search import SearchTracesInput, search_traces
from tools.traces.tagging import MAX_IDS, TagTraceInput, tag_trace

REPO = Path(__file__).resolve().parents[1]


class TraceSieveSide:
    def __init__(self, ds: Dataset, db_path: Path) -> None:
        self.ds = ds
        self.db_path = db_path
        self.store: DuckDBTraceStore | None = None

    # ---- loading ---------------------------------------------------------------------------
    def load(self, *, reuse: bool) -> dict[str, Any] | None:
        """Ingest every OTLP file into a fresh store as ``tracesieve ingest`` does (timed), put the
        rows in time order as ``tracesieve optimize`` does (timed: each generated file covers the
        whole period, as a backfill's exports do), then apply the tags (timed)."""
        marker = self.db_path.with_suffix(".complete")
        if reuse and marker.exists() and self.db_path.exists():
            self.store = DuckDBTraceStore(self.db_path)
            return None
        for stale in (self.db_path, self.db_path.with_suffix(".duckdb.wal"), marker):
            stale.unlink(missing_ok=True)
        self.store = DuckDBTraceStore(self.db_path)
        seconds, report = time_once(lambda: ingest_files(self.store, list_files(self.ds.dir), "otlp"))
        if report.error_count:
            raise RuntimeError(f"ingest reported errors: {report.errors[:3]}")
        out: dict[str, Any] = {"ingest": {"seconds": seconds, "traces": report.traces, "spans": report.spans_new,
                                          "rate": report.spans_new / seconds}}
        order_seconds, order = time_once(self.store.put_in_time_order)
        out["optimize"] = {"seconds": order_seconds, "rewritten": order.traces.rewritten or order.spans.rewritten}
        out.update(self._apply_tags())
        out["db_bytes"] = self.db_path.stat().st_size
        marker.write_text(str(time.time()))
        return out

    def _apply_tags(self) -> dict[str, Any]:
        """The same tags MLflow got from the files: environment by filter, eval_candidate by ids."""
        assert self.store is not None
        now = self.ds.now_ms
        tagged = 0
        t0 = time.perf_counter()
        for env in ("production", "staging"):
            r = tag_trace(self.store, TagTraceInput(filter=f"attributes.environment = '{env}'", key="environment",
                                                    value=env), by="bench", now_ms=now)
            tagged += r.changed
        by_filter = {"seconds": time.perf_counter() - t0, "tags": tagged}
        by_value: dict[str, list[str]] = {}
        for trace_id, value in self.ds.tagged.items():
            by_value.setdefault(value, []).append(trace_id)
        tagged = 0
        t0 = time.perf_counter()
        for value, ids in by_value.items():
            for i in range(0, len(ids), MAX_IDS):
                r = tag_trace(self.store, TagTraceInput(trace_ids=ids[i:i + MAX_IDS], key="eval_candidate",
                                                        value=value), by="bench", now_ms=now)
                tagged += r.changed
        by_ids = {"seconds": time.perf_counter() - t0, "tags": tagged}
        return {"setup_tag_by_filter": by_filter, "setup_tag_by_ids": by_ids}

    # ---- questions -------------------------------------------------------------------------
    def search(self, filter_text: str, *, limit: int = PAGE, token: str | None = None):
        assert self.store is not None
        return search_traces(self.store, SearchTracesInput(filter=filter_text, limit=limit, page_token=token),
                             now_ms=self.ds.now_ms)

    def page_to(self, filter_text: str, pages: int = PAGES) -> int:
        token, seen = None, 0
        for _ in range(pages):
            result = self.search(filter_text, token=token)
            seen += len(result.traces)
            token = result.next_page_token
            if token is None:
                break
        return seen

    def sql(self, statements: list[str]) -> list[list[list[Any]]]:
        assert self.store is not None
        return [sql_tool.query_sql(self.store, sql_tool.QuerySqlInput(sql=s, limit=1000)).rows for s in statements]

    def run(self, *, repeats: int, budget_s: float) -> dict[str, Timing]:
        out: dict[str, Timing] = {}
        for q in search_questions(self.ds.now_ms):
            out[q.key] = measure(lambda q=q: self.search(q.tracesieve).total_matches, repeats=repeats,
                                 budget_s=budget_s)
        out["search.page10"] = measure(lambda: self.page_to(""), repeats=repeats, budget_s=budget_s)
        for key, statements in analysis_sql(self.ds.now_ms, self.ds.sample_ids[0]).items():
            out[key] = measure(lambda s=statements: self.sql(s), repeats=repeats, budget_s=budget_s)
        dataset = self.dataset_from_tags(repeats=repeats, budget_s=budget_s)
        if dataset is not None:
            out["dataset.from_tags"] = dataset
        out.update(self.tagging(repeats=repeats, budget_s=budget_s))
        return out

    def dataset_from_tags(self, *, repeats: int, budget_s: float) -> Timing | None:
        """``build_dataset_from_tags`` over every ``eval_candidate`` trace. Redaction is off so the
        work matches the seed's MLflow code (which does not redact); a fresh name per run makes
        every run a real build rather than the idempotent "same content" answer."""
        from server.storage.duckdb.datasets_sql import DuckDBDatasetStore  # noqa: PLC0415
        from tools.datasets import builder  # noqa: PLC0415

        dataset_store = DuckDBDatasetStore(self.store)
        counter = iter(range(10**9))

        def run() -> Any:
            result = builder.build_dataset_from_tags(dataset_store, builder.BuildDatasetInput(
                name=f"bench_{os.getpid()}_{next(counter)}", tags=["eval_candidate"], redact=False),
                now_ms=self.ds.now_ms)
            return getattr(result, "record_count", None) or getattr(result, "records", None)

        try:
            return measure(run, repeats=min(repeats, 3), budget_s=budget_s)
        except Exception as exc:  # the feature may still be half-wired: say so, don't die
            print(f"  dataset.from_tags not measured: {type(exc).__name__}: {exc}", file=sys.stderr)
            return None

    def tagging(self, *, repeats: int, budget_s: float) -> dict[str, Timing]:
        """Tags/s: a 1000-id batch, and a filter (all ERROR traces); each run sets a new value so
        every run really changes every selected trace."""
        assert self.store is not None
        ids = list(self.ds.tagged)[:1000]
        rounds = iter(range(10**9))
        by_ids = measure(lambda: tag_trace(self.store, TagTraceInput(
            trace_ids=ids, key="bench_ids", value=f"v{next(rounds)}"), by="bench", now_ms=self.ds.now_ms).changed,
            repeats=repeats, budget_s=budget_s)
        by_filter = measure(lambda: tag_trace(self.store, TagTraceInput(
            filter="attributes.status = 'ERROR'", key="bench_filter", value=f"v{next(rounds)}"), by="bench",
            now_ms=self.ds.now_ms).changed, repeats=repeats, budget_s=budget_s)
        return {"tag.by_ids": by_ids, "tag.by_filter": by_filter}


# ---- MCP over stdio -------------------------------------------------------------------------

def mcp_roundtrip(side: TraceSieveSide, *, repeats: int, calls: int = 50) -> dict[str, Any]:
    """A small tool call (search by trace id, limit 1) over real stdio vs the same call in-process,
    and the server's peak RSS while it answers every search question once."""
    import anyio
    from mcp import Client, StdioServerParameters

    ds = side.ds
    small = {"filter": f"attributes.trace_id = '{ds.sample_ids[1]}'", "limit": 1}
    direct = measure(lambda: side.search(small["filter"], limit=1), repeats=max(repeats, 5) * 4, budget_s=20)
    questions = search_questions(ds.now_ms)
    params = StdioServerParameters(command=sys.executable, args=["-m", "server", "serve", "--db", str(side.db_path)],
                                   cwd=str(REPO), env={**os.environ, "TRACESIEVE_LOCK_TIMEOUT": "30"})
    result: dict[str, Any] = {}

    async def go() -> None:
        before = set(child_pids())
        async with Client(params) as client:
            server_pid = next(iter(set(child_pids()) - before), None)
            result["rss_idle"] = proc_status(server_pid).get("VmRSS") if server_pid else None
            await client.call_tool("search_traces", small)  # warm-up
            samples = []
            for _ in range(calls):
                t0 = time.perf_counter()
                r = await client.call_tool("search_traces", small)
                samples.append(time.perf_counter() - t0)
                assert not r.is_error, r.content
            result["mcp"] = Timing(samples=samples)
            for q in questions:
                r = await client.call_tool("search_traces", {"filter": q.tracesieve})
                assert not r.is_error, r.content
            token = None
            for _ in range(PAGES):
                args = {"filter": "", **({"page_token": token} if token else {})}
                token = (await client.call_tool("search_traces", args)).structured_content["next_page_token"]
            for statements in analysis_sql(ds.now_ms, ds.sample_ids[0]).values():
                for s in statements:
                    r = await client.call_tool("query_sql", {"sql": s, "limit": 1000})
                    assert not r.is_error, r.content
            status = proc_status(server_pid) if server_pid else {}
            result["rss_peak"] = status.get("VmHWM")
            result["server_pid_found"] = server_pid is not None

    anyio.run(go)
    result["direct"] = direct
    return result
