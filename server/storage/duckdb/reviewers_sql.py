"""DuckDB adapters for the labelling page: reviewers and their tokens, and the page's review store.

``DuckDBReviewers`` keeps who may use ``/label``. A token is shown once, when it is made; the
store keeps only its SHA-256 (256 random bits need no slow hash), so a copied store file or a
``query_sql`` caller never learns a token. ``DuckDBReviewStore`` adds what the page reads and
writes beyond labels (``tools.labels.review.ReviewStore``): the current label of a trace, the
criteria, the next queue item, skips, the judges' verdicts and the reveal log.
"""

from __future__ import annotations

import json
from typing import Any

from server.storage.duckdb.connection import fetch_dicts
from server.storage.duckdb.labels_sql import DuckDBLabelStore
from server.storage.duckdb.store import StoreFeature
from tools.errors import NotFoundError
from tools.labels.labelling import LabelRecord
from tools.labels.review import (TOKEN_PREFIX, CriterionInfo, ProposedCriterion, Reviewer, new_reviewer_token,
                                 reviewer_exists, token_sha256)

__all__ = ["TOKEN_PREFIX", "DuckDBReviewStore", "DuckDBReviewers", "token_sha256"]


class DuckDBReviewers(StoreFeature):
    """Reviewers with hashed tokens in the trace store's DuckDB file."""

    def add(self, name: str, role: str, *, now_ms: int) -> str:
        """Create ``name`` and return their token (the only time it exists in clear)."""
        token = new_reviewer_token(name, role)
        with self.store.transaction() as con:
            if con.execute("SELECT 1 FROM reviewers WHERE name = $n AND revoked_at_ms IS NULL",
                           {"n": name}).fetchone():
                raise reviewer_exists(name)
            con.execute("INSERT INTO reviewers VALUES ($n, $r, $h, $at, NULL)",
                        {"n": name, "r": role, "h": token_sha256(token), "at": now_ms})
        return token

    def revoke(self, name: str, *, now_ms: int) -> None:
        with self.store.transaction() as con:
            changed = con.execute("UPDATE reviewers SET revoked_at_ms = $at WHERE name = $n AND revoked_at_ms IS NULL",
                                  {"n": name, "at": now_ms}).fetchone()[0]
        if not changed:
            raise NotFoundError(f"No active reviewer named '{name}'. List them with: tracesieve reviewer list")

    def list(self) -> list[Reviewer]:
        with self.store.reading() as con:
            rows = fetch_dicts(con.execute("SELECT name, role, created_at_ms, revoked_at_ms FROM reviewers "
                                           "ORDER BY name, created_at_ms"))
        return [Reviewer(**row) for row in rows]

    def by_token(self, token: str) -> Reviewer | None:
        """The active reviewer holding ``token``, or None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.store.reading() as con:
            rows = fetch_dicts(con.execute("SELECT name, role, created_at_ms, revoked_at_ms FROM reviewers "
                                           "WHERE token_sha256 = $h AND revoked_at_ms IS NULL",
                                           {"h": token_sha256(token)}))
        return Reviewer(**rows[0]) if rows else None


_CRITERIA = """
    WITH names AS (SELECT name FROM criteria UNION SELECT criterion FROM labels
                   UNION SELECT criterion FROM judges UNION SELECT judge FROM scores
                   WHERE judge NOT IN (SELECT name FROM judges)),
    counts AS (SELECT criterion, count(*) n, count(*) FILTER (value = 'fail') f,
                      count(*) FILTER (value = 'pass') p, min(numeric_value) lo, max(numeric_value) hi,
                      count(*) FILTER (value NOT IN ('pass', 'fail') AND numeric_value IS NOT NULL) g
               FROM current_labels GROUP BY 1),
    scored AS (SELECT DISTINCT judge FROM scores),
    judged AS (SELECT criterion, list(DISTINCT name ORDER BY name) js FROM judges
               WHERE name IN (SELECT judge FROM scored) GROUP BY 1),
    defined AS (SELECT * FROM criteria QUALIFY row_number() OVER (PARTITION BY name ORDER BY created_at_ms) = 1)
    SELECT n.name, d.description,
           -- a criterion nobody defined is graded when most of its labels are numbers (e.g. imported scores)
           coalesce(d.kind, CASE WHEN c.g > c.f + c.p THEN 'graded' ELSE 'binary' END) AS kind,
           CASE WHEN d.name IS NOT NULL THEN d.scale_min WHEN c.g > c.f + c.p THEN least(c.lo, 0) END AS scale_min,
           CASE WHEN d.name IS NOT NULL THEN d.scale_max WHEN c.g > c.f + c.p THEN c.hi END AS scale_max,
           coalesce(c.n, 0) AS labelled, coalesce(c.f, 0) AS fails, coalesce(c.p, 0) AS passes,
           coalesce(j.js, CASE WHEN n.name IN (SELECT judge FROM scored) THEN [n.name] ELSE [] END) AS judges
    FROM names n LEFT JOIN defined d ON d.name = n.name LEFT JOIN counts c ON c.criterion = n.name
    LEFT JOIN judged j ON j.criterion = n.name
    ORDER BY labelled DESC, n.name"""


class DuckDBReviewStore(DuckDBLabelStore):
    """``tools.labels.review.ReviewStore`` over the trace store's DuckDB file."""

    def current_label(self, trace_id: str, criterion: str) -> LabelRecord | None:
        page = self.list_labels(criterion=criterion, trace_ids=[trace_id], reviewer=None, include_history=False,
                                limit=1, after=None)
        return page.rows[0] if page.rows else None

    def criteria(self) -> list[CriterionInfo]:
        with self.store.reading() as con:
            return [CriterionInfo(**row) for row in fetch_dicts(con.execute(_CRITERIA))]

    def add_criterion(self, criterion: ProposedCriterion, *, by: str, now_ms: int) -> None:
        with self.store.writing() as con:
            con.execute("INSERT INTO criteria VALUES ($name, $description, $kind, $scale_min, $scale_max, $by, $at)",
                        {**criterion.model_dump(), "by": by, "at": now_ms})

    def next_in_queue(self, criterion: str, reviewer: str, *, exclude: list[str]) -> str | None:
        with self.store.reading() as con:
            row = con.execute("""
                WITH latest AS (SELECT queue_id FROM queue_items WHERE criterion = $c
                                ORDER BY created_at_ms DESC, queue_id DESC LIMIT 1)
                SELECT q.trace_id FROM queue_items q
                WHERE q.queue_id = (SELECT queue_id FROM latest)
                  AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.trace_id = q.trace_id AND l.criterion = $c)
                  AND NOT EXISTS (SELECT 1 FROM review_skips s WHERE s.trace_id = q.trace_id AND s.criterion = $c
                                  AND s.reviewer = $r)
                  AND NOT list_contains($x, q.trace_id)
                ORDER BY q.rank LIMIT 1""", {"c": criterion, "r": reviewer, "x": exclude}).fetchone()
        return row[0] if row else None

    def skip(self, reviewer: str, trace_id: str, criterion: str, *, now_ms: int) -> None:
        with self.store.writing() as con:
            con.execute("INSERT INTO review_skips VALUES ($r, $t, $c, $at)",
                        {"r": reviewer, "t": trace_id, "c": criterion, "at": now_ms})

    def skipped(self, reviewer: str, criterion: str) -> int:
        with self.store.reading() as con:
            return con.execute("SELECT count(DISTINCT trace_id) FROM review_skips WHERE reviewer = $r AND "
                               "criterion = $c", {"r": reviewer, "c": criterion}).fetchone()[0]

    def queue_entry(self, trace_id: str, criterion: str) -> dict[str, Any] | None:
        """The latest queue row that handed out this trace: rank, how it was selected, the reasons."""
        with self.store.reading() as con:
            rows = fetch_dicts(con.execute(
                "SELECT rank, selected_by, selection_probability, reasons FROM queue_items WHERE trace_id = $t "
                "AND criterion = $c ORDER BY created_at_ms DESC LIMIT 1", {"t": trace_id, "c": criterion}))
        if not rows:
            return None
        return {**rows[0], "reasons": json.loads(rows[0]["reasons"] or "[]")}

    def judge_verdicts(self, trace_id: str, judges: list[str]) -> list[dict[str, Any]]:
        """Each judge's latest verdict on the trace (judge, verdict, score, rationale)."""
        if not judges:
            return []
        with self.store.reading() as con:
            return fetch_dicts(con.execute("""
                SELECT judge, verdict, score, rationale FROM scores WHERE trace_id = $t AND list_contains($j, judge)
                QUALIFY row_number() OVER (PARTITION BY judge ORDER BY created_at_ms DESC NULLS LAST, run_id DESC) = 1
                ORDER BY judge""", {"t": trace_id, "j": judges}))

    def labels_by_reviewer(self, criterion: str) -> dict[str, int]:
        with self.store.reading() as con:
            rows = con.execute("SELECT coalesce(reviewer, '(unknown)'), count(*) FROM current_labels "
                               "WHERE criterion = $c GROUP BY 1 ORDER BY 2 DESC, 1", {"c": criterion}).fetchall()
        return {name: n for name, n in rows}

    def log_reveal(self, reviewer: str, trace_id: str, field: str, *, now_ms: int) -> None:
        with self.store.writing() as con:
            con.execute("INSERT INTO reveal_log VALUES ($r, $t, $f, $at)",
                        {"r": reviewer, "t": trace_id, "f": field, "at": now_ms})
