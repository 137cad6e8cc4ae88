"""annotation_queue: which unlabelled traces a person should label next, and why.

The seed's Stage 2: annotate against anomalies, not random samples. Each candidate trace gets
signals computed in the store (context-window pressure, token spikes against the usual for
that operation, user re-submission, tool errors and retries, guardrail trips, latency
outliers, error status, judge disagreement); its priority is the weighted sum of their
strengths, and every item carries the reasons in words.

Selection is a two-part probability sample so labels stay usable for unbiased estimates:
the ``limit − k_random`` highest-priority candidates are taken with probability 1, and
``k_random = round(limit × random_share)`` more are drawn uniformly from all remaining
candidates, each with probability ``k_random / (N − k_top)``. Every candidate therefore has a
known, non-zero inclusion probability when ``random_share > 0``, and ``calibration_report``
reweights labels by 1/probability (Horvitz–Thompson) for population estimates. Each queue is
stored with those probabilities.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tools.filters import parser
from tools.errors import InvalidInputError
from tools.labels.labelling import Criterion
from tools.previews import preview
from tools.privacy.outputs import redact_preview

Signal = Literal["error_status", "tool_error", "tool_retry", "guardrail", "resubmission", "context_pressure",
                 "token_spike", "latency_outlier", "judge_disagreement", "judge_flagged", "judge_uncertain"]
SIGNALS: tuple[str, ...] = Signal.__args__  # type: ignore[attr-defined]
#: Priority weight of each signal (its strength is 0..1). Failures users saw or caused weigh most.
WEIGHTS: dict[str, float] = {
    "error_status": 1.0, "tool_error": 1.0, "guardrail": 0.8, "resubmission": 1.0, "judge_disagreement": 1.0,
    "context_pressure": 0.8, "token_spike": 0.7, "judge_flagged": 0.7, "judge_uncertain": 0.6, "tool_retry": 0.5,
    "latency_outlier": 0.5,
}
#: Context windows (input tokens) by model-name prefix; the longest matching prefix wins.
MODEL_CONTEXT_LIMITS: dict[str, int] = {
    "gpt-4o": 128_000, "gpt-4.1": 1_047_576, "gpt-4-turbo": 128_000, "gpt-4": 8_192, "gpt-3.5": 16_385,
    "gpt-5": 400_000, "o1": 200_000, "o3": 200_000, "o4": 200_000, "claude": 200_000, "gemini": 1_048_576,
    "llama": 128_000, "mistral": 128_000,
}
DEFAULT_CONTEXT_LIMIT = 128_000
#: Words with which users re-ask: "Let me rephrase", "Again, ...", "That didn't answer my question".
RESUBMIT_CUES = (r"rephrase|again\b|already asked|(didn't|did not|doesn't) (answer|understand|help)|to be clear"
                 r"|not what i (asked|meant)|i said|still (need|waiting|not)|hello\?\?|that's not|wrong answer")

QueueLimit = Annotated[int, Field(ge=1, le=200, description="How many traces to queue (1-200).")]
QueueFilter = Annotated[str, Field(description=(
    "Restrict candidates with a search_traces filter, e.g. \"tags.environment = 'production' AND "
    "attributes.timestamp_ms > now() - 7d\"; empty means every trace."))]
RandomShare = Annotated[float, Field(ge=0.0, le=1.0, description=(
    "Share of the queue drawn uniformly at random from the other unlabelled traces (default 0.2), so labels "
    "also support unbiased estimates; 0 gives a pure anomaly queue."))]
SignalsParam = Annotated[list[Signal] | None, Field(description=(
    "Only use these signals (default all): " + ", ".join(SIGNALS) + "."))]
Seed = Annotated[int | None, Field(description="Seed of the random share (default: from the clock); recorded "
                                               "with the queue.")]


class SignalConfig(BaseModel):
    """Thresholds the store uses to decide that a signal fires (data, so tests can tighten them)."""

    model_config = ConfigDict(frozen=True)

    context_ratio: float = Field(0.75, description="Input tokens / context window at which pressure counts.")
    spike_ratio: float = Field(3.0, description="Tokens / the operation's median at which a spike counts "
                                                "(and above its p95).")
    latency_z: float = Field(3.5, description="Robust z-score of log latency within the trace name.")
    resubmit_window_s: float = Field(90.0, description="Max seconds between the end of a trace and the user's "
                                                       "next request in the session.")
    resubmit_overlap: float = Field(0.15, description="Word-set Jaccard overlap that makes two requests similar.")
    resubmit_cues: str = RESUBMIT_CUES
    uncertain_band: float = Field(0.1, description="A judge score within this distance of 0.5 is uncertain.")
    min_baseline: int = Field(20, description="Spans/traces an operation needs before spikes/outliers are judged.")
    model_limits: dict[str, int] = Field(default_factory=lambda: dict(MODEL_CONTEXT_LIMITS))
    default_limit: int = DEFAULT_CONTEXT_LIMIT


class RawSignal(BaseModel):
    """A signal that fired on a trace: its measurement and the facts for the reason text."""

    signal: str
    value: float
    info: dict[str, Any] = Field(default_factory=dict)


class Candidate(BaseModel):
    trace_id: str
    timestamp_ms: int
    request_head: str | None = None
    signals: list[RawSignal] = Field(default_factory=list)


class Population(BaseModel):
    candidates: int = Field(description="Unlabelled traces matching the filter.")
    already_labelled: int = Field(description="Traces matching the filter that already have a label for the "
                                              "criterion (left out).")


class QueueStore(Protocol):
    """What the queue needs from the store (``server/storage/duckdb/calibration_sql.py``)."""

    def queue_population(self, criterion: str, expr: Any, now_ms: int) -> Population: ...

    def queue_signals(self, criterion: str, expr: Any, now_ms: int, config: SignalConfig,
                      signals: list[str]) -> list[Candidate]: ...

    def queue_random(self, criterion: str, expr: Any, now_ms: int, k: int, seed: int,
                     exclude: list[str]) -> list[Candidate]: ...

    def save_queue(self, queue_id: str, criterion: str, filter_text: str, population: int,
                   items: list[QueueItem], now_ms: int) -> None: ...


class Reason(BaseModel):
    signal: str
    strength: float = Field(description="0..1; times the signal's weight it adds to the priority.")
    text: str


class QueueItem(BaseModel):
    rank: int
    trace_id: str
    time: str
    priority: float = Field(description="Weighted sum of signal strengths; 0 for a random pick with no signal.")
    selected_by: Literal["anomaly", "random"]
    selection_probability: float = Field(description="Probability this trace was drawn (1 for the top anomalies; "
                                                     "k_random/(N − k_top) for random picks).")
    reasons: list[Reason]
    request_preview: str | None


class AnnotationQueueInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    criterion: Criterion
    filter: QueueFilter = ""
    limit: QueueLimit = 20
    random_share: RandomShare = 0.2
    signals: SignalsParam = None
    seed: Seed = None


class AnnotationQueueResult(BaseModel):
    queue_id: str = Field(description="Stored with each item's selection probability.")
    criterion: str
    items: list[QueueItem] = Field(description="Highest priority first; random picks after the anomalies.")
    population: int = Field(description="Unlabelled candidate traces the queue was drawn from.")
    already_labelled: int
    anomalous: int = Field(description="Candidates with at least one signal.")
    signal_counts: dict[str, int] = Field(description="Candidates on which each signal fired.")
    unbiased: bool = Field(description="True when every candidate had a non-zero chance (random_share > 0).")
    seed: int
    redacted: dict[str, int] = Field(default_factory=dict, description="PII values replaced in the request "
                                     "previews, by type (redaction runs before anyone annotates).")
    filter_explained: str
    next_step: str


def _fmt_int(value: Any) -> str:
    return f"{int(value):,}" if value is not None else "?"


def describe(sig: RawSignal) -> Reason:
    """Strength (0..1) and an English reason for one signal (the store gives the facts)."""
    i, v = sig.info, sig.value
    msg = (i.get("message") or "")[:140]
    if sig.signal == "error_status":
        return Reason(signal=sig.signal, strength=1.0, text=f"trace status ERROR{': ' + msg if msg else ''}")
    if sig.signal == "tool_error":
        return Reason(signal=sig.signal, strength=1.0,
                      text=f"tool {i.get('tool')} failed {int(v)}×{': ' + msg if msg else ''}")
    if sig.signal == "tool_retry":
        return Reason(signal=sig.signal, strength=min(1.0, (v - 1) / 2),
                      text=f"tool {i.get('tool')} called {int(v)}× (retried)")
    if sig.signal == "guardrail":
        return Reason(signal=sig.signal, strength=1.0,
                      text=f"guardrail {i.get('name')} tripped{': ' + msg if msg else ''}")
    if sig.signal == "resubmission":
        return Reason(signal=sig.signal, strength=1.0, text=(
            f"user re-submitted a similar request {v:.0f} s later ({i.get('why')}): "
            f"“{(i.get('next_text') or '')[:80]}” (trace {i.get('next_trace_id')})"))
    if sig.signal == "context_pressure":
        if i.get("exceeded"):
            return Reason(signal=sig.signal, strength=1.0, text=f"context window exceeded: {msg}")
        return Reason(signal=sig.signal, strength=min(1.0, v), text=(
            f"{i.get('span')} used {_fmt_int(i.get('tokens'))} of {_fmt_int(i.get('limit'))} input tokens "
            f"({v:.0%}) on {i.get('model')}"))
    if sig.signal == "token_spike":
        return Reason(signal=sig.signal, strength=min(1.0, math.log(max(v, 1.0)) / math.log(10)), text=(
            f"{i.get('span')}: {_fmt_int(i.get('tokens'))} {i.get('kind')} tokens vs usual "
            f"{_fmt_int(i.get('usual'))} ({v:.1f}×)"))
    if sig.signal == "latency_outlier":
        return Reason(signal=sig.signal, strength=min(1.0, v / 6), text=(
            f"{(i.get('ms') or 0) / 1000:.1f} s vs usual {(i.get('usual_ms') or 0) / 1000:.1f} s for "
            f"{i.get('name')} (robust z {v:.1f})"))
    if sig.signal == "judge_flagged":
        return Reason(signal=sig.signal, strength=1.0, text=f"flagged 'fail' by {i.get('judges')} (confirm or refute)")
    if sig.signal == "judge_uncertain":
        return Reason(signal=sig.signal, strength=1.0, text=f"judge unsure: score {i.get('judges')} near 0.5")
    if sig.signal == "judge_disagreement":
        return Reason(signal=sig.signal, strength=1.0, text=f"judges disagree: {i.get('verdicts')}")
    return Reason(signal=sig.signal, strength=min(1.0, max(0.0, v)), text=sig.signal)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _item(rank: int, c: Candidate, selected_by: str, probability: float, redacted_request: str | None) -> QueueItem:
    reasons = sorted((describe(s) for s in c.signals), key=lambda r: -WEIGHTS.get(r.signal, 0.5) * r.strength)
    priority = round(sum(WEIGHTS.get(r.signal, 0.5) * r.strength for r in reasons), 4)
    return QueueItem(rank=rank, trace_id=c.trace_id, time=_iso(c.timestamp_ms), priority=priority,
                     selected_by=selected_by,  # type: ignore[arg-type]
                     selection_probability=round(probability, 8), reasons=reasons,
                     request_preview=preview(redacted_request, chars=200, is_request=True))


def priority_of(c: Candidate) -> float:
    return sum(WEIGHTS.get(r.signal, 0.5) * r.strength for r in (describe(s) for s in c.signals))


def annotation_queue(store: QueueStore, inp: AnnotationQueueInput, *, now_ms: int,
                     config: SignalConfig | None = None, record: bool = True) -> AnnotationQueueResult:
    """Rank unlabelled traces by anomaly signals, add a uniform-random share, record the draw."""
    if inp.criterion != inp.criterion.strip():
        raise InvalidInputError(f"Criterion '{inp.criterion}' has leading/trailing spaces; remove them.")
    expr = parser.parse(inp.filter) if inp.filter.strip() else None
    config = config or SignalConfig()
    chosen = list(inp.signals or SIGNALS)
    seed = inp.seed if inp.seed is not None else now_ms % 2_147_483_647
    population = store.queue_population(inp.criterion, expr, now_ms)
    flagged = store.queue_signals(inp.criterion, expr, now_ms, config, chosen)
    ranked = sorted(flagged, key=lambda c: (-priority_of(c), -c.timestamp_ms, c.trace_id))
    n = population.candidates
    k_random = min(round(inp.limit * inp.random_share), max(0, n))
    top = ranked[:max(0, min(inp.limit - k_random, n))]
    rest = n - len(top)
    k_random = min(inp.limit - len(top), rest)  # fill with random picks when anomalies run out
    randoms = store.queue_random(inp.criterion, expr, now_ms, k_random, seed, [c.trace_id for c in top]) \
        if k_random > 0 else []
    by_id = {c.trace_id: c for c in flagged}
    p_random = k_random / rest if rest > 0 else 0.0
    picks = [by_id.get(c.trace_id, c) for c in randoms]
    picks.sort(key=lambda c: (-priority_of(c), c.trace_id))
    # Annotators see previews before anyone has checked them: PII is redacted first, counted once.
    previews = {c.trace_id: redact_preview(c.request_head) for c in [*top, *picks]}
    redacted: Counter[str] = Counter()
    for _, counts_by_type in previews.values():
        redacted.update(counts_by_type)
    items = [_item(i + 1, c, "anomaly", 1.0, previews[c.trace_id][0]) for i, c in enumerate(top)]
    items += [_item(len(items) + i + 1, c, "random", p_random, previews[c.trace_id][0]) for i, c in enumerate(picks)]
    counts = {s: 0 for s in chosen}
    for c in flagged:
        for s in {sig.signal for sig in c.signals}:
            counts[s] = counts.get(s, 0) + 1
    queue_id = f"q-{now_ms}-{uuid.uuid4().hex[:8]}"
    if record and items:
        store.save_queue(queue_id, inp.criterion, inp.filter, n, items, now_ms)
    unbiased = rest == 0 or k_random > 0
    return AnnotationQueueResult(
        queue_id=queue_id, criterion=inp.criterion, items=items, population=n,
        already_labelled=population.already_labelled, anomalous=len(flagged), signal_counts=counts,
        unbiased=unbiased, seed=seed, redacted=dict(sorted(redacted.items())), filter_explained=parser.explain(expr) if expr is not None else "all traces",
        next_step=(f"Read each trace (get_trace), then record the decision: label_trace(trace_id=..., "
                   f"criterion='{inp.criterion}', value='pass'|'fail', reviewer=..., rationale=...). Labelled "
                   "traces leave the queue; call annotation_queue again for more."))
