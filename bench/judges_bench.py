"""Judge benchmarks: rule judges over 100k items, and an LLM judge against a fixed-latency endpoint.

    python -m bench.judges_bench                      # 100k demo traces (store cached between runs)
    python -m bench.judges_bench --items 20000 --llm-items 200 --latency 0.05 --concurrency 8

Figures are ratios against a baseline measured in the same run:

* rule judges: items/s when the store evaluates the rule in SQL (``bulk_rule_scores``), against
  the Python reference path (load items page by page, ``rule_judges.evaluate``) on a subsample;
* LLM judge: wall time of a run against a local OpenAI-compatible endpoint that answers after a
  fixed latency, divided by the concurrency bound ``items x latency / concurrency`` (1.0 = the
  run adds nothing on top of waiting for the model).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio

from bench.measure import machine
from server.demo.catalog import INTENTS
from server.demo.generate import generate_demo_traces
from server.providers.openai_compat import OpenAICompatJudge
from server.providers.retry import RetryPolicy
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.judges_sql import DuckDBJudgeStore
from tools.judges import registry, rules as rule_judges, runs
from tools.judges.ports import JudgePrompt, Target
from tools.judges.specs import parse_spec

NOW_MS = 1_763_000_000_000
RULES: dict[str, dict[str, Any]] = {
    "citation_grounding": {"type": "citation_grounding"},
    "tool_span_errors": {"type": "status", "trace_ok": False, "span_types": ["TOOL"]},
    "answer_length": {"type": "length", "field": "output", "max": 2000},
    "banned_phrases": {"type": "phrases", "field": "output", "banned": ["as an AI", "I cannot"]},
    "pii_regex": {"type": "regex", "field": "output", "pattern": r"\d{3}-\d{2}-\d{4}", "must": "not_match"},
    "expected_tools": {"type": "tool_call", "expected_by_metadata": "intent",
                       "expected_tools": {i.name: list(i.tools) for i in INTENTS}},
    "latency": {"type": "latency", "max_ms": 8000},
    "token_budget": {"type": "token_budget", "max_total_tokens": 6000},
}


def log(message: str) -> None:
    print(message, flush=True)


def build_store(n: int, data_dir: Path) -> DuckDBTraceStore:
    """``n`` demo traces in a cached store file (generated in 10k chunks)."""
    path = data_dir / f"judges-n{n}.duckdb"
    done = path.with_suffix(".ready")
    if done.exists():
        return DuckDBTraceStore(path)
    path.unlink(missing_ok=True)
    store = DuckDBTraceStore(path)
    started = time.perf_counter()
    for i, start in enumerate(range(0, n, 10_000)):
        store.write_traces(generate_demo_traces(min(10_000, n - start), seed=500 + i, now_ms=NOW_MS))
        log(f"  stored {min(start + 10_000, n):,}/{n:,} traces ({time.perf_counter() - started:.0f}s)")
    done.write_text("ok")
    return store


def rule_bench(js: DuckDBJudgeStore, n: int, baseline_items: int) -> dict[str, Any]:
    target = Target(filter=None, now_ms=NOW_MS)
    sample: list = []
    started = time.perf_counter()
    after = None
    while len(sample) < baseline_items:
        page = js.items(target, after=after, limit=min(5000, baseline_items - len(sample)))
        if not page:
            break
        sample += page
        after = page[-1].item_id
    load_s = time.perf_counter() - started
    out: dict[str, Any] = {}
    for name, spec in RULES.items():
        judge = registry.resolve(js, registry.define_judge(js, registry.DefineJudgeInput(
            name=f"bench_{name}", kind="rule", criterion=name, spec=spec), now_ms=NOW_MS).judge.ref)
        run_id = f"bench-{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        written = js.bulk_rule_scores(run_id, judge, target, NOW_MS)
        sql_s = time.perf_counter() - t0
        parsed = parse_spec("rule", spec)
        t0 = time.perf_counter()
        for item in sample:
            rule_judges.evaluate(parsed, item)
        eval_s = time.perf_counter() - t0
        python_rate = len(sample) / (load_s + eval_s)
        out[name] = {"items": written, "store_s": round(sql_s, 3), "store_items_per_s": round(written / sql_s),
                     "python_items_per_s": round(python_rate), "python_eval_only_items_per_s":
                     round(len(sample) / eval_s) if eval_s else None,
                     "speedup_vs_python": round(written / sql_s / python_rate, 1)}
        log(f"  {name:<20} store {written / sql_s:>10,.0f} items/s   python {python_rate:>8,.0f} items/s   "
            f"x{out[name]['speedup_vs_python']}")
        with js.traces.writing() as con:   # keep the cached store small between runs
            con.execute("DELETE FROM scores WHERE run_id = $r", {"r": run_id})
    return {"baseline_items": len(sample), "baseline_load_s": round(load_s, 3), "rules": out}


class _Fixed(BaseHTTPRequestHandler):
    latency_s = 0.05
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(self.latency_s)
        body = json.dumps({"choices": [{"message": {"content": '{"score": 0.9, "reason": "ok"}'}}],
                           "usage": {"prompt_tokens": 400, "completion_tokens": 12}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def llm_bench(js: DuckDBJudgeStore, items: int, latency_s: float, concurrency: int) -> dict[str, Any]:
    _Fixed.latency_s = latency_s
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fixed)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    nonce = uuid.uuid4().hex[:8]   # a fresh judge version: nothing comes from the cache
    registry.define_judge(js, registry.DefineJudgeInput(name="bench_llm", kind="llm", criterion="helpfulness", spec={
        "type": "llm", "rubric": f"Pass if the answer helps the customer. (bench {nonce})"}), now_ms=NOW_MS)
    model = OpenAICompatJudge(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", model="bench",
                              api_key=None, policy=RetryPolicy(timeout_s=30))

    async def run() -> Any:
        try:
            return await runs.run_judges(js, js, runs.RunJudgesInput(
                judges=["bench_llm"], window="30d", max_items=items, concurrency=concurrency), model=model,
                no_model_hint="", now_ms=NOW_MS)
        finally:
            await model.aclose()

    async def raw(calls: int) -> None:
        """The same number of bare HTTP calls at the same concurrency: client + server cost alone."""
        bare = OpenAICompatJudge(base_url=model.url.removesuffix("/chat/completions"), model="bench", api_key=None)
        limiter = anyio.CapacityLimiter(concurrency)

        async def one(i: int) -> None:
            async with limiter:
                await bare.grade(JudgePrompt(system="s", user=f"item {i}"), max_tokens=50)

        async with anyio.create_task_group() as tg:
            for i in range(calls):
                tg.start_soon(one, i)
        await bare.aclose()

    t0 = time.perf_counter()
    report = anyio.run(run)
    wall = time.perf_counter() - t0
    calls = report.judges[0].scored - report.judges[0].cache_hits
    t0 = time.perf_counter()
    anyio.run(raw, calls)
    raw_wall = time.perf_counter() - t0
    server.shutdown()
    bound = calls * latency_s / concurrency
    log(f"  {calls} calls x {latency_s * 1000:.0f} ms / concurrency {concurrency} = {bound:.2f}s bound; "
        f"run took {wall:.2f}s -> ratio {wall / bound:.2f} (bare HTTP calls alone: {raw_wall:.2f}s, "
        f"ratio {raw_wall / bound:.2f})")
    return {"items": report.items, "model_calls": calls, "latency_s": latency_s, "concurrency": concurrency,
            "bound_s": round(bound, 3), "wall_s": round(wall, 3), "ratio_to_bound": round(wall / bound, 2),
            "bare_http_wall_s": round(raw_wall, 3), "bare_http_ratio_to_bound": round(raw_wall / bound, 2),
            "run_over_bare_http": round(wall / raw_wall, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.judges_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="Demo traces for the rule bench.")
    parser.add_argument("--baseline-items", type=int, default=20_000, help="Subsample for the Python baseline.")
    parser.add_argument("--llm-items", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.05, help="Endpoint latency in seconds.")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("TRACESIEVE_BENCH_DIR",
                                                                             "/tmp/tracesieve-bench")))
    parser.add_argument("--out", type=Path, default=None, help="Also write the figures as JSON here.")
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    log(f"store with {args.items:,} demo traces")
    js = DuckDBJudgeStore(build_store(args.items, args.data_dir))
    log("rule judges (store SQL vs Python reference)")
    rules = rule_bench(js, args.items, min(args.baseline_items, args.items))
    log("LLM judge against a fixed-latency local endpoint")
    llm = llm_bench(js, args.llm_items, args.latency, args.concurrency)
    record = {"machine": machine(), "rules": rules, "llm": llm}
    if args.out:
        args.out.write_text(json.dumps(record, indent=2))
    print(json.dumps({"rule_store_items_per_s": {k: v["store_items_per_s"] for k, v in rules["rules"].items()},
                      "llm_ratio_to_bound": llm["ratio_to_bound"],
                      "llm_bare_http_ratio_to_bound": llm["bare_http_ratio_to_bound"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
