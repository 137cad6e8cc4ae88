"""Read human labels from files: CSV, JSONL, Langfuse exports (ANNOTATION scores) and MLflow
trace JSON (HUMAN assessments).

Langfuse and MLflow files go through the ingestion readers (``server.ingestion.read_path``), which
already turn ANNOTATION scores / HUMAN feedback into ``Trace.labels``; only those labels are taken.
Every row becomes a ``RawLabel`` with its location, and ``tools.labels.labelling.import_labels`` validates
the whole file before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from server.ingestion import read_path
from tools.errors import IngestError, InvalidInputError
from tools.labels.labelling import RawLabel
from tools.models import Trace

LabelFormat = Literal["auto", "csv", "jsonl", "langfuse", "mlflow"]
LABEL_FORMATS: tuple[str, ...] = LabelFormat.__args__  # type: ignore[attr-defined]

#: Accepted column names per field, first match wins (CSV headers and JSONL keys alike).
ALIASES: dict[str, tuple[str, ...]] = {
    "trace_id": ("trace_id", "traceId", "trace", "request_id"),
    "criterion": ("criterion", "name", "failure_mode"),
    "value": ("value", "label", "verdict"),
    "reviewer": ("reviewer", "author", "source_id", "authorUserId"),
    "rationale": ("rationale", "comment", "reason"),
    "created_at": ("created_at_ms", "created_at", "timestamp", "createdAt"),
}


def _time_ms(raw: Any, where: str) -> int | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, (int, float)) or (isinstance(raw, str) and raw.strip().lstrip("-").isdigit()):
        value = int(float(raw))
        return value * 1000 if value < 100_000_000_000 else value  # epoch seconds → ms
    try:
        parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{where}: created_at '{raw}' is neither epoch milliseconds nor an ISO 8601 time "
                                "(e.g. 2025-11-13T09:30:00Z).") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def _pick(record: dict[str, Any], field: str) -> Any:
    for name in ALIASES[field]:
        if name in record and record[name] not in (None, ""):
            return record[name]
    return None


def _row(record: dict[str, Any], where: str) -> RawLabel:
    value = _pick(record, "value")
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    return RawLabel(trace_id=_text(_pick(record, "trace_id")), criterion=_text(_pick(record, "criterion")),
                    value=value, reviewer=_text(_pick(record, "reviewer")),
                    rationale=_text(_pick(record, "rationale")),
                    created_at_ms=_time_ms(_pick(record, "created_at"), where), where=where)


def _text(value: Any) -> str | None:
    return None if value is None else str(value).strip() or None


def read_csv(text: str, name: str) -> list[RawLabel]:
    reader = csv.DictReader(io.StringIO(text))
    header = set(reader.fieldnames or [])
    for field in ("trace_id", "criterion", "value"):
        if not header & set(ALIASES[field]):
            raise InvalidInputError(
                f"{name}: no '{field}' column (header: {', '.join(sorted(header)) or 'empty'}). Label CSVs need "
                "columns trace_id, criterion, value and optionally reviewer, rationale, created_at.")
    return [_row(record, f"{name} line {reader.line_num}") for record in reader]


def read_jsonl(text: str, name: str) -> list[RawLabel]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise InvalidInputError(f"{name} line {number}: not JSON ({error.args[0]}). Each line must be one "
                                    'object like {"trace_id": "tr-1", "criterion": "correct", "value": "fail"}.'
                                    ) from None
        if not isinstance(record, dict):
            raise InvalidInputError(f"{name} line {number}: expected a JSON object, got {type(record).__name__}.")
        rows.append(_row(record, f"{name} line {number}"))
    return rows


def read_trace_labels(path: Path, fmt: Literal["langfuse", "mlflow", "auto"]) -> tuple[list[RawLabel], set[str]]:
    """Labels carried by Langfuse ANNOTATION scores or MLflow HUMAN assessments in trace files,
    and the readers' source names (``langfuse``, ``mlflow``)."""
    rows: list[RawLabel] = []
    sources: set[str] = set()
    problems: list[str] = []
    for item in read_path(path, fmt):
        if isinstance(item, IngestError):
            problems.append(str(item))
            continue
        assert isinstance(item, Trace)
        for label in item.labels:
            sources.add(label.source)
            rows.append(RawLabel(trace_id=label.trace_id, criterion=label.criterion,
                                 value=label.value if label.numeric_value is None or label.value in ("pass", "fail")
                                 else label.numeric_value,
                                 reviewer=label.reviewer or f"{label.source}-import", rationale=label.rationale,
                                 created_at_ms=label.created_at_ms or None,
                                 where=f"{path.name} trace {item.trace_id} '{label.criterion}'"))
    if problems:
        raise InvalidInputError("Nothing was imported: the file could not be read completely.\n"
                                + "\n".join(problems[:10]))
    return rows, sources


def sniff(path: Path, fmt: LabelFormat) -> str:
    """The concrete format: by extension for CSV/JSONL label files, else a trace export."""
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".jsonl":
        first = next((line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()), "{}")
        try:
            record = json.loads(first)
        except ValueError:
            return "jsonl"
        if isinstance(record, dict) and any(k in record for k in ALIASES["criterion"] + ALIASES["value"]):
            return "jsonl"
    return "traces"


def read_label_file(path: Path, fmt: LabelFormat = "auto") -> tuple[list[RawLabel], str, bool]:
    """``(rows, source, strict_values)`` for ``tools.labels.labelling.import_labels``."""
    if fmt not in LABEL_FORMATS:
        raise InvalidInputError(f"Unknown label format '{fmt}'. Use one of: {', '.join(LABEL_FORMATS)}.")
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"No file at '{path}'. Check the path (relative paths start from {Path.cwd()}).")
    kind = sniff(path, fmt)
    if kind in ("csv", "jsonl"):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidInputError(f"{path.name}: not UTF-8 text (bad byte at offset {error.start}); save it as "
                                    "UTF-8.") from None
        rows = read_csv(text, path.name) if kind == "csv" else read_jsonl(text, path.name)
        return rows, kind, True
    rows, sources = read_trace_labels(path, "auto" if kind == "traces" else kind)  # type: ignore[arg-type]
    source = sources.pop() if len(sources) == 1 else fmt if fmt != "auto" else "trace-export"
    return rows, source, False
