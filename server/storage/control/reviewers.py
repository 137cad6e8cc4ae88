"""The labelling family's control-plane half: reviewers, skips, proposed criteria, reveals, queues.

The rows ``c003_labelling`` creates, read and written with SQLAlchemy Core so one module serves
SQLite and PostgreSQL. ``ControlReviewers`` is the engine-neutral twin of DuckDB's
``DuckDBReviewers`` (same messages, tokens kept only as SHA-256); ``ReviewState`` holds what the
``/label`` page keeps beside the labels (which live in ClickHouse, ``clickhouse/labels_store.py``).
Two servers adding the same reviewer or criterion at once: the unique indexes let one commit and
the other gets the same ``ConflictError`` a sequential second call gets.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.storage.control.plane import ControlPlane
from tools.errors import ConflictError, NotFoundError
from tools.labels.review import (TOKEN_PREFIX, ProposedCriterion, Reviewer, new_reviewer_token, reviewer_exists,
                                 token_sha256)

queue_items = sa.table(
    "queue_items", *(sa.column(c) for c in (
        "queue_id", "criterion", "trace_id", "rank", "priority", "selected_by", "selection_probability", "reasons",
        "population", "filter", "created_at_ms")))
reviewers = sa.table("reviewers", *(sa.column(c) for c in (
    "name", "role", "token_sha256", "created_at_ms", "revoked_at_ms")))
review_skips = sa.table("review_skips", *(sa.column(c) for c in ("reviewer", "trace_id", "criterion",
                                                                 "created_at_ms")))
criteria = sa.table("criteria", *(sa.column(c) for c in (
    "name", "description", "kind", "scale_min", "scale_max", "proposed_by", "created_at_ms")))
reveal_log = sa.table("reveal_log", *(sa.column(c) for c in ("reviewer", "trace_id", "field", "created_at_ms")))
_REVIEWER = (reviewers.c.name, reviewers.c.role, reviewers.c.created_at_ms, reviewers.c.revoked_at_ms)


class ControlReviewers:
    """Reviewers with hashed tokens in the control plane (``tracesieve reviewer``, the page's sign-in)."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control

    def add(self, name: str, role: str, *, now_ms: int) -> str:
        """Create ``name`` and return their token (the only time it exists in clear)."""
        token = new_reviewer_token(name, role)
        exists = reviewer_exists(name)
        try:
            with self.control.transaction() as conn:
                self.control.lock(conn, "reviewers:" + name)
                active = conn.execute(sa.select(reviewers.c.name).where(
                    reviewers.c.name == name, reviewers.c.revoked_at_ms.is_(None))).first()
                if active:
                    raise exists
                conn.execute(sa.insert(reviewers).values(name=name, role=role, token_sha256=token_sha256(token),
                                                         created_at_ms=now_ms, revoked_at_ms=None))
        except IntegrityError as error:  # another server added the name between our check and insert
            raise exists from error
        return token

    def revoke(self, name: str, *, now_ms: int) -> None:
        with self.control.transaction() as conn:
            changed = conn.execute(sa.update(reviewers).where(
                reviewers.c.name == name, reviewers.c.revoked_at_ms.is_(None)).values(revoked_at_ms=now_ms)).rowcount
        if not changed:
            raise NotFoundError(f"No active reviewer named '{name}'. List them with: tracesieve reviewer list")

    def list(self) -> list[Reviewer]:
        with self.control.reading() as conn:
            rows = conn.execute(sa.select(*_REVIEWER).order_by(reviewers.c.name, reviewers.c.created_at_ms))
            return [Reviewer(**row._mapping) for row in rows]

    def by_token(self, token: str) -> Reviewer | None:
        """The active reviewer holding ``token``, or None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.control.reading() as conn:
            row = conn.execute(sa.select(*_REVIEWER).where(reviewers.c.token_sha256 == token_sha256(token),
                                                           reviewers.c.revoked_at_ms.is_(None))).first()
        return Reviewer(**row._mapping) if row else None


def judges_by_criterion(control: ControlPlane) -> dict[str, list[str]] | None:
    """criterion -> its judges' names, when the judges family records criteria (c002); else None."""
    with control.reading() as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table("judges") or "criterion" not in {
                c["name"] for c in inspector.get_columns("judges")}:
            return None
        rows = conn.execute(sa.text("SELECT DISTINCT criterion, name FROM judges WHERE criterion IS NOT NULL "
                                    "ORDER BY name")).all()
    found: dict[str, list[str]] = {}
    for criterion, name in rows:
        found.setdefault(criterion, []).append(name)
    return found


def judges_of_criterion(control: ControlPlane, criterion: str) -> list[str] | None:
    """The judges of ``criterion`` (None when there are none or judges record no criterion: the queue
    then compares every judge, and takes the judge named like the criterion as its own)."""
    return (judges_by_criterion(control) or {}).get(criterion) or None


class ReviewState:
    """What the ``/label`` page keeps beside the labels: criteria, skips, queue rows, reveals."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control

    def defined_criteria(self) -> list[dict[str, Any]]:
        with self.control.reading() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(
                criteria.c.name, criteria.c.description, criteria.c.kind, criteria.c.scale_min,
                criteria.c.scale_max))]

    def add_criterion(self, criterion: ProposedCriterion, *, by: str, now_ms: int) -> None:
        try:
            with self.control.transaction() as conn:
                conn.execute(sa.insert(criteria).values(**criterion.model_dump(), proposed_by=by, created_at_ms=now_ms))
        except IntegrityError as error:
            raise ConflictError(f"Criterion '{criterion.name}' already exists; pick it from the list, or choose "
                                "another name for a different failure mode.") from error

    def latest_queue(self, criterion: str) -> list[str]:
        """The trace ids of the latest queue drawn for ``criterion``, by rank."""
        with self.control.reading() as conn:
            latest = conn.execute(sa.select(queue_items.c.queue_id).where(queue_items.c.criterion == criterion)
                                  .order_by(queue_items.c.created_at_ms.desc(), queue_items.c.queue_id.desc())
                                  .limit(1)).scalar()
            if latest is None:
                return []
            return list(conn.execute(sa.select(queue_items.c.trace_id).where(queue_items.c.queue_id == latest)
                                     .order_by(queue_items.c.rank)).scalars())

    def skipped_ids(self, reviewer: str, criterion: str) -> set[str]:
        with self.control.reading() as conn:
            return set(conn.execute(sa.select(review_skips.c.trace_id).where(
                review_skips.c.reviewer == reviewer, review_skips.c.criterion == criterion)).scalars())

    def skip(self, reviewer: str, trace_id: str, criterion: str, *, now_ms: int) -> None:
        with self.control.transaction() as conn:
            conn.execute(sa.insert(review_skips).values(reviewer=reviewer, trace_id=trace_id, criterion=criterion,
                                                        created_at_ms=now_ms))

    def queue_entry(self, trace_id: str, criterion: str) -> dict[str, Any] | None:
        """The latest queue row that handed out this trace: rank, how it was selected, the reasons."""
        with self.control.reading() as conn:
            row = conn.execute(sa.select(queue_items.c.rank, queue_items.c.selected_by,
                                         queue_items.c.selection_probability, queue_items.c.reasons)
                               .where(queue_items.c.trace_id == trace_id, queue_items.c.criterion == criterion)
                               .order_by(queue_items.c.created_at_ms.desc()).limit(1)).first()
        if row is None:
            return None
        return {**row._mapping, "reasons": json.loads(row.reasons or "[]")}

    def log_reveal(self, reviewer: str, trace_id: str, field: str, *, now_ms: int) -> None:
        with self.control.transaction() as conn:
            conn.execute(sa.insert(reveal_log).values(reviewer=reviewer, trace_id=trace_id, field=field,
                                                      created_at_ms=now_ms))
