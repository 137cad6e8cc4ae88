"""Parse and validate filter strings into the AST in ``tools.filters.nodes``; explain them in English.

Grammar (precedence NOT > AND > OR; keywords case-insensitive)::

    filter     := or_expr?                       empty or blank -> None (match all)
    or_expr    := and_expr (OR and_expr)*
    and_expr   := not_expr (AND not_expr)*
    not_expr   := NOT not_expr | '(' or_expr ')' | comparison
    comparison := field ( cmp value | [NOT] IN '(' value (',' value)* ')'
                        | [NOT] LIKE value | [NOT] ILIKE value | RLIKE value | CONTAINS value
                        | IS [NOT] NULL )
    cmp        := = | == | != | <> | < | <= | > | >=
    value      := 'text' | "text" | [-]number | TRUE | FALSE | now() [(-|+) 7d]

Everything is checked here, before any I/O, and every error is a ``FilterError`` that names
the problem, shows a caret under it, and says how to fix it.
"""

from __future__ import annotations

import difflib

from tools.filters import fields as F
from tools.errors import FilterError
from tools.filters.fields import FieldSpec, Kind, ResolvedField
from tools.filters.nodes import (TIME_UNITS, And, Comparison, Expr, Not, Or, OrderKey, RelativeTime,
                              Scalar, SpanExists, Value)
from tools.filters.explain import explain
from tools.filters.lexer import Token, TokenType, filter_error, tokenize
from tools.filters.values import Lit, coerce

__all__ = ["DEFAULT_ORDER", "explain", "parse", "parse_order_by"]

DEFAULT_ORDER: tuple[OrderKey, ...] = (OrderKey(F.BY_NAME["attributes.timestamp_ms"], True),)
_MAX_LISTED = 10


def parse(text: str) -> Expr | None:
    """Parse ``text``; None means "match all" (empty or whitespace). Raises FilterError."""
    if not text or not text.strip():
        return None
    return _group_spans(_Parser(text).parse())


def parse_order_by(items: list[str] | None) -> list[OrderKey]:
    """MLflow-style ``["attributes.timestamp_ms DESC"]``; empty -> newest first. Raises FilterError."""
    keys: list[OrderKey] = []
    for item in items or []:
        toks = tokenize(item)
        head = toks[0]
        if head.type is not TokenType.IDENT:
            raise filter_error(item, f"Expected a field name at position {head.pos}; got {head.shown()}.",
                               head.pos, max(1, len(head.text)), _sortable_hint())
        found = F.lookup(list(head.value))
        if not isinstance(found, ResolvedField):
            guess = _closest(list(head.value), sortable_only=True)
            raise filter_error(item, f"Unknown sort field '{head.text}' at position {head.pos}."
                               + (f" Did you mean '{guess}'?" if guess else ""),
                               head.pos, len(head.text), _sortable_hint())
        if not found.spec.sortable:
            raise filter_error(item, f"Cannot sort by '{found.name}'.", head.pos, len(head.text),
                               _sortable_hint())
        desc, nxt = False, toks[1]
        if nxt.type is TokenType.KEYWORD and nxt.value in ("ASC", "DESC"):
            desc, nxt = nxt.value == "DESC", toks[2]
        if nxt.type is not TokenType.EOF:
            raise filter_error(item, f"Expected ASC or DESC after '{head.text}' at position {nxt.pos}; "
                               f"got {nxt.shown()}.", nxt.pos, len(nxt.text))
        if any(k.field is found.spec for k in keys):
            raise filter_error(item, f"'{found.name}' appears twice in order_by.", head.pos,
                               len(head.text), "Give each field once.")
        keys.append(OrderKey(found.spec, desc))
    return keys or list(DEFAULT_ORDER)


def _sortable_hint() -> str:
    return "Sortable fields: " + ", ".join(sorted(f.name for f in F.FIELDS if f.sortable)) + "."


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def kw(self, *words: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.type is TokenType.KEYWORD and tok.value in words

    def fail(self, reason: str, tok: Token | int, length: int | None = None, hint: str = "") -> FilterError:
        pos = tok if isinstance(tok, int) else tok.pos
        width = length if length is not None else (1 if isinstance(tok, int) else max(1, len(tok.text)))
        return filter_error(self.text, reason, pos, width, hint)

    # --- boolean structure ---

    def parse(self) -> Expr:
        expr = self.or_expr(None)
        tok = self.peek()
        if tok.type is TokenType.RPAREN:
            raise self.fail(f"Unmatched ')' at position {tok.pos}.", tok, hint="Remove it, or add the '(' it closes.")
        if tok.type is not TokenType.EOF:
            raise self.fail(f"Expected AND, OR or the end of the filter at position {tok.pos}; got {tok.shown()}.", tok)
        return expr

    def or_expr(self, after: Token | None) -> Expr:
        items = [self.and_expr(after)]
        while self.kw("OR"):
            items.append(self.and_expr(self.take()))
        return _flat(Or, items)

    def and_expr(self, after: Token | None) -> Expr:
        items = [self.not_expr(after)]
        while self.kw("AND"):
            items.append(self.not_expr(self.take()))
        return _flat(And, items)

    def not_expr(self, after: Token | None) -> Expr:
        if self.kw("NOT"):
            tok = self.take()
            return Not(self.not_expr(tok), tok.pos)
        tok = self.peek()
        if tok.type is TokenType.LPAREN:
            self.take()
            inner = self.or_expr(tok)
            close = self.peek()
            if close.type is TokenType.RPAREN:
                self.take()
                return inner
            if close.type is TokenType.EOF:
                raise self.fail(f"Unclosed '(' at position {tok.pos}.", tok, hint="Add ')' to close it.")
            raise self.fail(f"Expected AND, OR or ')' at position {close.pos}; got {close.shown()}.", close)
        if tok.type is TokenType.IDENT:
            return self.comparison()
        if tok.type is TokenType.EOF and after is not None:
            raise self.fail(f"Nothing follows '{after.text.upper()}' at position {after.pos}.", after,
                            hint="Add a condition after it, or remove it.")
        where = f" after '{after.text.upper()}'" if after is not None else ""
        raise self.fail(f"Expected a condition{where} at position {tok.pos}; got {tok.shown()}.", tok,
                        hint="Conditions look like attributes.status = 'OK'.")

    # --- one comparison ---

    def comparison(self) -> Comparison:
        name = self.take()
        field = self.resolve(name)
        op_tok = self.peek()
        op = self.operator(field, name)
        width = self.peek(-1).end - op_tok.pos
        if op not in field.spec.operators:
            raise self.fail(f"Operator '{op}' does not apply to {F.KIND_WORDS[field.kind]} field "
                            f"'{field.name}'. Use {_or_list(field.spec.suggested_operators)}.", op_tok, width)
        operand = F.OPERATORS[op].operand
        if operand == "none":
            value: Value = None
        elif operand == "list":
            value = self.in_list(field, op, op_tok)
        else:
            value = coerce(self.fail, field, op, self.literal(field, op_tok))
        return Comparison(field, op, value, name.pos)

    def resolve(self, tok: Token) -> ResolvedField:
        found = F.lookup(list(tok.value))
        if isinstance(found, ResolvedField):
            return found
        if isinstance(found, FieldSpec):
            raise self.fail(f"Field '{tok.text}' at position {tok.pos} needs a key: {found.name}, "
                            f"e.g. {found.example.split(' ')[0]}.", tok)
        guess = _closest(list(tok.value))
        raise self.fail(f"Unknown field '{tok.text}' at position {tok.pos}."
                        + (f" Did you mean '{guess}'?" if guess else ""), tok, hint=_fields_hint(tok.text))

    def operator(self, field: ResolvedField, name: Token) -> str:
        tok = self.take()
        if tok.type is TokenType.OP:
            return str(tok.value)
        if tok.type is TokenType.KEYWORD and tok.value in ("IN", "LIKE", "ILIKE", "RLIKE", "CONTAINS"):
            return str(tok.value)
        if tok.type is TokenType.KEYWORD and tok.value == "NOT":
            if self.kw("IN", "LIKE", "ILIKE"):
                return f"NOT {self.take().value}"
            nxt = self.peek()
            raise self.fail(f"Expected IN, LIKE or ILIKE after NOT at position {nxt.pos}; got {nxt.shown()}.", nxt)
        if tok.type is TokenType.KEYWORD and tok.value == "IS":
            negated = self.kw("NOT")
            if negated:
                self.take()
            if self.kw("NULL"):
                self.take()
                return "IS NOT NULL" if negated else "IS NULL"
            nxt = self.peek()
            raise self.fail(f"Expected NULL or NOT NULL after IS at position {nxt.pos}; got {nxt.shown()}.", nxt,
                            hint="Use = to compare with a value.")
        use = f"Use {_or_list(field.spec.suggested_operators)}."
        if tok.type is TokenType.EOF:
            raise self.fail(f"Expected an operator after '{name.text}', but the filter ends.", tok, hint=use)
        if tok.pos == name.end and tok.type in (TokenType.MINUS, TokenType.NUMBER, TokenType.DURATION):
            use = "Keys with '-' or other special characters go in backticks, e.g. tags.`eval-candidate`."
        raise self.fail(f"Expected an operator after '{name.text}' at position {tok.pos}; got {tok.shown()}.",
                        tok, hint=use)

    def in_list(self, field: ResolvedField, op: str, op_tok: Token) -> tuple[Scalar, ...]:
        opening = self.take()
        if opening.type is not TokenType.LPAREN:
            raise self.fail(f"Expected '(' after {op} at position {opening.pos}; got {opening.shown()}.", opening,
                            hint=f"Write lists as {op} ('a', 'b').")
        if self.peek().type is TokenType.RPAREN:
            raise self.fail(f"Empty list after {op} at position {opening.pos}.", opening, 2,
                            hint="Give at least one value, e.g. IN ('a', 'b').")
        lits = [self.literal(field, op_tok)]
        while True:
            tok = self.take()
            if tok.type is TokenType.RPAREN:
                break
            if tok.type is TokenType.EOF:
                raise self.fail(f"Unclosed '(' at position {opening.pos}.", opening, hint="Add ')' to close the list.")
            if tok.type is not TokenType.COMMA:
                raise self.fail(f"Expected ',' or ')' in the {op} list at position {tok.pos}; got {tok.shown()}.", tok)
            lits.append(self.literal(field, op_tok))
        values = tuple(coerce(self.fail, field, op, lit) for lit in lits)
        if field.kind in (Kind.JSON_KEY, Kind.SCORE):
            first = isinstance(values[0], str)
            for lit, v in zip(lits, values):
                if isinstance(v, str) != first:
                    raise self.fail(f"The {op} list for '{field.name}' mixes text and numbers.", lit.pos,
                                    len(lit.text), "Use only text or only numbers.")
        return values

    def literal(self, field: ResolvedField, op_tok: Token) -> Lit:
        tok = self.take()
        t = tok.type
        if t is TokenType.STRING:
            return Lit("str", tok.value, tok.pos, tok.text)
        if t is TokenType.NUMBER:
            return Lit("num", tok.value, tok.pos, tok.text)
        if t is TokenType.MINUS and self.peek().type is TokenType.NUMBER:
            num = self.take()
            return Lit("num", -num.value, tok.pos, self.text[tok.pos:num.end])  # type: ignore[operator]
        if t is TokenType.KEYWORD and tok.value in ("TRUE", "FALSE"):
            return Lit("bool", tok.value == "TRUE", tok.pos, str(tok.value))
        if t is TokenType.IDENT and tok.text.lower() == "now":
            return self.relative_time(tok)
        if t is TokenType.DURATION:
            raise self.fail(f"{tok.shown()} at position {tok.pos} is a duration, not a value.", tok,
                            hint=f"For a relative time write now() - {tok.text}.")
        if t is TokenType.IDENT:
            raise self.fail(f"Unquoted text {tok.shown()} at position {tok.pos}.", tok,
                            hint=f"Quote it: {field.name} {op_tok.text} '{tok.text}'.")
        if t is TokenType.EOF:
            raise self.fail(f"Missing value after '{op_tok.text}' at position {op_tok.pos}.", op_tok,
                            hint=f"Example: {field.spec.example}.")
        raise self.fail(f"Expected a value after '{op_tok.text}' at position {tok.pos}; got {tok.shown()}.", tok,
                        hint=f"Example: {field.spec.example}.")

    def relative_time(self, now: Token) -> Lit:
        if not (self.peek().type is TokenType.LPAREN and self.peek(1).type is TokenType.RPAREN):
            raise self.fail(f"Expected now() at position {now.pos}.", now,
                            hint="Relative times look like now() - 7d.")
        self.i += 2
        sign_tok = self.peek()
        if sign_tok.type not in (TokenType.MINUS, TokenType.PLUS):
            return Lit("now", RelativeTime(), now.pos, self.text[now.pos:sign_tok.pos].strip())
        self.take()
        dur = self.take()
        units = ", ".join(TIME_UNITS)
        if dur.type is TokenType.NUMBER:
            raise self.fail(f"Missing time unit after {dur.shown()} at position {dur.pos}.", dur,
                            hint=f"Add one of {units}, e.g. now() - {dur.text}d.")
        if dur.type is not TokenType.DURATION:
            raise self.fail(f"Expected a duration like 7d after '{sign_tok.text}' at position {dur.pos}; "
                            f"got {dur.shown()}.", dur, hint=f"Units: {units}.")
        amount, unit = dur.value  # type: ignore[misc]
        if unit not in TIME_UNITS:
            raise self.fail(f"Unknown time unit '{unit}' in {dur.shown()} at position {dur.pos}.", dur,
                            hint=f"Use one of {units}, e.g. now() - 7d.")
        rel = RelativeTime(amount, unit, -1 if sign_tok.type is TokenType.MINUS else 1)
        return Lit("now", rel, now.pos, self.text[now.pos:dur.end])


# ---------------------------------------------------------------------------------------------
# Helpers


def _flat(cls: type, items: list[Expr]) -> Expr:
    """Build And/Or, splicing in children of the same class: a AND (b AND c) == a AND b AND c."""
    if len(items) == 1:
        return items[0]
    out: list[Expr] = []
    for item in items:
        out.extend(item.items if isinstance(item, cls) else (item,))  # type: ignore[attr-defined]
    return cls(tuple(out))


def _span_only(e: Expr) -> bool:
    if isinstance(e, Comparison):
        return e.field.is_span
    return isinstance(e, (And, Or)) and all(_span_only(i) for i in e.items)


def _group_spans(e: Expr) -> Expr:
    """Wrap each maximal NOT-free group of span comparisons in one SpanExists.

    In an AND or OR that mixes span and trace conditions, the span children are gathered into one
    group (placed where the first one was), so all span conditions of one AND refer to one span.
    """
    if _span_only(e):
        return SpanExists(e)
    if isinstance(e, Not):
        return Not(_group_spans(e.item), e.position)
    if isinstance(e, (And, Or)):
        spans = [i for i in e.items if _span_only(i)]
        out: list[Expr] = []
        for item in e.items:
            if not _span_only(item):
                out.append(_group_spans(item))
            elif item is spans[0]:
                out.append(SpanExists(_flat(type(e), spans)))
        return type(e)(tuple(out)) if len(out) > 1 else out[0]
    return e


def _or_list(items: tuple[str, ...] | list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _candidates(segments: list[str], sortable_only: bool = False) -> dict[str, str]:
    """Lower-cased spelling -> canonical name, with the user's key substituted for keyed fields."""
    out: dict[str, str] = {}
    for spelled, (spec, needs_key) in F.SPELLINGS.items():
        if sortable_only and not spec.sortable:
            continue
        if not needs_key:
            out[spelled] = spec.name
            continue
        k = spelled.count(".") + 1
        if len(segments) > k:
            key = ".".join(segments[k:])
            out[f"{spelled}.{key}".lower()] = ResolvedField(spec, key).name
    return out


def _closest(segments: list[str], sortable_only: bool = False) -> str | None:
    cands = _candidates(segments, sortable_only)
    hit = difflib.get_close_matches(".".join(segments).lower(), list(cands), n=1, cutoff=0.7)
    return cands[hit[0]] if hit else None


def _fields_hint(typed: str) -> str:
    """The 10 canonical fields nearest to what was typed, sorted, plus how many were left out."""
    names = F.field_names()
    typed = typed.lower()

    def score(name: str) -> float:
        return max(difflib.SequenceMatcher(None, typed, name.lower()).ratio(),
                   difflib.SequenceMatcher(None, typed.rsplit(".", 1)[-1], name.rsplit(".", 1)[-1]).ratio())

    near = sorted(sorted(names, key=lambda n: (-score(n), n))[:_MAX_LISTED])
    more = len(names) - len(near)
    return "Fields: " + ", ".join(near) + (f" (and {more} more)." if more else ".")
