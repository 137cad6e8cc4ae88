"""DuckDBDatasetStore: the DuckDB adapter of ``tools.datasets.models.DatasetStore``.

It shares the trace store's file and its open-per-call connections (``reading()`` /
``writing()``). A version is written in one transaction: its records go in as one Arrow table
(set-based INSERT, no per-row statements), and the header last, after checking inside the same
transaction that no other process wrote that version first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from server.exchange.folder import exchange_dir
from server.storage.duckdb.connection import fetch_dicts
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.dataset_rows import header_from_row, header_row, record_from_row, stored_json, version_taken
from server.storage.duckdb.id_lists import ids_in
from tools.datasets.models import Candidate, DatasetRecord, DatasetSummary, DatasetVersion

_RECORD_SCHEMA = pa.schema([
    ("name", pa.string()), ("version", pa.int32()), ("record_id", pa.string()), ("trace_id", pa.string()),
    ("inputs", pa.string()), ("outputs", pa.string()), ("expectations", pa.string()), ("strata", pa.string()),
    ("selection_probability", pa.float64()), ("redaction", pa.string()), ("position", pa.int32()),
])
_MAX_TAG_VALUES = 1000


class DuckDBDatasetStore:
    """Datasets in the same DuckDB file as the traces they were built from."""

    def __init__(self, traces: DuckDBTraceStore) -> None:
        self.traces = traces

    # -- the trace side ------------------------------------------------------------------------
    def tag_values(self) -> dict[str, list[str]]:
        with self.traces.reading() as con:
            rows = con.execute("""
                SELECT key, list(value ORDER BY n DESC, value)[1:$cap]
                FROM (SELECT key, value, count(*) n FROM tags GROUP BY 1, 2) GROUP BY key ORDER BY key""",
                               {"cap": _MAX_TAG_VALUES}).fetchall()
        return {k: list(v) for k, v in rows}

    def candidates(self, expr: Any, *, now_ms: int, trace_ids: Sequence[str] | None = None,
                   with_request: bool = False) -> list[Candidate]:
        if trace_ids is not None:
            where, params = ids_in("t.trace_id", list(trace_ids))
        else:
            where, params = self.traces.where(expr, now_ms)
        head = "left(sel.request, 2000)" if with_request else "NULL"
        with self.traces.reading() as con:
            # The spans of the selection are aggregated after a semi-join on its ids: a
            # correlated subquery per trace was decorrelated into an aggregate over every span in
            # the store (6 s for 10k traces among 1M).
            rows = fetch_dicts(con.execute(f"""
                WITH sel AS MATERIALIZED (SELECT * FROM traces t WHERE {where}),
                first_span AS (
                    SELECT s.trace_id, s.span_type, min(s.start_time_ns) AS first_start FROM spans s
                    WHERE s.trace_id IN (SELECT trace_id FROM sel) GROUP BY 1, 2),
                span_types AS (
                    SELECT trace_id, list(span_type ORDER BY first_start, span_type) AS span_types
                    FROM first_span GROUP BY 1)
                SELECT sel.trace_id, sel.timestamp_ms, sel.status, sel.model, sel.environment, sel.prompt_version,
                       sel.execution_time_ms, coalesce(sel.tool_names, []) AS tool_names,
                       {head} AS request_head,
                       coalesce(st.span_types, []) AS span_types, CAST(sel.tags AS MAP(VARCHAR, VARCHAR)) AS tags
                FROM sel LEFT JOIN span_types st USING (trace_id)
                ORDER BY sel.trace_id""", params))
        return [Candidate(**{**r, "tags": dict(r["tags"] or {})}) for r in rows]

    def payloads(self, trace_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        if not trace_ids:
            return {}
        with self.traces.reading() as con:
            where, params = ids_in("trace_id", list(trace_ids))
            rows = con.execute(f"SELECT trace_id, request, response FROM traces WHERE {where}", params).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def label_expectations(self, trace_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The latest label per (trace, criterion): corrections are new rows, so the newest wins."""
        if not trace_ids:
            return {}
        with self.traces.reading() as con:
            rows = con.execute("""
                SELECT trace_id, criterion, value, numeric_value FROM (
                    SELECT *, row_number() OVER (PARTITION BY trace_id, criterion
                                                 ORDER BY created_at_ms DESC, label_id DESC) AS rn
                    FROM labels WHERE trace_id IN (SELECT unnest($ids)))
                WHERE rn = 1 ORDER BY 1, 2""", {"ids": list(trace_ids)}).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for trace_id, criterion, value, numeric in rows:
            out.setdefault(trace_id, {})[criterion] = value if numeric is None or value in ("pass", "fail") else numeric
        return out

    # -- datasets ------------------------------------------------------------------------------
    def versions(self, name: str) -> list[DatasetVersion]:
        with self.traces.reading() as con:
            rows = fetch_dicts(con.execute("SELECT * FROM datasets WHERE name = $name ORDER BY version", {"name": name}))
        return [header_from_row(r) for r in rows]

    def summaries(self) -> list[DatasetSummary]:
        with self.traces.reading() as con:
            rows = con.execute("""
                SELECT name, max(version), list(version ORDER BY version), arg_max(record_count, version),
                       arg_max(created_at_ms, version), arg_max(description, version)
                FROM datasets GROUP BY name ORDER BY name""").fetchall()
        return [DatasetSummary(name=r[0], latest_version=r[1], versions=list(r[2]), record_count=r[3],
                               created_at_ms=r[4], description=r[5]) for r in rows]

    def records(self, name: str, version: int, *, offset: int = 0, limit: int | None = None) -> list[DatasetRecord]:
        page = "" if limit is None else f"LIMIT {int(limit)}"
        with self.traces.reading() as con:
            rows = fetch_dicts(con.execute(f"""
                SELECT record_id, trace_id, inputs, outputs, expectations, strata, selection_probability, redaction
                FROM dataset_records WHERE name = $name AND version = $version
                ORDER BY position {page} OFFSET {int(offset)}""", {"name": name, "version": version}))
        return [record_from_row(r) for r in rows]

    def write_version(self, header: DatasetVersion, records: Sequence[DatasetRecord]) -> None:
        table = pa.Table.from_pylist([{
            "name": header.name, "version": header.version, "record_id": r.record_id, "trace_id": r.trace_id,
            "inputs": stored_json(r.inputs), "outputs": stored_json(r.outputs),
            "expectations": stored_json(r.expectations), "strata": stored_json(r.strata),
            "selection_probability": r.selection_probability, "redaction": stored_json(r.redaction), "position": i,
        } for i, r in enumerate(records)], schema=_RECORD_SCHEMA)
        with self.traces.writing() as con:
            con.register("batch_records", table)
            try:
                con.execute("BEGIN TRANSACTION")
                taken = con.execute("SELECT count(*) FROM datasets WHERE name = $n AND version = $v",
                                    {"n": header.name, "v": header.version}).fetchone()[0]
                if taken:
                    raise version_taken(header)
                con.execute("INSERT INTO dataset_records SELECT * FROM batch_records")
                con.execute("""INSERT INTO datasets VALUES ($name, $version, $created_at_ms, $description, $spec,
                                   $content_hash, $record_count, $strata, $redaction_report, $parent_version)""",
                            header_row(header))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("batch_records")

    @property
    def exports_dir(self) -> Path:
        """The one folder MCP exports write to and MCP imports read from."""
        return exchange_dir(self.traces.path)
