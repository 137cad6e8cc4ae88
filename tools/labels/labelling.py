"""label_trace / list_labels: human ground truth, append-only.

A label says what a person decided about one trace for one criterion (failure mode). Labels
are never edited or deleted: a correction is a new row, and the newest row per (trace,
criterion) is the current label while the older ones stay as history (the seed: "every label
is dated, attributed to a reviewer, and immutable").

Value normalisation (one rule for the tool, the CLI and every import):
``pass/yes/true/ok/good/1`` → ``pass``, ``fail/no/false/bad/0`` → ``fail`` (case-insensitive;
the numbers 1 and 0 also keep ``numeric_value`` 1.0 / 0.0); any other number is a graded label
kept as its text in ``value`` and as a float in ``numeric_value``. Anything else is refused.
"""

from __future__ import annotations

import difflib
import math
import re
import uuid
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tools.errors import InvalidInputError, NotFoundError

PASS_WORDS = frozenset({"pass", "passed", "yes", "y", "true", "ok", "good", "1"})
FAIL_WORDS = frozenset({"fail", "failed", "no", "n", "false", "bad", "0"})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

TraceId = Annotated[str, Field(min_length=1, max_length=500, description="The trace to label (an id from "
                                                                          "search_traces or annotation_queue).")]
Criterion = Annotated[str, Field(min_length=1, max_length=200, description=(
    "The criterion (failure mode) judged, e.g. 'citation_grounded'. Use the same name as the judge's "
    "criterion so calibration_report can pair them."))]
LabelValue = Annotated[str | float | bool, Field(description=(
    "'pass' or 'fail' (yes/no, true/false, 1/0 are accepted and stored as pass/fail), or a number for a "
    "graded label (e.g. 4 on a 1-5 scale)."))]
Reviewer = Annotated[str, Field(min_length=1, max_length=200, description=(
    "Who decided, e.g. an email or 'ana'. Labels are attributed and dated."))]
Rationale = Annotated[str | None, Field(max_length=5000, description="Why, in a sentence: shown next to the "
                                                                      "judge's rationale where they disagree.")]
CriterionFilter = Annotated[str | None, Field(description="Only labels for this criterion.")]
TraceIdsFilter = Annotated[list[str] | None, Field(max_length=1000, description="Only labels on these traces (up to 1000).")]
ReviewerFilter = Annotated[str | None, Field(description="Only labels by this reviewer.")]
IncludeHistory = Annotated[bool, Field(description="Also list superseded labels (corrections keep the old "
                                                   "rows); default only the current label per trace+criterion.")]
LabelLimit = Annotated[int, Field(ge=1, le=500, description="Max labels per page (1-500).")]
LabelPageToken = Annotated[str | None, Field(description="`next_page_token` from the previous page; omit for "
                                                         "page 1.")]


def normalise_value(raw: str | float | int | bool) -> tuple[str, float | None]:
    """``(value, numeric_value)`` under the module's rule; InvalidInputError for anything else."""
    if isinstance(raw, bool):
        return ("pass" if raw else "fail"), None
    if isinstance(raw, (int, float)):
        number = float(raw)
    else:
        text = str(raw).strip().lower()
        if text in PASS_WORDS or text in FAIL_WORDS:
            numeric = 1.0 if text == "1" else 0.0 if text == "0" else None
            return ("pass" if text in PASS_WORDS else "fail"), numeric
        try:
            number = float(text)
        except ValueError:
            raise InvalidInputError(
                f"Label value '{raw}' is neither pass/fail nor a number. Use 'pass' or 'fail' (yes/no, "
                "true/false and 1/0 are accepted too) or a number such as 4 for a graded label.") from None
    if not math.isfinite(number):
        raise InvalidInputError(f"Label value '{raw}' is not a finite number. Use a number such as 0.8, or "
                                "'pass'/'fail'.")
    if number in (0.0, 1.0):
        return ("pass" if number == 1.0 else "fail"), number
    return f"{number:g}", number


def new_label_id(created_at_ms: int) -> str:
    """Sortable by time, unique without coordination between processes or servers."""
    return f"lbl-{created_at_ms:013d}-{uuid.uuid4().hex[:12]}"


class LabelRecord(BaseModel):
    """One stored label row."""

    label_id: str
    trace_id: str
    criterion: str
    value: str = Field(description="'pass' / 'fail', or a number as text for graded labels.")
    numeric_value: float | None
    reviewer: str | None
    rationale: str | None
    created_at_ms: int
    source: str | None = Field(description="manual, cli, mcp, csv, jsonl, langfuse, mlflow, demo, …")
    current: bool = Field(True, description="True for the newest label of its trace+criterion.")
    superseded_by: str | None = Field(None, description="label_id of the newer label that corrects this one.")


class NewLabel(BaseModel):
    """A validated label ready to append (values normalised, trace known)."""

    model_config = ConfigDict(frozen=True)

    trace_id: str
    criterion: str
    value: str
    numeric_value: float | None
    reviewer: str | None
    rationale: str | None
    source: str
    created_at_ms: int | None = Field(None, description="When decided; None means now.")


class LabelPage(BaseModel):
    rows: list[LabelRecord]
    has_more: bool
    total: int


class CriterionCount(BaseModel):
    criterion: str
    labelled_traces: int = Field(description="Traces with a current label for this criterion.")
    passes: int
    fails: int
    graded: int = Field(description="Current labels that are numbers (graded), not pass/fail.")


class LabelStore(Protocol):
    """What labels need from the store (``server/storage/duckdb/labels_sql.py`` implements it)."""

    def known_trace_ids(self, trace_ids: list[str]) -> set[str]: ...

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]: ...

    def append_label(self, label: NewLabel, *, now_ms: int) -> tuple[LabelRecord, LabelRecord | None]: ...

    def append_labels(self, labels: list[NewLabel], *, now_ms: int) -> tuple[int, int]: ...

    def list_labels(self, *, criterion: str | None, trace_ids: list[str] | None, reviewer: str | None,
                    include_history: bool, limit: int, after: tuple[int, str] | None) -> LabelPage: ...

    def criterion_counts(self, criterion: str | None) -> list[CriterionCount]: ...

    def label_criteria(self) -> list[str]: ...


class LabelTraceInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trace_id: TraceId
    criterion: Criterion
    value: LabelValue
    reviewer: Reviewer
    rationale: Rationale = None


class LabelTraceResult(BaseModel):
    label: LabelRecord
    superseded: LabelRecord | None = Field(description="The label this one corrects (kept as history), if any.")
    message: str


def _clean(text: str, what: str) -> str:
    if text != text.strip() or _CONTROL.search(text):
        raise InvalidInputError(f"{what} '{text}' has leading/trailing spaces or control characters. Use a plain "
                                "name such as 'citation_grounded'.")
    return text


def unknown_trace_error(store: LabelStore, trace_id: str) -> NotFoundError:
    near = store.similar_trace_ids(trace_id, 3)
    hint = f" Did you mean {', '.join(repr(t) for t in near)}?" if near else ""
    return NotFoundError(f"No trace with id '{trace_id}'.{hint} Find ids with search_traces or annotation_queue.")


def label_trace(store: LabelStore, inp: LabelTraceInput, *, source: str, now_ms: int) -> LabelTraceResult:
    """Append one label; an existing label for the same trace+criterion stays as history."""
    _clean(inp.criterion, "Criterion")
    value, numeric = normalise_value(inp.value)
    if not store.known_trace_ids([inp.trace_id]):
        raise unknown_trace_error(store, inp.trace_id)
    new = NewLabel(trace_id=inp.trace_id, criterion=inp.criterion, value=value, numeric_value=numeric,
                   reviewer=inp.reviewer, rationale=inp.rationale, source=source)
    record, previous = store.append_label(new, now_ms=now_ms)
    if previous is None:
        message = f"Labelled {inp.trace_id} {inp.criterion}={value}."
    else:
        message = (f"Labelled {inp.trace_id} {inp.criterion}={value}; it supersedes {previous.label_id} "
                   f"({previous.value} by {previous.reviewer}), which stays in the history.")
    return LabelTraceResult(label=record, superseded=previous, message=message)


class ListLabelsInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    criterion: CriterionFilter = None
    trace_ids: TraceIdsFilter = None
    reviewer: ReviewerFilter = None
    include_history: IncludeHistory = False
    limit: LabelLimit = 50
    page_token: LabelPageToken = None


class ListLabelsResult(BaseModel):
    labels: list[LabelRecord] = Field(description="Newest first.")
    total_matches: int
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page; null when done.")
    criteria: list[CriterionCount] = Field(description="Current-label counts per criterion (within `criterion` "
                                                       "if given).")


def _encode(created_at_ms: int, label_id: str) -> str:
    return f"{created_at_ms}:{label_id}"


def _decode(token: str) -> tuple[int, str]:
    head, _, label_id = token.partition(":")
    if not head.isdigit() or not label_id:
        raise InvalidInputError("page_token is not one this server issued. Pass the `next_page_token` of the "
                                "previous result unchanged, or omit page_token to start from page 1.")
    return int(head), label_id


def check_criterion(known: list[str], criterion: str, *, what: str = "labels") -> None:
    """NotFoundError naming the closest criteria when ``criterion`` has no labels at all."""
    if criterion in known:
        return
    near = difflib.get_close_matches(criterion, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in near)}?" if near else ""
    listing = ", ".join(sorted(known)[:10]) or "none yet"
    raise NotFoundError(f"No {what} for criterion '{criterion}'.{hint} Criteria with labels: {listing}. "
                        "Add labels with label_trace or import_labels.")


def list_labels(store: LabelStore, inp: ListLabelsInput) -> ListLabelsResult:
    """Current labels (or the full history) newest first, with per-criterion counts."""
    if inp.criterion is not None:
        check_criterion(store.label_criteria(), inp.criterion)
    after = _decode(inp.page_token) if inp.page_token else None
    page = store.list_labels(criterion=inp.criterion, trace_ids=inp.trace_ids, reviewer=inp.reviewer,
                             include_history=inp.include_history, limit=inp.limit, after=after)
    token = _encode(page.rows[-1].created_at_ms, page.rows[-1].label_id) if page.has_more and page.rows else None
    return ListLabelsResult(labels=page.rows, total_matches=page.total, next_page_token=token,
                            criteria=store.criterion_counts(inp.criterion))


# -- imports -------------------------------------------------------------------------------------
class RawLabel(BaseModel):
    """One label as an import file stated it, before validation; ``where`` locates it for errors."""

    trace_id: str | None
    criterion: str | None
    value: str | float | bool | None
    reviewer: str | None = None
    rationale: str | None = None
    created_at_ms: int | None = None
    where: str = Field(description="e.g. 'labels.csv line 4'.")


class ImportLabelsResult(BaseModel):
    imported: int = Field(description="New label rows appended.")
    already_present: int = Field(description="Rows already stored: the same label at the same time, or (rows "
                                             "without a time) the current label by the same reviewer. Skipped, so "
                                             "re-importing a file is safe.")
    skipped: int = Field(description="Rows that are not pass/fail or numeric labels (e.g. MLflow expectations).")
    skipped_examples: list[str] = Field(description="Up to 10 skipped rows and why.")
    criteria: dict[str, int] = Field(description="Imported rows per criterion.")
    source: str


class ImportStore(LabelStore, Protocol):
    def existing_labels(self, trace_ids: list[str]) -> list[tuple[str, str, str, str | None, int, bool]]:
        """(trace_id, criterion, value, reviewer, created_at_ms, current) of every stored label."""
        ...


MAX_LISTED = 10


def _key(label: NewLabel, timed: bool) -> tuple:
    base = (label.trace_id, label.criterion, label.value, label.reviewer)
    return (*base, label.created_at_ms) if timed else base


def import_labels(store: ImportStore, rows: list[RawLabel], *, source: str, default_reviewer: str | None,
                  strict_values: bool, now_ms: int) -> ImportLabelsResult:
    """Validate every row first, then append all of them in one transaction (or nothing).

    ``strict_values`` (CSV/JSONL, written for tracesieve): a value that is not pass/fail or a
    number is an error. Off for Langfuse/MLflow exports, whose annotations also hold categories
    and expectations that are not calibration labels: those rows are skipped and reported.
    """
    errors: list[str] = []
    skipped: list[str] = []
    labels: list[NewLabel] = []
    timed: list[bool] = []
    for i, row in enumerate(rows):
        missing = [f for f in ("trace_id", "criterion", "value") if getattr(row, f) in (None, "")]
        if missing:
            errors.append(f"{row.where}: missing {', '.join(missing)}")
            continue
        reviewer = row.reviewer or default_reviewer
        if not reviewer:
            errors.append(f"{row.where}: no reviewer (add a reviewer column or pass a default reviewer)")
            continue
        try:
            _clean(str(row.criterion), "Criterion")
        except InvalidInputError as error:
            errors.append(f"{row.where}: {error}")
            continue
        try:
            value, numeric = normalise_value(row.value)  # type: ignore[arg-type]
        except InvalidInputError:
            problem = f"{row.where}: value '{row.value}' is neither pass/fail nor a number"
            (errors if strict_values else skipped).append(problem)
            continue
        timed.append(row.created_at_ms is not None)
        labels.append(NewLabel(trace_id=str(row.trace_id), criterion=str(row.criterion), value=value,
                               numeric_value=numeric, reviewer=reviewer, rationale=row.rationale, source=source,
                               created_at_ms=row.created_at_ms if row.created_at_ms is not None else now_ms + i))
    ids = sorted({label.trace_id for label in labels})
    known = store.known_trace_ids(ids) if ids else set()
    unknown = [t for t in ids if t not in known]
    if unknown:
        near = store.similar_trace_ids(unknown[0], 1)
        hint = f" (closest stored id to '{unknown[0]}': '{near[0]}')" if near else ""
        errors.append(f"{len(unknown)} trace id(s) are not in the store: "
                      f"{', '.join(repr(t) for t in unknown[:MAX_LISTED])}{hint}. Ingest those traces first "
                      "(tracesieve ingest FILE; a Langfuse or MLflow export carries its labels, so ingesting it "
                      "is enough)")
    if errors:
        more = f"\n(and {len(errors) - MAX_LISTED} more)" if len(errors) > MAX_LISTED else ""
        raise InvalidInputError(f"Nothing was imported: {len(errors)} problem(s) in the {source} input.\n"
                                + "\n".join(errors[:MAX_LISTED]) + more
                                + "\nFix these rows and import again; labels need trace_id, criterion, value "
                                  "('pass'/'fail' or a number) and a reviewer.")
    stored = store.existing_labels(ids) if ids else []
    existing = {row[:5] for row in stored} | {row[:4] for row in stored if row[5]}
    fresh: list[NewLabel] = []
    seen: set[tuple] = set()
    for label, has_time in zip(labels, timed):
        key = _key(label, has_time)
        if key not in existing and key not in seen:
            fresh.append(label)
        seen.add(key)
    if fresh:
        store.append_labels(fresh, now_ms=now_ms)
    per_criterion: dict[str, int] = {}
    for label in fresh:
        per_criterion[label.criterion] = per_criterion.get(label.criterion, 0) + 1
    return ImportLabelsResult(imported=len(fresh), already_present=len(labels) - len(fresh), skipped=len(skipped),
                              skipped_examples=skipped[:MAX_LISTED], criteria=per_criterion, source=source)
