"""Tokens as providers count them: Langfuse usage details' reasoning and cached parts are part of
the output and input totals (as OTel GenAI counts them), and are kept as their own attributes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.ingestion import read_path
from tools.models import Trace


def _export(tmp_path: Path, usage: dict) -> Trace:
    path = tmp_path / "langfuse.json"
    path.write_text(json.dumps({
        "trace": {"id": "lf-1", "timestamp": "2025-09-30T10:00:00Z", "name": "agent", "input": "Prove it"},
        "observations": [{"id": "gen-1", "type": "GENERATION", "name": "o3 call", "model": "o3",
                          "startTime": "2025-09-30T10:00:00Z", "endTime": "2025-09-30T10:00:09Z",
                          "usageDetails": usage, "output": "Done."}]}))
    (trace,) = read_path(path)
    assert isinstance(trace, Trace)
    return trace


@pytest.mark.parametrize(("usage", "totals", "parts"), [
    # Langfuse keeps parts apart (total = sum of every key): they are added
    ({"input": 10, "output": 59, "output_reasoning": 64, "input_cache_read": 90, "total": 223}, (100, 123), (64, 90)),
    ({"input": 10, "output": 59, "completion_details.reasoning": 64}, (10, 123), (64, None)),
    # an integration whose output already holds its reasoning (input + output == total) is kept as stated
    ({"input": 6, "output": 2055, "total": 2061, "completion_details.reasoning": 1104}, (6, 2055), (1104, None)),
    ({"input": 31, "output": 96, "total": 127}, (31, 96), (None, None)),
])
def test_reasoning_and_cached_tokens_count_in_the_totals(tmp_path: Path, usage: dict, totals: tuple,
                                                         parts: tuple) -> None:
    trace = _export(tmp_path, usage)
    (span,) = trace.spans
    assert (span.input_tokens, span.output_tokens) == totals
    assert (trace.input_tokens, trace.output_tokens) == totals
    assert (span.attributes.get("gen_ai.usage.reasoning.output_tokens"),
            span.attributes.get("gen_ai.usage.cache_read.input_tokens")) == parts
