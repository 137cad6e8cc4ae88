"""Dataset rows as every engine stores them: JSON text in, typed headers and records out.

A version's header and records are the same columns on DuckDB and ClickHouse (and the control
plane), each JSON-valued field held as text. Turning rows into ``DatasetVersion`` /
``DatasetRecord`` and values into stored JSON is decided here once, so an export from one engine
re-imports on the other to the same content hash.
"""

from __future__ import annotations

import json
from typing import Any

from tools.datasets.models import DatasetRecord, DatasetVersion
from tools.datasets.sampling import StratumCount
from tools.errors import ConflictError
from tools.privacy.redaction import RedactionReport

#: A record's JSON-valued columns.
RECORD_JSON_FIELDS = ("inputs", "outputs", "expectations", "strata", "redaction")


def stored_json(value: Any) -> str:
    """``value`` as the compact JSON text both engines store."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def header_from_row(row: dict[str, Any]) -> DatasetVersion:
    """A version header from its stored row (``spec``, ``strata``, ``redaction_report`` as JSON text)."""
    return DatasetVersion(
        name=row["name"], version=row["version"], created_at_ms=row["created_at_ms"],
        description=row["description"], spec=json.loads(row["spec"]), content_hash=row["content_hash"],
        record_count=row["record_count"],
        strata=[StratumCount(**s) for s in json.loads(row["strata"] or "[]")],
        redaction=RedactionReport(**json.loads(row["redaction_report"] or '{"enabled": false}')),
        parent_version=row["parent_version"])


def header_row(header: DatasetVersion) -> dict[str, Any]:
    """The stored row of a version header (the inverse of ``header_from_row``)."""
    return {"name": header.name, "version": header.version, "created_at_ms": header.created_at_ms,
            "description": header.description, "spec": stored_json(header.spec), "content_hash": header.content_hash,
            "record_count": header.record_count, "strata": stored_json([s.model_dump() for s in header.strata]),
            "redaction_report": stored_json(header.redaction.model_dump()), "parent_version": header.parent_version}


def record_from_row(row: dict[str, Any]) -> DatasetRecord:
    """A record from its stored columns (JSON text; absent collections read as empty)."""
    values = {**row, **{k: json.loads(row[k]) if row[k] is not None else None for k in RECORD_JSON_FIELDS}}
    for key in ("expectations", "strata", "redaction"):
        values[key] = values[key] or {}
    return DatasetRecord(**values)


def version_taken(header: DatasetVersion) -> ConflictError:
    """The error of a write that lost the race for its version number (the caller repeats it)."""
    return ConflictError(
        f"Dataset '{header.name}' version {header.version} was written by another client a moment ago. "
        "Repeat the call: it will build on the new latest version.")
