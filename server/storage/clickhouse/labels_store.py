"""ClickHouse adapters for labels (``tools.labels.labelling.LabelStore``) and the labelling page's store.

Labels are append-only rows of the ``labels`` table (M003, keyed by ``label_id``, so a retried
insert is one row). As in DuckDB's ``labels_sql.py``, "current" is the newest row per (trace,
criterion) by ``created_at_ms`` then ``label_id``, and a manual label is stamped at least 1 ms
after the label it corrects. ClickHouse has no transaction to make "read the current label, write
the correction" atomic, so that pair runs under the control plane's lock on (trace, criterion):
two servers correcting the same label at once each supersede the one before, in turn, and both
rows stay. Every read goes through ``ClickHouseClient.read*`` (``FINAL``); a newest-row value is an
``argMax`` of a tuple, since ``argMax`` of a Nullable column skips NULLs and would pick an older
row's value.

``ClickHouseReviewStore`` is ``tools.labels.review.ReviewStore`` over both halves: labels and judge
scores from ClickHouse, reviewers' skips, proposed criteria, queues and reveals from the control
plane (``server/storage/control/reviewers.py``).
"""

from __future__ import annotations

import json
from typing import Any

from server.storage.clickhouse.client import next_version
from server.storage.clickhouse.store import ClickHouseTraceStore
from server.storage.control.plane import ControlPlane
from server.storage.control.reviewers import ReviewState, judges_by_criterion
from tools.labels.labelling import CriterionCount, LabelPage, LabelRecord, NewLabel, new_label_id
from tools.labels.review import CriterionInfo, ProposedCriterion

_FIELDS = ("label_id", "trace_id", "criterion", "value", "numeric_value", "reviewer", "rationale", "created_at_ms",
           "source")
_COLUMNS = ", ".join(_FIELDS)
_WINDOW = ("WINDOW w AS (PARTITION BY trace_id, criterion ORDER BY created_at_ms DESC, label_id DESC "
           "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")
#: The current label of each (trace, criterion) among the rows ``{where}`` keeps.
_CURRENT = """
    SELECT criterion, trace_id, cur.1 AS value, cur.2 AS numeric_value, cur.3 AS reviewer
    FROM (SELECT criterion, trace_id, argMax((value, numeric_value, reviewer), (created_at_ms, label_id)) AS cur
          FROM labels WHERE {where} GROUP BY criterion, trace_id)"""


def _ranked(where: str) -> str:
    """Label rows with ``current`` and ``superseded_by``. ``where`` may only narrow by criterion or
    trace (whole partitions of the window), never by reviewer, or the ranks would change."""
    return (f"SELECT {_COLUMNS}, toBool((row_number() OVER w) = 1) AS current, "
            f"lagInFrame(toNullable(label_id)) OVER w AS superseded_by FROM labels WHERE {where} {_WINDOW}")


class ClickHouseLabelStore:
    """Labels in the ClickHouse ``labels`` table; the control plane serialises corrections."""

    def __init__(self, store: ClickHouseTraceStore, control: ControlPlane) -> None:
        self.store = store
        self.control = control
        self.client = store.client

    def known_trace_ids(self, trace_ids: list[str]) -> set[str]:
        return self.store.known_trace_ids(trace_ids)

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]:
        return self.store.similar_trace_ids(trace_id, limit)

    def _newest(self, trace_id: str, criterion: str) -> LabelRecord | None:
        rows = self.client.read_dicts(
            f"SELECT {_COLUMNS} FROM labels WHERE criterion = {{c:String}} AND trace_id = {{t:String}} "
            "ORDER BY created_at_ms DESC, label_id DESC LIMIT 1", {"t": trace_id, "c": criterion})
        return LabelRecord(**rows[0], current=True) if rows else None

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        version = next_version()
        self.client.insert("labels", [(*(r[f] for f in _FIELDS), version) for r in rows], (*_FIELDS, "version"))

    def append_label(self, label: NewLabel, *, now_ms: int) -> tuple[LabelRecord, LabelRecord | None]:
        with self.control.transaction() as conn:
            self.control.lock(conn, "labels:" + json.dumps([label.trace_id, label.criterion]))
            previous = self._newest(label.trace_id, label.criterion)
            created = label.created_at_ms if label.created_at_ms is not None else now_ms
            if previous is not None:
                created = max(created, previous.created_at_ms + 1)
            row = {**label.model_dump(), "created_at_ms": created, "label_id": new_label_id(created)}
            self._insert([row])
        old = previous.model_copy(update={"current": False, "superseded_by": row["label_id"]}) if previous else None
        return LabelRecord(**{k: row[k] for k in _FIELDS}), old

    def append_labels(self, labels: list[NewLabel], *, now_ms: int) -> tuple[int, int]:
        """Append all rows in one insert (one part: all or nothing on a node); returns (rows, traces)."""
        if not labels:
            return 0, 0
        rows = []
        for lab in labels:
            created = lab.created_at_ms if lab.created_at_ms is not None else now_ms
            rows.append({**lab.model_dump(), "created_at_ms": created, "label_id": new_label_id(created)})
        self._insert(rows)
        return len(rows), len({r["trace_id"] for r in rows})

    def existing_labels(self, trace_ids: list[str]) -> list[tuple[str, str, str, str | None, int, bool]]:
        rows = self.client.read(
            f"SELECT trace_id, criterion, value, reviewer, created_at_ms, current FROM "
            f"({_ranked('trace_id IN {ids:Array(String)}')})", {"ids": trace_ids})
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def list_labels(self, *, criterion: str | None, trace_ids: list[str] | None, reviewer: str | None,
                    include_history: bool, limit: int, after: tuple[int, str] | None) -> LabelPage:
        inner, outer, params = ["1"], ["1"], {}
        if criterion is not None:
            inner.append("criterion = {criterion:String}")
            params["criterion"] = criterion
        if trace_ids:
            inner.append("trace_id IN {ids:Array(String)}")
            params["ids"] = trace_ids
        if reviewer is not None:
            outer.append("reviewer = {reviewer:String}")
            params["reviewer"] = reviewer
        if not include_history:
            outer.append("current")
        base = f"SELECT * FROM ({_ranked(' AND '.join(inner))}) WHERE {' AND '.join(outer)}"
        page_where, page_params = "1", dict(params)
        if after is not None:
            page_where = "(created_at_ms, label_id) < ({after_ms:Int64}, {after_id:String})"
            page_params.update({"after_ms": after[0], "after_id": after[1]})
        total = self.client.read(f"SELECT count() FROM ({base})", params)[0][0]
        rows = self.client.read_dicts(f"SELECT * FROM ({base}) WHERE {page_where} "
                                      f"ORDER BY created_at_ms DESC, label_id DESC LIMIT {int(limit) + 1}", page_params)
        return LabelPage(rows=[LabelRecord(**r) for r in rows[:limit]], has_more=len(rows) > limit, total=int(total))

    def criterion_counts(self, criterion: str | None) -> list[CriterionCount]:
        where = "criterion = {c:String}" if criterion is not None else "1"
        rows = self.client.read(f"""
            SELECT criterion, count() AS n, countIf(value = 'pass'), countIf(value = 'fail'),
                   countIf(value NOT IN ('pass', 'fail') AND numeric_value IS NOT NULL)
            FROM ({_CURRENT.format(where=where)}) GROUP BY criterion ORDER BY n DESC, criterion LIMIT 100""",
                                {"c": criterion} if criterion is not None else {})
        return [CriterionCount(criterion=c, labelled_traces=n, passes=p, fails=f, graded=g) for c, n, p, f, g in rows]

    def label_criteria(self) -> list[str]:
        return [r[0] for r in self.client.read("SELECT DISTINCT criterion FROM labels ORDER BY criterion")]


class ClickHouseReviewStore(ClickHouseLabelStore):
    """``tools.labels.review.ReviewStore`` (and what the page reads besides) over ClickHouse + control plane."""

    def __init__(self, store: ClickHouseTraceStore, control: ControlPlane) -> None:
        super().__init__(store, control)
        self.state = ReviewState(control)

    def current_label(self, trace_id: str, criterion: str) -> LabelRecord | None:
        page = self.list_labels(criterion=criterion, trace_ids=[trace_id], reviewer=None, include_history=False,
                                limit=1, after=None)
        return page.rows[0] if page.rows else None

    def criteria(self) -> list[CriterionInfo]:
        """Defined, labelled, judged and scored criteria, as DuckDB's ``_CRITERIA`` lists them."""
        defined = {d["name"]: d for d in self.state.defined_criteria()}
        judges = judges_by_criterion(self.control) or {}
        judge_names = {j for names in judges.values() for j in names}
        scored = {r[0] for r in self.client.read("SELECT DISTINCT judge FROM scores")}
        counts = {r[0]: r[1:] for r in self.client.read(f"""
            SELECT criterion, count(), countIf(value = 'fail'), countIf(value = 'pass'), min(numeric_value),
                   max(numeric_value), countIf(value NOT IN ('pass', 'fail') AND numeric_value IS NOT NULL)
            FROM ({_CURRENT.format(where='1')}) GROUP BY criterion""")}
        names = set(defined) | set(counts) | set(judges) | (scored - judge_names)
        found = []
        for name in names:
            n, f, p, lo, hi, g = counts.get(name, (0, 0, 0, None, None, 0))
            graded = name in counts and g > f + p
            d = defined.get(name)
            js = sorted(j for j in judges.get(name, []) if j in scored) or ([name] if name in scored else [])
            found.append(CriterionInfo(
                name=name, description=d["description"] if d else None,
                kind=d["kind"] if d else "graded" if graded else "binary",
                scale_min=d["scale_min"] if d else min(lo, 0) if graded else None,
                scale_max=d["scale_max"] if d else hi if graded else None,
                labelled=n, fails=f, passes=p, judges=js))
        return sorted(found, key=lambda c: (-c.labelled, c.name))

    def add_criterion(self, criterion: ProposedCriterion, *, by: str, now_ms: int) -> None:
        self.state.add_criterion(criterion, by=by, now_ms=now_ms)

    def next_in_queue(self, criterion: str, reviewer: str, *, exclude: list[str]) -> str | None:
        """The first trace of the latest queue that nobody labelled, this reviewer did not skip, and
        ``exclude`` (held by others) leaves free."""
        skipped = self.state.skipped_ids(reviewer, criterion) | set(exclude)
        queue = [t for t in self.state.latest_queue(criterion) if t not in skipped]
        if not queue:
            return None
        labelled = {r[0] for r in self.client.read(
            "SELECT DISTINCT trace_id FROM labels WHERE criterion = {c:String} AND trace_id IN {ids:Array(String)}",
            {"c": criterion, "ids": queue})}
        return next((t for t in queue if t not in labelled), None)

    def skip(self, reviewer: str, trace_id: str, criterion: str, *, now_ms: int) -> None:
        self.state.skip(reviewer, trace_id, criterion, now_ms=now_ms)

    def skipped(self, reviewer: str, criterion: str) -> int:
        return len(self.state.skipped_ids(reviewer, criterion))

    def queue_entry(self, trace_id: str, criterion: str) -> dict[str, Any] | None:
        return self.state.queue_entry(trace_id, criterion)

    def judge_verdicts(self, trace_id: str, judges: list[str]) -> list[dict[str, Any]]:
        """Each judge's latest verdict on the trace (judge, verdict, score, rationale)."""
        if not judges:
            return []
        return self.client.read_dicts(
            "SELECT judge, verdict, score, rationale FROM scores WHERE trace_id = {t:String} "
            "AND has({j:Array(String)}, judge) ORDER BY judge, created_at_ms DESC NULLS LAST, run_id DESC "
            "LIMIT 1 BY judge", {"t": trace_id, "j": judges})

    def labels_by_reviewer(self, criterion: str) -> dict[str, int]:
        rows = self.client.read(
            f"SELECT coalesce(reviewer, '(unknown)') AS who, count() AS n FROM "
            f"({_CURRENT.format(where='criterion = {c:String}')}) GROUP BY who ORDER BY n DESC, who", {"c": criterion})
        return {name: int(n) for name, n in rows}

    def log_reveal(self, reviewer: str, trace_id: str, field: str, *, now_ms: int) -> None:
        self.state.log_reveal(reviewer, trace_id, field, now_ms=now_ms)
