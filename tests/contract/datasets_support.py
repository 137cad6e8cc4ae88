"""What the dataset contract tests need to know about an engine's tables, in one place: raw row
counts (what a refused write must leave unchanged, committed or not), the stored text of every
record (nothing sensitive may be in it), and labels written before their family has a port the
tests could use on every engine."""

from __future__ import annotations

import json

from server.storage.backend import Backend
from server.storage.clickhouse.client import next_version


def ds_of(backend: Backend):  # type: ignore[no-untyped-def]
    assert backend.features is not None and backend.features.datasets is not None
    return backend.features.datasets


def stored_counts(backend: Backend) -> tuple[int, int]:
    """(version headers, record rows) as stored, committed or not: what a refused write must not change."""
    if backend.engine == "duckdb":
        with backend.traces.reading() as con:  # type: ignore[attr-defined]
            return con.execute("SELECT (SELECT count(*) FROM datasets), (SELECT count(*) FROM dataset_records)"
                               ).fetchone()
    headers = sum(len(s.versions) for s in ds_of(backend).summaries())
    return headers, int(backend.traces.client.read("SELECT count() FROM dataset_records")[0][0])  # type: ignore[attr-defined]


def raw_records_text(backend: Backend) -> str:
    """Every stored record row, as text (for checking that nothing sensitive was stored)."""
    if backend.engine == "duckdb":
        with backend.traces.reading() as con:  # type: ignore[attr-defined]
            return json.dumps(con.execute("SELECT * FROM dataset_records").fetchall(), default=str)
    return json.dumps(backend.traces.client.read("SELECT * FROM dataset_records"), default=str)  # type: ignore[attr-defined]


def add_label(backend: Backend, label_id: str, trace_id: str, criterion: str, value: str, at: int) -> None:
    if backend.engine == "duckdb":
        with backend.traces.writing() as con:  # type: ignore[attr-defined]
            con.execute("INSERT INTO labels VALUES ($id, $t, $c, $v, NULL, NULL, NULL, $at, 'manual')",
                        {"id": label_id, "t": trace_id, "c": criterion, "v": value, "at": at})
        return
    backend.traces.client.insert(  # type: ignore[attr-defined]
        "labels", [(label_id, trace_id, criterion, value, None, None, None, at, "manual", next_version(), 0)],
        ("label_id", "trace_id", "criterion", "value", "numeric_value", "reviewer", "rationale", "created_at_ms",
         "source", "version", "is_deleted"))
