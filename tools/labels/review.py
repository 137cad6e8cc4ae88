"""The labelling page's rules, over a ``ReviewStore``: who may write which label, what comes next.

A person on ``/label`` is identified by their own token, so a label's reviewer is who they are,
never a typed name. Their answers go through ``labelling.label_trace`` (same normalisation,
append-only rows); on top of that the page enforces two rules the MCP tool cannot know about:

* **Corrections are one's own.** A reviewer may supersede their own current label (the old row
  stays as history); another reviewer's label is refused (a lead may correct it: adjudication).
* **The queue is ``annotation_queue``'s**, worked through in rank order: the next item is the
  first of the criterion's latest recorded queue with no label for the criterion, not skipped
  by this reviewer and not held by another reviewer; when none is left a new queue is drawn (and
  recorded, with its selection probabilities, so calibration can reweight the labels).
* **Two people do not get the same trace at once.** Handing a trace out holds it for its reviewer
  for ``HOLD_S``; others get the next one. Holds live in the serving process only: they are a
  courtesy that saves double work, not a lock (the label rules above keep the data right).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from tools.errors import ConflictError, InvalidInputError
from tools.labels import labelling
from tools.labels.labelling import LabelRecord, LabelStore, LabelTraceInput, LabelTraceResult

Role = Literal["reviewer", "lead"]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
#: The seed: "Aim for ten to twenty labeled examples per failure mode".
SEED_TARGET = (10, 20)
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


#: How long a handed-out trace stays reserved for its reviewer.
HOLD_S = 600.0


class Holds:
    """Which reviewer each handed-out trace is reserved for, until ``HOLD_S`` passes (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def hold(self, criterion: str, trace_id: str, reviewer: str) -> None:
        with self._lock:
            self._held[(criterion, trace_id)] = (reviewer, self._clock() + HOLD_S)

    def release(self, criterion: str, trace_id: str) -> None:
        """Answered or skipped: the hold has done its job."""
        with self._lock:
            self._held.pop((criterion, trace_id), None)

    def held_by_others(self, criterion: str, reviewer: str) -> list[str]:
        now = self._clock()
        with self._lock:
            self._held = {k: v for k, v in self._held.items() if v[1] > now}
            return [t for (c, t), (who, _) in self._held.items() if c == criterion and who != reviewer]


#: Marks a reviewer token, so a store rejects anything else without a lookup.
TOKEN_PREFIX = "tsr_"


def token_sha256(token: str) -> str:
    """What a store keeps of a token: 256 random bits need no slow hash, and a copied store or a
    ``query_sql`` caller never learns the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_reviewer_token(name: str, role: str) -> str:
    """A fresh token for reviewer ``name`` with ``role`` (both checked first), shown once."""
    if role not in ROLES:
        raise InvalidInputError(f"Role '{role}' is not one of {', '.join(ROLES)}.")
    if not name or name != name.strip() or len(name) > 200:
        raise InvalidInputError(f"Reviewer name '{name}' must be 1-200 characters without surrounding spaces.")
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def reviewer_exists(name: str) -> ConflictError:
    return ConflictError(f"Reviewer '{name}' already exists. Revoke the old token first "
                         f"(tracesieve reviewer revoke {name}) to issue a new one.")


class Reviewer(BaseModel):
    """A person allowed on the page; ``lead`` may also reveal redacted fields and correct others."""

    name: str
    role: Role
    created_at_ms: int
    revoked_at_ms: int | None = None


class CriterionInfo(BaseModel):
    """A failure mode as the page lists it: defined (proposed) or only used by labels/judges."""

    name: str
    description: str | None = None
    kind: Literal["binary", "graded"] = "binary"
    scale_min: float | None = None
    scale_max: float | None = None
    labelled: int = 0
    fails: int = 0
    passes: int = 0
    judges: list[str] = Field(default_factory=list)


class ProposedCriterion(BaseModel):
    """A new failure mode from the page: a snake_case name, what it means, and its scale."""

    name: str = Field(min_length=2, max_length=63)
    description: str = Field(min_length=10, max_length=2000)
    kind: Literal["binary", "graded"] = "binary"
    scale_min: float | None = None
    scale_max: float | None = None


class ReviewStore(LabelStore, Protocol):
    """What the page needs beyond labels (``server/storage/duckdb/reviewers_sql.py``)."""

    def current_label(self, trace_id: str, criterion: str) -> LabelRecord | None: ...

    def criteria(self) -> list[CriterionInfo]: ...

    def add_criterion(self, criterion: ProposedCriterion, *, by: str, now_ms: int) -> None: ...

    def next_in_queue(self, criterion: str, reviewer: str, *, exclude: list[str]) -> str | None: ...

    def skip(self, reviewer: str, trace_id: str, criterion: str, *, now_ms: int) -> None: ...


def answer(store: ReviewStore, reviewer: Reviewer, *, trace_id: str, criterion: str, value: str,
           rationale: str | None, now_ms: int) -> LabelTraceResult:
    """Record ``reviewer``'s answer; refuse to supersede someone else's label unless a lead."""
    current = store.current_label(trace_id, criterion)
    if current is not None and current.reviewer != reviewer.name and reviewer.role != "lead":
        raise ConflictError(
            f"Trace '{trace_id}' is already labelled {current.value} for '{criterion}' by {current.reviewer}; "
            f"only {current.reviewer} (or a lead) can correct that label. Skip it and go on with the queue.")
    return labelling.label_trace(store, LabelTraceInput(
        trace_id=trace_id, criterion=criterion, value=value, reviewer=reviewer.name,
        rationale=(rationale or "").strip() or None), source="page", now_ms=now_ms)


def propose(store: ReviewStore, reviewer: Reviewer, proposal: ProposedCriterion, *, now_ms: int) -> None:
    """Add a failure mode; its name must be new and usable as a judge criterion."""
    if not _NAME.match(proposal.name):
        raise InvalidInputError(f"Criterion name '{proposal.name}' must be snake_case: a lowercase letter, then "
                                "lowercase letters, digits or _ (2-63 characters), e.g. 'wrong_refund_amount'.")
    if proposal.kind == "graded":
        low, high = proposal.scale_min, proposal.scale_max
        if low is None or high is None or not low < high:
            raise InvalidInputError("A graded criterion needs a scale with minimum below maximum, e.g. 1 to 5.")
    if any(c.name == proposal.name for c in store.criteria()):
        raise ConflictError(f"Criterion '{proposal.name}' already exists; pick it from the list, or choose "
                            "another name for a different failure mode.")
    store.add_criterion(proposal, by=reviewer.name, now_ms=now_ms)


def check_value(info: CriterionInfo, value: str) -> str:
    """The answer as a label value: pass/fail for binary criteria, a number within a graded scale."""
    text = value.strip().lower()
    if info.kind == "binary":
        if text not in ("pass", "fail"):
            raise InvalidInputError(f"'{value}' is not an answer for '{info.name}': use pass, fail or skip.")
        return text
    try:
        number = float(text)
    except ValueError:
        raise InvalidInputError(f"'{value}' is not a number; '{info.name}' is graded "
                                f"{info.scale_min:g}-{info.scale_max:g}.") from None
    if info.scale_min is not None and info.scale_max is not None and not info.scale_min <= number <= info.scale_max:
        raise InvalidInputError(f"{number:g} is outside the scale of '{info.name}' "
                                f"({info.scale_min:g}-{info.scale_max:g}).")
    return f"{number:g}"


class Progress(BaseModel):
    """Where a criterion stands against the seed's target and what calibration says is needed."""

    criterion: str
    labelled: int
    fails: int
    passes: int
    graded: int
    by_reviewer: dict[str, int]
    seed_target: tuple[int, int] = SEED_TARGET
    seed_status: str = Field(description="In words: below / within / past the 10-20 examples per failure mode.")


def seed_status(fails: int) -> str:
    """The seed counts labelled *examples of the failure mode*, i.e. fails."""
    low, high = SEED_TARGET
    if fails < low:
        return f"{fails} failing examples: {low - fails} more to reach the seed's {low}-{high} per failure mode"
    if fails <= high:
        return f"{fails} failing examples: within the seed's {low}-{high} per failure mode"
    return f"{fails} failing examples: past the seed's {low}-{high}; label for calibration now"
