"""bench.scale_report reads ClickHouse's ``EXPLAIN indexes = 1`` text right: on the real plans the
scale run saved (bench/scale_results), the summary names the granules kept of those in each table
and the index that cut them, which is what BENCHMARKS.md quotes."""

from __future__ import annotations

from pathlib import Path

from bench.scale_report import explain_summary

PLANS = Path(__file__).resolve().parents[1] / "bench" / "scale_results" / "run1-explain-2M-10M.txt"


def _plans(title: str) -> list[str]:
    """The plans saved under the section ``## chdb@1 (…): <title>``."""
    text = PLANS.read_text(encoding="utf-8")
    start = next(i for i, line in enumerate(text.splitlines()) if line.startswith("## chdb@1") and line.endswith(title))
    lines = text.splitlines()[start + 1:]
    end = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    return ["\n".join(lines[:end])]


def test_a_time_window_is_pruned_by_the_primary_key() -> None:
    summary = explain_summary(_plans("search: tag + time window"))
    assert summary.startswith("traces 24/349 (PrimaryKey)"), summary


def test_an_unbounded_search_reads_every_granule() -> None:
    summary = explain_summary(_plans("search: no filter"))
    assert summary.startswith("traces 349/349;"), summary


def test_a_trace_lookup_names_the_bloom_filter() -> None:
    summary = explain_summary(_plans("get_trace (a different trace each call)"))
    assert "traces 1/349 (PrimaryKey, skip idx_trace_id)" in summary and "spans " in summary, summary
