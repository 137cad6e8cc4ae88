"""Benchmark data: demo-shaped traces at any size, written once as OTLP/JSON lines and cached.

Traces come from ``server.demo.generate_demo_traces`` (a support agent, 3-8 spans per trace,
~5.3 on average) in chunks of 10k with one seed per chunk, so 1M traces never sit in memory at
once and the two cores generate in parallel. Two things are added for the benchmark:

* a long tail: the ~2% of traces whose answer call carries a long conversation history (the
  demo's context-pressure case) get that history as text in the request and in the answer
  span's inputs (up to 64 KB), so request sizes are long-tailed as in production;
* tags: every trace carries ``environment``; about ``min(10k, n/10)`` traces carry
  ``eval_candidate`` (error_case | slow_response | edge_case), the curation the seeds describe.

The manifest lists the tagged ids, so each system can get exactly the same tags.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.otlp_writer import hex_id, write_jsonl

CHUNK = 10_000
DAYS = 21
HISTORY_MAX_CHARS = 64_000
_HISTORY = ("Earlier in this conversation the customer asked about an order, a refund, a password "
            "reset and delivery times; the assistant answered each and cited the help centre. ")
MANIFEST_VERSION = 3


def default_data_dir() -> Path:
    return Path(os.environ.get("TRACESIEVE_BENCH_DIR", "/tmp/tracesieve-bench"))


@dataclass(frozen=True)
class Dataset:
    """One generated size: OTLP files plus what the workloads need to know about them."""

    dir: Path
    n: int
    spans: int
    now_ms: int
    bytes: int
    tagged: dict[str, str]          # hex trace id -> eval_candidate value
    sample_ids: list[str]           # hex trace ids, for per-trace questions and tag-by-id batches

    @property
    def files(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.jsonl"))


def tagged_fraction(n: int) -> float:
    return min(10_000, max(1, n // 10)) / n


def _chunk(args: tuple[Path, int, int, int, int, float]) -> dict[str, Any]:
    from server.demo import generate_demo_traces

    out_dir, index, count, seed, now_ms, frac = args
    traces = generate_demo_traces(count, seed=seed + index, now_ms=now_ms, days=DAYS)
    tags_of: dict[str, dict[str, str]] = {}
    tagged: dict[str, str] = {}
    for i, t in enumerate(traces):
        _long_tail(t)
        tags = dict(t.tags)
        hid = hex_id(t.trace_id)
        if int(hid[:8], 16) / 2**32 < frac:
            errored = t.status == "ERROR" or any(s.status == "ERROR" for s in t.spans)
            value = "error_case" if errored else ("slow_response" if i % 2 else "edge_case")
            tags["eval_candidate"] = tagged[hid] = value
        tags_of[t.trace_id] = tags
    path = out_dir / f"part-{index:05d}.jsonl"
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        spans = write_jsonl(f, traces, tags_of)
    tmp.rename(path)
    return {"spans": spans, "tagged": tagged, "bytes": path.stat().st_size,
            "sample": [hex_id(t.trace_id) for t in traces[:: max(1, count // 200)]]}


def _long_tail(trace: Any) -> None:
    answer = next((s for s in trace.spans if s.name == "answer" and (s.input_tokens or 0) > 10_000), None)
    if answer is None:
        return
    history = json.dumps((_HISTORY * (1 + min(HISTORY_MAX_CHARS, answer.input_tokens * 2) // len(_HISTORY)))
                         [:HISTORY_MAX_CHARS], ensure_ascii=False)
    for span in (answer, trace.spans[0] if trace.spans[0].parent_span_id is None else None):
        if span is not None and span.inputs and span.inputs.endswith("}"):
            span.inputs = span.inputs[:-1] + ', "history": ' + history + "}"
    root = next(s for s in trace.spans if s.parent_span_id is None)
    trace.request = root.inputs


def ensure_dataset(n: int, *, data_dir: Path | None = None, seed: int = 1000, workers: int = 2,
                   log: Any = print) -> Dataset:
    """Generate (or reuse) ``n`` traces as OTLP/JSON lines under ``data_dir/n{n}-s{seed}``."""
    out = (data_dir or default_data_dir()) / f"n{n}-s{seed}"
    manifest = out / ".manifest.json"  # hidden: read_path skips it
    if manifest.exists():
        m = json.loads(manifest.read_text())
        if m.get("version") == MANIFEST_VERSION and m["n"] == n:
            return Dataset(out, n, m["spans"], m["now_ms"], m["bytes"], m["tagged"], m["sample_ids"])
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("part-*"):
        stale.unlink()
    now_ms = (int(time.time() * 1000) // 3_600_000) * 3_600_000
    frac = tagged_fraction(n)
    jobs = [(out, i, min(CHUNK, n - i * CHUNK), seed, now_ms, frac) for i in range((n + CHUNK - 1) // CHUNK)]
    started = time.perf_counter()
    spans = size = 0
    tagged: dict[str, str] = {}
    sample: list[str] = []
    ctx = mp.get_context("fork")
    with ctx.Pool(max(1, min(workers, len(jobs)))) as pool:
        for done, r in enumerate(pool.imap(_chunk, jobs), start=1):
            spans += r["spans"]
            size += r["bytes"]
            tagged.update(r["tagged"])
            sample.extend(r["sample"])
            if done % 10 == 0 or done == len(jobs):
                log(f"  generated {min(done * CHUNK, n):,}/{n:,} traces ({time.perf_counter() - started:.0f}s)")
    m = {"version": MANIFEST_VERSION, "n": n, "spans": spans, "now_ms": now_ms, "bytes": size,
         "tagged": tagged, "sample_ids": sample}
    manifest.write_text(json.dumps(m))
    return Dataset(out, n, spans, now_ms, size, tagged, sample)
