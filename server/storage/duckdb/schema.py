"""The embedded DuckDB store's schema: the ordered migrations and what query_sql may read.

A store records the migrations it has applied in ``schema_version``; opening an older store
applies the missing ones in order inside one transaction. Never edit a released migration:
append a new one.

Canonical tables follow DESIGN.md. Two views give the Databricks-style shapes users already
write SQL against: ``trace_unified`` (one row per trace) and ``otel_spans`` (one row per span).
No PRIMARY KEY constraints: uniqueness is kept by the writers (delete-then-insert inside one
transaction), which keeps bulk loads fast and avoids DuckDB's over-eager key checks on
delete+insert of the same key in one transaction.
"""

from __future__ import annotations

from server.storage.duckdb.migrations import m001_core, m002_datasets, m003_judges
from server.storage.duckdb.migrations import m004_calibration, m005_trace_id_indexes, m006_denormalized_filters
from server.storage.duckdb.migrations import m007_unified_tags_from_copy
from server.storage.duckdb.migrations import m008_sync_state
from server.storage.duckdb.migrations import m009_monitors
from server.storage.duckdb.migrations import m010_reviewers

MIGRATIONS: tuple[str, ...] = (
    m001_core.SQL,
    m002_datasets.SQL,
    m003_judges.SQL,
    m004_calibration.SQL,
    m005_trace_id_indexes.SQL,
    m006_denormalized_filters.SQL,
    m007_unified_tags_from_copy.SQL,
    m008_sync_state.SQL,
    m009_monitors.SQL,
    m010_reviewers.SQL,
)

SCHEMA_VERSION = len(MIGRATIONS)

#: Tables and views that ``query_sql`` may read (everything user-visible).
QUERYABLE = ("traces", "spans", "tags", "tag_history", "labels", "scores", "trace_unified", "otel_spans",
             "queue_items", "calibrations", "current_labels", "datasets", "dataset_records",
             "judges", "judge_runs", "monitors", "monitor_windows", "monitor_alerts", "criteria", "review_skips",
             "reveal_log")
