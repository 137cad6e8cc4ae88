"""What each page shows, computed from the store (blocking; the routes run these on a worker thread).

Judges' verdicts are only put in front of a reviewer for traces they have already answered, so a
judge never anchors the person: the item page shows them once the reviewer's own label exists,
and the next page opens with "Recorded: fail … grounded said pass (disagrees with you)".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from server.storage.backend import Backend
from tools import clock
from tools.calibration import agreement as cal
from tools.errors import NotFoundError, TracesieveError
from tools.labels import annotation_queue as aq
from tools.labels import review
from tools.labels.review import CriterionInfo, Reviewer
from tools.labels.review_view import review_trace, revealable
from tools.privacy.redaction import Redactor

#: A fresh queue is drawn this big (plus the reviewer's skips, which stay in later draws).
QUEUE_SIZE = 50
#: Bootstrap resamples for the progress page: enough for a ±0.01-stable interval, fast to draw.
PROGRESS_RESAMPLES = 500


def item_href(criterion: str, trace_id: str, **extra: str) -> str:
    return "/label/item?" + urlencode({"criterion": criterion, "trace": trace_id, **extra})


class LabelPages:
    """The page data over one store: its traces, the page's review store, the queue, calibration."""

    def __init__(self, backend: Backend) -> None:
        features = backend.require_features("The labelling page", "review", "queue")
        self.store = backend.traces
        self.reviews = features.review
        self.queue = features.queue
        #: None on an engine without calibration yet: the progress page then says so per judge
        self.calibration = features.calibration
        self.holds = review.Holds()

    def criterion(self, name: str) -> CriterionInfo:
        known = self.reviews.criteria()
        for info in known:
            if info.name == name:
                return info
        listing = ", ".join(c.name for c in known[:10]) or "none yet"
        raise NotFoundError(f"No criterion '{name}'. Criteria: {listing}. Propose a new one from the criteria page.")

    def index(self) -> dict[str, Any]:
        return {"criteria": self.reviews.criteria(), "target": review.SEED_TARGET}

    def next_trace(self, criterion: str, reviewer: Reviewer) -> str | None:
        """The first unanswered item of the latest queue not held by someone else (then held for this
        reviewer); draw a new queue when it is used up."""
        self.criterion(criterion)
        held = self.holds.held_by_others(criterion, reviewer.name)
        found = self.reviews.next_in_queue(criterion, reviewer.name, exclude=held)
        if found is None:
            limit = min(200, QUEUE_SIZE + self.reviews.skipped(reviewer.name, criterion) + len(held))
            aq.annotation_queue(self.queue, aq.AnnotationQueueInput(criterion=criterion, limit=limit),
                                now_ms=clock.now_ms())
            found = self.reviews.next_in_queue(criterion, reviewer.name, exclude=held)
        if found is not None:
            self.holds.hold(criterion, found, reviewer.name)
        return found

    def _verdicts(self, info: CriterionInfo, trace_id: str, label_value: str | None) -> list[dict[str, Any]]:
        rows = self.reviews.judge_verdicts(trace_id, info.judges)
        redactor = Redactor()  # an LLM judge's rationale may quote the trace's personal data
        for row in rows:
            known = row["verdict"] in ("pass", "fail") and label_value in ("pass", "fail")
            row["agrees"] = (row["verdict"] == label_value) if known else None
            row["rationale"] = redactor.text(row["rationale"]) if row["rationale"] else None
        return rows

    def feedback(self, info: CriterionInfo, trace_id: str | None, reviewer: Reviewer) -> dict[str, Any] | None:
        """The reviewer's answer on the previous trace and, now that they answered, the judges' verdicts."""
        if not trace_id:
            return None
        label = self.reviews.current_label(trace_id, info.name)
        if label is None or label.reviewer != reviewer.name:
            return None
        if label.rationale:
            label = label.model_copy(update={"rationale": Redactor().text(label.rationale)})
        return {"trace_id": trace_id, "label": label, "href": item_href(info.name, trace_id),
                "verdicts": self._verdicts(info, trace_id, label.value)}

    def item(self, criterion: str, trace_id: str, reviewer: Reviewer, *, after: str | None = None,
             reveal: str | None = None) -> dict[str, Any]:
        info = self.criterion(criterion)
        current = self.reviews.current_label(trace_id, criterion)
        answered = current is not None and (current.reviewer == reviewer.name or reviewer.role == "lead")
        digits = None
        if info.kind == "graded" and info.scale_min is not None and info.scale_max is not None:
            low, high = info.scale_min, info.scale_max
            if low.is_integer() and high.is_integer() and 0 <= low and high <= 9:
                digits = list(range(int(low), int(high) + 1))
        return {
            "criterion": info, "trace": review_trace(self.store, trace_id, reveal=reveal), "current": current,
            "answered": answered, "digits": digits,
            "judges_here": self._verdicts(info, trace_id, current.value if current else None) if answered else [],
            "queue": self._queue_entry(trace_id, criterion),
            "feedback": self.feedback(info, after, reviewer),
        }

    def _queue_entry(self, trace_id: str, criterion: str) -> dict[str, Any] | None:
        """Why the queue picked the trace; reasons quote error messages and the user's next request."""
        entry = self.reviews.queue_entry(trace_id, criterion)
        if entry is not None:
            redactor = Redactor()
            entry["reasons"] = [{**r, "text": redactor.text(r.get("text") or "")} for r in entry["reasons"]]
        return entry

    def check_reveal(self, trace_id: str, field: str) -> None:
        fields = revealable(review_trace(self.store, trace_id))
        if field not in fields:
            raise NotFoundError(f"Trace '{trace_id}' has no field '{field}' to reveal. Fields: {', '.join(fields[:10])}.")

    def progress(self, criterion: str) -> dict[str, Any]:
        info = self.criterion(criterion)
        counts = self.reviews.criterion_counts(criterion)
        count = counts[0] if counts else None
        fails = count.fails if count else 0
        progress = review.Progress(
            criterion=criterion, labelled=count.labelled_traces if count else 0, fails=fails,
            passes=count.passes if count else 0, graded=count.graded if count else 0,
            by_reviewer=self.reviews.labels_by_reviewer(criterion), seed_status=review.seed_status(fails))
        return {"criterion": info, "progress": progress, "judges": [self._judge(j, criterion) for j in info.judges]}

    def _judge(self, judge: str, criterion: str) -> dict[str, Any]:
        if self.calibration is None:
            return {"judge": judge, "error": "calibration is not available on this store yet"}
        try:
            report = cal.calibration_report(self.calibration, cal.CalibrationReportInput(
                judge=judge, criterion=criterion, resamples=PROGRESS_RESAMPLES, window="none", max_disagreements=5),
                now_ms=clock.now_ms(), record=False)
        except TracesieveError as error:
            return {"judge": judge, "error": str(error)}
        mcc = report.metrics["mcc"]
        return {
            "judge": judge, "error": None, "n": report.n, "verdict": report.verdict,
            "verdict_reason": report.verdict_reason,
            "mcc": "—" if mcc.value is None else f"{mcc.value:.2f}",
            "mcc_ci": None if mcc.low is None or mcc.high is None else f"{mcc.low:.2f} to {mcc.high:.2f}",
            "needed": report.labels_for_mcc_pm_0_1, "disagreements": [_redacted(d) for d in report.disagreements],
            "disagreements_total": report.disagreements_total,
        }


def _redacted(d: cal.Disagreement) -> cal.Disagreement:
    """Both rationales of a disagreement, redacted like the trace they talk about."""
    redactor = Redactor()
    return d.model_copy(update={"judge_rationale": redactor.text(d.judge_rationale or "") or None,
                                "human_rationale": redactor.text(d.human_rationale or "") or None})
