"""Redaction at the other exits: exports of unredacted datasets, queue previews, trace reads.

Datasets are redacted when built; these helpers cover data that leaves by another door. Each
returns what it replaced (counts by type) so the caller's result can say so.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, TypeVar

from pydantic import BaseModel

from tools.privacy.redaction import RECORD_FIELDS, Redactor, redact_record, redact_text

M = TypeVar("M", bound=BaseModel)
#: Fields of tool results that are identifiers or bookkeeping, never free text to redact.
ID_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id", "item_id", "record_id", "queue_id", "run_id",
                       "next_page_token", "page_token", "session_id", "name", "status", "span_type", "type",
                       "model", "tool_name", "environment", "prompt_version", "source", "time", "timestamp",
                       "filter", "filter_explained", "order_by", "field", "key"})


def redact_records(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each record redacted under its own numbering (as the dataset builder does); total counts."""
    total: Counter[str] = Counter()
    out = []
    for record in records:
        clean, counts = redact_record(record, fields=RECORD_FIELDS)
        total.update(counts)
        out.append(clean)
    return out, dict(sorted(total.items()))


def redact_preview(text: str | None) -> tuple[str | None, dict[str, int]]:
    if not text:
        return text, {}
    out = redact_text(text)
    return out.text, out.counts


def _walk(redactor: Redactor, value: Any, key: str | None = None) -> Any:
    if key in ID_FIELDS:
        return value
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, dict):
        return {k: _walk(redactor, v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(redactor, v) for v in value]
    return value


def redact_model(result: M) -> tuple[M, dict[str, int]]:
    """A tool result with every free-text string redacted under one numbering (ids and keys kept)."""
    data = result.model_dump()
    redactor = Redactor()
    redactor.learn({k: v for k, v in data.items() if k not in ID_FIELDS})
    clean = _walk(redactor, data)
    return type(result).model_validate(clean), dict(sorted(redactor.counts.items()))
