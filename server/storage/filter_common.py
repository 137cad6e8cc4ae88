"""What compiling a filter means, whatever the SQL dialect: shared by every engine's ``filter_sql``.

Each engine spells SQL its own way (parameters, JSON access, list functions), but the meaning of a
filter must not depend on the engine: a synonym of a span type, whether a literal compares as a
number, where NULL sort values go in keyset paging. Those decisions live here once, so a change to
the filter language lands in every engine at the same time.
"""

from __future__ import annotations

from typing import Any

import json
from dataclasses import dataclass

from server.ingestion.assemble import verdict_and_score
from tools.filters.fields import Family, Kind
from tools.filters.nodes import Comparison, OrderKey
from tools.models import SESSION_LABEL_SOURCE, SESSION_SCORE_RUN_ID
from tools.span_types import canonical_span_type, stored_names

__all__ = ["BIG", "DECLARED_TYPE_KEYS", "EXPECTATION_PREFIX", "NEGATED", "SESSION_LABEL_SOURCE",
           "SESSION_SCORE_RUN_ID", "SET_OPS", "TEXT_MAX", "AssessmentTest", "assessment_test",
           "is_numeric_literal", "null_sentinel", "sorts_as_number", "span_type_split"]

# Keyset sorting: NULL sort values are replaced by a sentinel at the far end of the order, so
# NULLs sort last in both directions and "strictly after" stays a plain comparison.
BIG = 9223372036854775807
#: The largest code point: sorts after every real string (binary / UTF-8 byte order alike).
TEXT_MAX = chr(0x10FFFF)
#: Equality on span.type becomes set membership over the type's stored names.
SET_OPS = {"=": "IN", "IN": "IN", "!=": "NOT IN", "NOT IN": "NOT IN"}
#: Negated operators and their positive form: a negated test on span type or an assessment is the
#: complement of the positive one over the rows that exist.
NEGATED = {"!=": "=", "NOT IN": "IN", "NOT LIKE": "LIKE", "NOT ILIKE": "ILIKE"}
#: Span attributes that hold the type a source declared in its own words (MLflow custom types such
#: as 'MY_CUSTOM' are kept there; the ``span_type`` column holds only canonical names).
DECLARED_TYPE_KEYS = ("mlflow.spanType", "openinference.span.kind")
#: Expectations are stored as labels on criterion ``expectation:<name>`` (``ingestion.mlflow_json``).
EXPECTATION_PREFIX = "expectation:"


def is_numeric_literal(value: Any) -> bool:
    """Whether a comparison's value (or the first of an IN list) is a number, so a JSON value is
    compared as one rather than as text."""
    first = value[0] if isinstance(value, tuple) else value
    return isinstance(first, (int, float)) and not isinstance(first, bool)


def sorts_as_number(key: OrderKey) -> bool:
    return key.field.kind in (Kind.NUMBER, Kind.TIMESTAMP)


def null_sentinel(key: OrderKey) -> int | str:
    """The value NULL sorts as, at the end of ``key``'s order in either direction."""
    if sorts_as_number(key):
        return -BIG if key.descending else BIG
    return "" if key.descending else TEXT_MAX


def span_type_split(c: Comparison) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """For a ``span.type`` test by value (=, !=, IN, NOT IN, LIKE, ILIKE, RLIKE and negations):
    ``(stored names, declared names)``. Canonical values become every ``span_type`` a store may hold
    for them; any other value is a custom type, matched on the declared type (``DECLARED_TYPE_KEYS``).
    For patterns both tuples hold the pattern: it may match the canonical or the declared name.
    None for any other comparison."""
    if c.field.spec.name != "span.type" or c.value is None:
        return None
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    if NEGATED.get(c.op, c.op) in ("LIKE", "ILIKE", "RLIKE"):
        return tuple(str(v) for v in values), tuple(str(v) for v in values)
    canonical = tuple(dict.fromkeys(n for v in values if canonical_span_type(str(v)) for n in stored_names(str(v))))
    custom = tuple(str(v) for v in values if canonical_span_type(str(v)) is None)
    return canonical, custom


@dataclass(frozen=True)
class AssessmentTest:
    """What a ``feedback.<name>`` / ``expectation.<name>`` comparison asks of the current assessment.

    ``column`` is which of the assessment's values is compared: ``text`` (as stored), ``verdict``
    (pass/fail, for the yes/true/pass words), ``num`` (numeric) or None for IS [NOT] NULL (any
    current assessment). ``values`` are the literals to compare; ``negate`` turns the positive test
    (``op``, never negated) into its complement over assessments that exist.
    """

    key: str                 # the label criterion / judge name
    scores_too: bool         # feedback reads judge scores as well as human labels
    op: str
    column: str | None
    values: tuple[object, ...]
    negate: bool


def assessment_test(c: Comparison) -> AssessmentTest:
    """MLflow's rules for assessment filters, as tracesieve stores assessments (README "Assessment filters").

    The current assessment is the newest label per (trace, criterion) and the newest score per (trace,
    judge): an override (a correction) is a new row. Feedback is a human label or a judge score of
    that name; an expectation is the ``expectation:<name>`` label holding the JSON value. Equality
    with a yes/no word compares the verdict (MLflow's True, 'yes' and 'pass' are one verdict here);
    with other text, the text as stored or its JSON form; with a number, the numeric value.
    """
    feedback = c.field.family is Family.FEEDBACK
    key = str(c.field.key) if feedback else EXPECTATION_PREFIX + str(c.field.key)
    op = NEGATED.get(c.op, c.op)
    negate = op != c.op
    if c.value is None:
        return AssessmentTest(key, feedback, op, None, (), False)
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    if op in ("<", "<=", ">", ">=") or is_numeric_literal(c.value):
        return AssessmentTest(key, feedback, op, "num", tuple(float(v) for v in values), negate)  # type: ignore[arg-type]
    if op in ("=", "IN"):
        verdicts = [verdict_and_score(str(v))[0] for v in values]
        if feedback and all(v != "unknown" for v in verdicts):
            return AssessmentTest(key, feedback, op, "verdict", tuple(verdicts), negate)
        texts = tuple(dict.fromkeys(x for v in values for x in (str(v), json.dumps(str(v), ensure_ascii=False))))
        return AssessmentTest(key, feedback, "IN", "text", texts, negate)
    return AssessmentTest(key, feedback, op, "text", values, negate)
