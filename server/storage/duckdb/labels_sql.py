"""DuckDB adapter for ``tools.labels.labelling.LabelStore``: append-only label rows and their history.

"Current" is the newest row per (trace, criterion) by ``created_at_ms`` then ``label_id`` (the
same rule the filter language's ``labels.<criterion>`` uses). A new manual label is stamped at
least 1 ms after the label it corrects, inside the same transaction, so a correction always
wins even when two are written within one clock tick.
"""

from __future__ import annotations

from typing import Any

import duckdb

from server.storage.duckdb.connection import fetch_dicts
from server.storage.duckdb.store import StoreFeature
from tools.labels.labelling import CriterionCount, LabelPage, LabelRecord, NewLabel, new_label_id

__all__ = ["DuckDBLabelStore", "new_label_id"]

_COLUMNS = "label_id, trace_id, criterion, value, numeric_value, reviewer, rationale, created_at_ms, source"
_RANKED = f"""
    SELECT {_COLUMNS},
           row_number() OVER w = 1 AS current,
           lag(label_id) OVER w AS superseded_by
    FROM labels
    WINDOW w AS (PARTITION BY trace_id, criterion ORDER BY created_at_ms DESC, label_id DESC)"""


def _records(cursor: duckdb.DuckDBPyConnection) -> list[LabelRecord]:
    return [LabelRecord(**row) for row in fetch_dicts(cursor)]


class DuckDBLabelStore(StoreFeature):
    """Labels in the trace store's DuckDB file."""

    def append_label(self, label: NewLabel, *, now_ms: int) -> tuple[LabelRecord, LabelRecord | None]:
        with self.store.writing() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                previous = _records(con.execute(
                    f"SELECT {_COLUMNS}, TRUE AS current, NULL AS superseded_by FROM labels "
                    "WHERE trace_id = $t AND criterion = $c ORDER BY created_at_ms DESC, label_id DESC LIMIT 1",
                    {"t": label.trace_id, "c": label.criterion}))
                created = label.created_at_ms if label.created_at_ms is not None else now_ms
                if previous:
                    created = max(created, previous[0].created_at_ms + 1)
                row = {**label.model_dump(), "created_at_ms": created, "label_id": new_label_id(created)}
                con.execute(f"INSERT INTO labels ({_COLUMNS}) VALUES ($label_id, $trace_id, $criterion, $value, "
                            "$numeric_value, $reviewer, $rationale, $created_at_ms, $source)", row)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        old = previous[0].model_copy(update={"current": False, "superseded_by": row["label_id"]}) if previous else None
        return LabelRecord(**{k: row[k] for k in LabelRecord.model_fields if k in row}), old

    def append_labels(self, labels: list[NewLabel], *, now_ms: int) -> tuple[int, int]:
        """Append all rows in one statement (all or nothing); returns (rows, traces)."""
        if not labels:
            return 0, 0
        created = [lab.created_at_ms if lab.created_at_ms is not None else now_ms for lab in labels]
        columns: dict[str, list[Any]] = {
            "label_id": [new_label_id(c) for c in created],
            "trace_id": [lab.trace_id for lab in labels], "criterion": [lab.criterion for lab in labels],
            "value": [lab.value for lab in labels], "numeric_value": [lab.numeric_value for lab in labels],
            "reviewer": [lab.reviewer for lab in labels], "rationale": [lab.rationale for lab in labels],
            "created_at_ms": created, "source": [lab.source for lab in labels],
        }
        select = ", ".join(f"unnest(${name})" for name in columns)
        with self.store.writing() as con:
            con.execute(f"INSERT INTO labels ({_COLUMNS}) SELECT {select}", columns)
        return len(labels), len(set(columns["trace_id"]))

    def existing_labels(self, trace_ids: list[str]) -> list[tuple[str, str, str, str | None, int, bool]]:
        with self.store.reading() as con:
            rows = con.execute(f"SELECT trace_id, criterion, value, reviewer, created_at_ms, current "
                               f"FROM ({_RANKED}) WHERE trace_id IN (SELECT unnest($ids))", {"ids": trace_ids}).fetchall()
        return [tuple(r) for r in rows]

    def list_labels(self, *, criterion: str | None, trace_ids: list[str] | None, reviewer: str | None,
                    include_history: bool, limit: int, after: tuple[int, str] | None) -> LabelPage:
        where, params = ["TRUE"], {}
        if criterion is not None:
            where.append("criterion = $criterion")
            params["criterion"] = criterion
        if trace_ids:
            where.append("trace_id IN (SELECT unnest($ids))")
            params["ids"] = trace_ids
        if reviewer is not None:
            where.append("reviewer = $reviewer")
            params["reviewer"] = reviewer
        if not include_history:
            where.append("current")
        base = f"SELECT * FROM ({_RANKED}) WHERE {' AND '.join(where)}"
        page_where, page_params = "TRUE", dict(params)
        if after is not None:
            page_where = "(created_at_ms, label_id) < ($after_ms, $after_id)"
            page_params.update({"after_ms": after[0], "after_id": after[1]})
        with self.store.reading() as con:
            total = con.execute(f"SELECT count(*) FROM ({base})", params).fetchone()[0]
            rows = _records(con.execute(
                f"SELECT * FROM ({base}) WHERE {page_where} ORDER BY created_at_ms DESC, label_id DESC "
                f"LIMIT {int(limit) + 1}", page_params))
        return LabelPage(rows=rows[:limit], has_more=len(rows) > limit, total=total)

    def criterion_counts(self, criterion: str | None) -> list[CriterionCount]:
        with self.store.reading() as con:
            rows = con.execute("""
                SELECT criterion, count(*), count(*) FILTER (value = 'pass'), count(*) FILTER (value = 'fail'),
                       count(*) FILTER (value NOT IN ('pass', 'fail') AND numeric_value IS NOT NULL)
                FROM current_labels WHERE $c IS NULL OR criterion = $c
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100""", {"c": criterion}).fetchall()
        return [CriterionCount(criterion=c, labelled_traces=n, passes=p, fails=f, graded=g) for c, n, p, f, g in rows]

    def label_criteria(self) -> list[str]:
        with self.store.reading() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT criterion FROM labels ORDER BY 1").fetchall()]
