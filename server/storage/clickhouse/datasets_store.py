"""ClickHouseDatasetStore: ``tools.datasets.models.DatasetStore`` over ClickHouse and the control plane.

The ClickHouse twin of ``server/storage/duckdb/datasets_sql.py``. The selection side (tag values,
candidates, payloads, label expectations) reads traces, spans, tags and labels de-duplicated
through ``ClickHouseClient.read*``. A version is split across two stores, because ClickHouse has
no transactions: its records go to ``dataset_records`` first, in one insert, under a fresh batch
id; its header commits last in the control plane (``server.storage.control.datasets``), under the
dataset's lock, naming that batch. Readers only read the batch a committed header names, so a
version is visible all at once or not at all; of two writers racing for one version number one
writes it and the other gets a ConflictError (as on DuckDB) and repeats, never a merge of both:
the batch is part of the records' key, so ReplacingMergeTree never folds the two writes together.

A writer killed between the two steps leaves records no header names. They are never read, and
``sweep_orphan_records`` (run by ``tracesieve optimize``) tombstones them once their batch is older
than ``ORPHAN_GRACE_MS``: a batch id starts with the time it was written, so a batch still in
flight (its header about to commit) is told from an abandoned one without any extra bookkeeping.

On a replicated cluster a reader on another replica could see the header before the records
have replicated; the client inserts with ``insert_quorum`` there (``client.cluster_settings``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from server.exchange.folder import exchange_dir
from server.storage.clickhouse.client import next_version
from server.storage.clickhouse.filter_sql import compile_filter
from server.storage.clickhouse.store import ClickHouseTraceStore
from server.storage.dataset_rows import header_from_row, header_row, record_from_row, stored_json, version_taken
from server.storage.control.datasets import DatasetHeaders
from server.storage.control.plane import ControlPlane
from server.storage.urls import DEFAULT_DATABASE
from tools import clock
from tools.datasets.models import Candidate, DatasetRecord, DatasetSummary, DatasetVersion

_MAX_TAG_VALUES = 1000
_RECORD_COLUMNS = ("name", "version", "records_batch", "record_id", "trace_id", "inputs", "outputs", "expectations",
                   "strata", "selection_probability", "redaction", "position", "row_version", "is_deleted")

#: How old an unnamed batch must be before the sweep takes it for abandoned. A writer commits its
#: header right after its one insert returns, so an hour is far beyond any batch still in flight.
ORPHAN_GRACE_MS = 3_600_000


def new_batch_id(now_ms: int) -> str:
    """``<epoch ms>-<uuid4 hex>``: unique, and its age readable by the sweep."""
    return f"{now_ms}-{uuid.uuid4().hex}"


def batch_written_at_ms(batch: str) -> int | None:
    """When ``new_batch_id`` made ``batch``; None for a batch of an older tracesieve (a bare uuid4)."""
    head, dash, _ = batch.partition("-")
    return int(head) if dash and head.isdigit() else None


class OrphanSweep(BaseModel):
    """What ``sweep_orphan_records`` did: records of killed or beaten writers, never read, tombstoned."""
    batches_swept: int = Field(description="Record batches no committed header names, older than the grace period.")
    records_swept: int = Field(description="Their records, now tombstoned (folded away by OPTIMIZE … FINAL).")
    batches_in_flight: int = Field(description="Unnamed batches younger than the grace period: left alone, a "
                                               "writer may be about to commit their header.")
    batches_undated: int = Field(description="Unnamed batches written by a tracesieve before batch ids carried "
                                             "their time: left alone, since their age cannot be told.")


class ClickHouseDatasetStore:
    """Datasets beside the traces they were built from; headers in the control plane."""

    def __init__(self, store: ClickHouseTraceStore, control: ControlPlane) -> None:
        self.traces = store
        self.client = store.client
        self.headers = DatasetHeaders(control)

    # -- the trace side ------------------------------------------------------------------------
    def tag_values(self) -> dict[str, list[str]]:
        rows = self.client.read("""
            SELECT key, arraySlice(arrayMap(x -> x.2, arraySort(x -> (-x.1, x.2), groupArray((n, value)))),
                                   1, {cap:UInt32})
            FROM (SELECT key, value, count() AS n FROM tags GROUP BY key, value) GROUP BY key ORDER BY key""",
                                {"cap": _MAX_TAG_VALUES})
        return {k: list(v) for k, v in rows}

    def candidates(self, expr: Any, *, now_ms: int, trace_ids: Sequence[str] | None = None,
                   with_request: bool = False) -> list[Candidate]:
        if trace_ids is not None:
            where, params = "t.trace_id IN {sel_ids:Array(String)}", {"sel_ids": list(dict.fromkeys(trace_ids))}
        else:
            where, params = compile_filter(expr, now_ms=now_ms)
        selected = f"SELECT t.trace_id FROM traces AS t WHERE {where}"
        head = "leftUTF8(t.request, 2000)" if with_request else "CAST(NULL AS Nullable(String))"
        # Spans and tags are read for the selected ids only (their sort keys start with trace_id
        # or are bloom-filtered on it); span types in the order each first starts.
        rows = self.client.read_dicts(f"""
            SELECT t.trace_id AS trace_id, t.timestamp_ms AS timestamp_ms, t.status AS status, t.model AS model,
                   t.environment AS environment, t.prompt_version AS prompt_version,
                   t.execution_time_ms AS execution_time_ms, t.tool_names AS tool_names, {head} AS request_head,
                   st.span_types AS span_types, tg.keys AS tag_keys, tg.values AS tag_values
            FROM traces AS t
            LEFT JOIN (
                SELECT trace_id, arrayMap(x -> x.2, arraySort(groupArray((first_start, span_type)))) AS span_types
                FROM (SELECT trace_id, span_type, min(start_time_ns) AS first_start FROM spans
                      WHERE trace_id IN ({selected}) GROUP BY trace_id, span_type)
                GROUP BY trace_id) AS st ON st.trace_id = t.trace_id
            LEFT JOIN (
                SELECT trace_id, groupArray(key) AS keys, groupArray(value) AS values FROM tags
                WHERE trace_id IN ({selected}) GROUP BY trace_id) AS tg ON tg.trace_id = t.trace_id
            WHERE {where}
            ORDER BY t.trace_id""", params)
        out = []
        for r in rows:
            tags = dict(zip(r.pop("tag_keys") or [], r.pop("tag_values") or []))
            out.append(Candidate(**{**r, "tool_names": list(r["tool_names"] or []),
                                    "span_types": [str(s) for s in r["span_types"] or []], "tags": tags}))
        return out

    def payloads(self, trace_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        if not trace_ids:
            return {}
        rows = self.client.read("SELECT trace_id, request, response FROM traces WHERE trace_id IN {ids:Array(String)}",
                                {"ids": list(dict.fromkeys(trace_ids))})
        return {r[0]: (r[1], r[2]) for r in rows}

    def label_expectations(self, trace_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The latest label per (trace, criterion): corrections are new rows, so the newest wins."""
        if not trace_ids:
            return {}
        rows = self.client.read("""
            SELECT trace_id, criterion, value, numeric_value FROM labels
            WHERE trace_id IN {ids:Array(String)}
            ORDER BY trace_id, criterion, created_at_ms DESC, label_id DESC LIMIT 1 BY trace_id, criterion""",
                                {"ids": list(dict.fromkeys(trace_ids))})
        out: dict[str, dict[str, Any]] = {}
        for trace_id, criterion, value, numeric in rows:
            out.setdefault(trace_id, {})[criterion] = value if numeric is None or value in ("pass", "fail") else numeric
        return out

    # -- datasets ------------------------------------------------------------------------------
    def versions(self, name: str) -> list[DatasetVersion]:
        return [header_from_row(r) for r in self.headers.rows(name)]

    def summaries(self) -> list[DatasetSummary]:
        by_name: dict[str, list[Any]] = {}
        for row in self.headers.summary_rows():
            by_name.setdefault(row.name, []).append(row)
        return [DatasetSummary(name=name, latest_version=rows[-1].version, versions=[r.version for r in rows],
                               record_count=rows[-1].record_count, created_at_ms=rows[-1].created_at_ms,
                               description=rows[-1].description) for name, rows in by_name.items()]

    def records(self, name: str, version: int, *, offset: int = 0, limit: int | None = None) -> list[DatasetRecord]:
        batch = self.headers.batch_of(name, version)
        if batch is None:
            return []
        page = "" if limit is None else f"LIMIT {int(limit)} "
        rows = self.client.read_dicts(f"""
            SELECT record_id, trace_id, inputs, outputs, expectations, strata, selection_probability, redaction
            FROM dataset_records
            WHERE name = {{name:String}} AND version = {{version:Int32}} AND records_batch = {{batch:String}}
            ORDER BY position {page}OFFSET {int(offset)}""", {"name": name, "version": version, "batch": batch})
        return [record_from_row(r) for r in rows]

    def write_version(self, header: DatasetVersion, records: Sequence[DatasetRecord]) -> None:
        """Records first (invisible: no header names their batch yet), then the header, under the lock."""
        if self.headers.taken(header.name, header.version):
            raise version_taken(header)  # the usual race, a stale latest: refused before writing anything
        batch = new_batch_id(clock.now_ms())
        self._insert_records(header, records, batch)
        if not self.headers.commit({**header_row(header), "records_batch": batch}):
            self._tombstone([batch])  # never read; no reason to keep them
            raise version_taken(header)

    def _insert_records(self, header: DatasetVersion, records: Sequence[DatasetRecord], batch: str) -> None:
        """One insert (one part, atomic on a node) of ``records`` under ``batch``."""
        row_version = next_version()
        self.client.insert("dataset_records", [
            (header.name, header.version, batch, r.record_id, r.trace_id, stored_json(r.inputs),
             stored_json(r.outputs), stored_json(r.expectations), stored_json(r.strata), r.selection_probability,
             stored_json(r.redaction), i, row_version, 0) for i, r in enumerate(records)], _RECORD_COLUMNS)

    def sweep_orphan_records(self, *, now_ms: int, grace_ms: int = ORPHAN_GRACE_MS) -> OrphanSweep:
        """Tombstone the records of every batch no committed header names, once it is older than
        ``grace_ms``. The tombstones keep only the key (no payload), so the next fold frees the space."""
        named = self.headers.committed_batches()
        unnamed = {batch: n for batch, n in self.client.read(
            "SELECT records_batch, count() FROM dataset_records GROUP BY records_batch") if batch not in named}
        written = {batch: batch_written_at_ms(batch) for batch in unnamed}
        swept = sorted(b for b, at in written.items() if at is not None and at <= now_ms - grace_ms)
        if swept:
            self._tombstone(swept)
        return OrphanSweep(batches_swept=len(swept), records_swept=sum(unnamed[b] for b in swept),
                           batches_in_flight=sum(1 for at in written.values() if at is not None) - len(swept),
                           batches_undated=sum(1 for at in written.values() if at is None))

    def _tombstone(self, batches: list[str]) -> None:
        """Tombstones for every record of ``batches``, server-side; they keep only the key, so the next
        fold frees the payloads."""
        self.client.command(
            "INSERT INTO dataset_records (name, version, records_batch, record_id, position, row_version, "
            "is_deleted) SELECT name, version, records_batch, record_id, position, {v:UInt64}, 1 "
            "FROM dataset_records WHERE records_batch IN {batches:Array(String)}",
            {"v": next_version(), "batches": batches})

    @property
    def exports_dir(self) -> Path:
        """The one folder MCP exports write to and MCP imports read from: ``exports/`` beside a chdb
        folder (``exports/<database>/`` for a database other than the default, so stores sharing the
        folder do not overwrite each other's files), or ``.tracesieve/exports`` in the working
        directory for a ClickHouse server."""
        url = self.traces.url
        folder = exchange_dir(url.path if url.path is not None else Path(".tracesieve") / "store")
        return folder if url.database == DEFAULT_DATABASE else folder / url.database
