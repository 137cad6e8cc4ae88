"""The immutable, fully validated tree a filter string parses to.

Stores compile this tree (DuckDB to parameterised SQL; other stores their own way), so by the
time a node exists its field is resolved, its operator is allowed for the field's kind and its
value is coerced: ISO dates are epoch ms, enum values canonical, score verdicts lower-case.
Only ``RelativeTime`` is left for the store, because "now" is the store's call time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from tools.filters.fields import FieldSpec, ResolvedField

__all__ = ["And", "Comparison", "Expr", "Not", "Or", "OrderKey", "RelativeTime", "Scalar",
           "SpanExists", "Value", "walk"]

#: Milliseconds per unit accepted in ``now() - 7d``.
TIME_UNITS: dict[str, int] = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
                              "w": 604_800_000}
UNIT_WORDS: dict[str, str] = {"ms": "millisecond", "s": "second", "m": "minute", "h": "hour",
                              "d": "day", "w": "week"}


@dataclass(frozen=True)
class RelativeTime:
    """``now() - 7d``: resolved against the store's clock when the filter runs, not when parsed."""

    amount: int | float = 0
    unit: str = "ms"
    sign: int = -1

    @property
    def offset_ms(self) -> int:
        return self.sign * round(self.amount * TIME_UNITS[self.unit])

    def resolve(self, now_ms: int) -> int:
        return now_ms + self.offset_ms

    def __str__(self) -> str:
        if not self.amount:
            return "now()"
        return f"now() {'-' if self.sign < 0 else '+'} {self.amount}{self.unit}"


Scalar = Union[str, int, float, RelativeTime]
#: A single value, a tuple for IN / NOT IN, or None for IS [NOT] NULL.
Value = Union[Scalar, tuple[Scalar, ...], None]


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``position`` is where the field starts in the filter text."""

    field: ResolvedField
    op: str
    value: Value
    position: int = 0


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr
    position: int = 0


@dataclass(frozen=True)
class SpanExists:
    """"One span satisfies ``item``": ``item`` is made only of span comparisons, And and Or.

    The parser wraps every span comparison in exactly one of these, choosing the largest group
    that contains no NOT, so ``span.type = 'TOOL' AND span.status = 'ERROR'`` asks for one span
    that is both. ``Not(SpanExists(x))`` therefore means "no span satisfies x".
    """

    item: Expr


Expr = Union[Comparison, And, Or, Not, SpanExists]


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` entry; stores append ``trace_id`` ascending to make the order total."""

    field: FieldSpec
    descending: bool = True

    def __str__(self) -> str:
        return f"{self.field.name} {'DESC' if self.descending else 'ASC'}"


def walk(expr: Expr | None):
    """Yield every node of the tree, parents first."""
    if expr is None:
        return
    yield expr
    if isinstance(expr, (And, Or)):
        for item in expr.items:
            yield from walk(item)
    elif isinstance(expr, (Not, SpanExists)):
        yield from walk(expr.item)
