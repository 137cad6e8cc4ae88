"""Token counts as providers count them, from usage-details maps (Langfuse ``usageDetails``).

OTel GenAI counts cache reads and reasoning *inside* ``input_tokens`` / ``output_tokens``; Langfuse
keeps them as separate keys beside ``input`` / ``output``, so a reader that took only ``output``
stored 59 output tokens where the provider billed 123. The parts are kept too, so a filter can ask
for reasoning-heavy calls.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from server.ingestion.attributes import as_int

__all__ = ["Usage", "usage_from_details"]


class Usage(NamedTuple):
    """Token counts as providers count them: totals that include the reasoning / cached parts
    (OTel GenAI: cache_read and reasoning tokens are *part of* input/output tokens), and the parts."""

    input_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    cached_tokens: int | None


#: Where a usage-details key's count belongs: Langfuse writes ``input_cache_read``,
#: ``output_reasoning``, ``input_audio``; OpenAI-shaped details ``prompt_details.cache_read``,
#: ``completion_details.reasoning``.
_INPUT_PARTS = ("input_", "prompt_details.", "prompt_tokens_details.")
_OUTPUT_PARTS = ("output_", "completion_details.", "completion_tokens_details.")


def usage_from_details(details: Mapping[str, Any]) -> Usage:
    """Totals and parts from a usage-details map (Langfuse ``usageDetails``).

    Langfuse keeps the parts apart from ``input`` / ``output`` (its ``total`` is the sum of every
    key), so the parts are added to the totals; but some integrations report ``output`` already
    holding its reasoning (then ``input + output == total``) and those totals are kept as stated.
    """
    counts = {str(key): as_int(value) for key, value in details.items()}
    base_in, base_out, total = counts.get("input"), counts.get("output"), counts.get("total")
    parts_in = sum(v or 0 for k, v in counts.items() if k.startswith(_INPUT_PARTS))
    parts_out = sum(v or 0 for k, v in counts.items() if k.startswith(_OUTPUT_PARTS))
    reasoning = _sum_known(v for k, v in counts.items() if "reasoning" in k)
    cached = _sum_known(v for k, v in counts.items() if "cache_read" in k or "cached" in k)
    included = total is not None and (base_in or 0) + (base_out or 0) == total and (parts_in or parts_out)
    if not included:
        base_in = base_in + parts_in if base_in is not None else (parts_in or None)
        base_out = base_out + parts_out if base_out is not None else (parts_out or None)
    return Usage(base_in, base_out, reasoning, cached)


def _sum_known(values: Any) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None
