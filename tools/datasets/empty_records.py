"""Records whose inputs or outputs are empty: counted, shown by example, and optionally left out.

A record with ``{"request": null}`` is an eval case with no question: a judge scores nothing and
a replay sends nothing. Ingestion now finds the user's words anywhere in a trace
(``request_source``), so an empty record means the trace really holds no request or answer; the
build says how many there are, names a few, and ``skip_empty`` leaves them out.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from tools.datasets.models import DatasetRecord

__all__ = ["SkipEmpty", "empty_warnings", "is_empty", "split_empty"]

SkipEmpty = Annotated[bool, Field(
    description="Leave out records with empty inputs or outputs (otherwise kept, and counted in warnings).")]
_EXAMPLES = 3


def is_empty(value: Any) -> bool:
    """No words at all: None, blank text, or containers holding only such values (``{"request": null}``)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, dict):
        return all(is_empty(item) for item in value.values())
    if isinstance(value, list):
        return all(is_empty(item) for item in value)
    return False


def split_empty(records: list[DatasetRecord]) -> tuple[list[DatasetRecord], list[DatasetRecord], list[DatasetRecord]]:
    """(records with inputs and outputs, records with empty inputs, records with empty outputs only)."""
    full, no_inputs, no_outputs = [], [], []
    for record in records:
        if is_empty(record.inputs):
            no_inputs.append(record)
        elif is_empty(record.outputs):
            no_outputs.append(record)
        else:
            full.append(record)
    return full, no_inputs, no_outputs


def empty_warnings(no_inputs: list[DatasetRecord], no_outputs: list[DatasetRecord], *, skipped: bool) -> list[str]:
    """One warning per kind of emptiness, with a count, example trace ids and what to do."""
    warnings = []
    for found, what in ((no_inputs, "empty inputs (no request or user message in the trace)"),
                        (no_outputs, "empty outputs (no response or model output in the trace)")):
        if not found:
            continue
        examples = ", ".join(str(r.trace_id or r.record_id) for r in found[:_EXAMPLES])
        action = ("were skipped (skip_empty=true)." if skipped else
                  "were kept; pass skip_empty=true to leave them out, or read one with get_trace.")
        warnings.append(f"{len(found)} record(s) with {what}, e.g. {examples}, {action}")
    return warnings
