"""Compile a parsed filter (``tools.filters.nodes``) to a DuckDB WHERE clause over ``traces AS t``.

Safety: every value the user wrote (strings, numbers, tag keys, JSON paths, criteria, judge
names) becomes a named parameter ``$p0, $p1, …``; column names come only from the field
registry (``tools.filters.fields``) and the constant tables below. Nothing user-written is spliced.

Semantics worth knowing (also what ``explain()`` says):

* A comparison never matches a missing value (SQL NULL, an absent tag/label/score): ``tags.x !=
  'a'`` only matches traces that have tag ``x``. ``NOT`` is a true complement: ``NOT (...)``
  compiles to ``NOT coalesce(..., FALSE)`` so it also matches the traces where the inner
  comparison was NULL.
* ``SpanExists(x)`` -> ``t.trace_id IN (SELECT DISTINCT s.trace_id FROM spans s WHERE x)``: all
  span conditions in one group hold on the same span; ``NOT`` around it is "no span". It is not
  written as a correlated ``EXISTS``: DuckDB then built its hash table on all traces and probed
  it with every matching span (160 ms at 1M traces, against 60 ms this way). A search passes
  ``window_param`` so the spans read are only those of traces inside its time window.
* Tags are read from ``traces.tags`` (a JSON copy, see ``trace_tags_sql``): a trace can only
  have tag ``k`` if the text holds the encoded ``"k":``, and only equal ``v`` if it holds
  ``"k":"v"``, so a cheap ``contains`` discards most traces before any JSON is parsed.
* Labels and scores compare the latest row per (trace, criterion) / (trace, judge).
* ``metadata.a.b`` reads the top-level key ``"a.b"`` if present, else the nested path a -> b.

Internal table aliases are ``s`` (spans), ``g`` (tags), ``l`` (labels), ``sc`` (scores); the
trace alias must differ from them. Keyset parameters are named ``$k0…`` and ``$ktid`` so they can
be merged with the filter's ``$p…`` parameters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from server.storage.filter_common import (DECLARED_TYPE_KEYS, NEGATED, SESSION_LABEL_SOURCE, SESSION_SCORE_RUN_ID,
                                          AssessmentTest, assessment_test, is_numeric_literal, null_sentinel,
                                          sorts_as_number, span_type_split)
from tools.filters.fields import Family, FieldSpec, Kind
from tools.filters.nodes import And, Comparison, Expr, Not, Or, OrderKey, RelativeTime, SpanExists

__all__ = ["compile_filter", "compile_order_by", "json_pointer", "keyset_predicate", "order_expression",
           "sort_values_select"]

#: Operator -> SQL template; ``{c}`` is the column expression, ``{v}`` the parameter(s).
SQL_TEMPLATES: dict[str, str] = {
    "=": "{c} = {v}", "!=": "{c} <> {v}", "<": "{c} < {v}", "<=": "{c} <= {v}",
    ">": "{c} > {v}", ">=": "{c} >= {v}",
    "IN": "{c} IN ({v})", "NOT IN": "{c} NOT IN ({v})",
    "LIKE": "{c} LIKE {v}", "NOT LIKE": "{c} NOT LIKE {v}",
    "ILIKE": "{c} ILIKE {v}", "NOT ILIKE": "{c} NOT ILIKE {v}", "RLIKE": "regexp_matches({c}, {v})",
    "CONTAINS": "contains(lower({c}), lower({v}))",
    "IS NULL": "{c} IS NULL", "IS NOT NULL": "{c} IS NOT NULL",
}
#: List columns (tool_names): "=" and IN mean "contains". A NULL list counts as empty.
LIST_TEMPLATES: dict[str, str] = {
    "=": "list_contains({c}, {v})", "CONTAINS": "list_contains({c}, {v})",
    "!=": "NOT list_contains({c}, {v})",
    "IN": "list_has_any({c}, [{v}])", "NOT IN": "NOT list_has_any({c}, [{v}])",
    "IS NULL": "len({c}) = 0", "IS NOT NULL": "len({c}) > 0",
}
#: Fields with no column of their own. ``{a}`` is the trace alias.
COMPUTED: dict[str, str] = {
    "attributes.total_tokens": "(coalesce({a}.input_tokens, 0) + coalesce({a}.output_tokens, 0))",
    "span.duration_ms": "((s.end_time_ns - s.start_time_ns) / 1e6)",
    "span.content": "concat_ws(' ', s.name, s.inputs, s.outputs, CAST(s.attributes AS VARCHAR))",
    "attributes.end_time_ms": "({a}.timestamp_ms + coalesce({a}.execution_time_ms, 0))",
}
_RESERVED = {"s", "g", "l", "sc"}
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def compile_filter(expr: Expr | None, *, now_ms: int, alias: str = "t",
                   window_param: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(where_sql, params)`` for ``SELECT … FROM traces AS {alias} WHERE {where_sql}``.

    ``now_ms`` resolves ``now() - 7d``; pass the same value on every page of one search.
    With ``window_param``, span conditions only read spans of traces whose timestamp is at
    least ``${window_param}``: the caller binds it and bounds ``{alias}.timestamp_ms`` the same way.
    """
    _check_alias(alias)
    if expr is None:
        return "TRUE", {}
    c = _Compiler(now_ms, alias, window_param)
    return c.node(expr), c.params


def order_expression(key: OrderKey, alias: str = "t") -> str:
    """The sort expression of one key, NULLs replaced by the sentinel (select it for page tokens)."""
    _check_alias(alias)
    column = _column(key.field, alias)
    return f"coalesce({column}, {_sentinel_sql(key)})"


def sort_values_select(keys: Sequence[OrderKey], alias: str = "t") -> str:
    """One select-list item holding the row's sort values for a page token.

    A DuckDB list needs one element type and keys mix BIGINT and VARCHAR, so every value is cast
    to VARCHAR here; ``keyset_predicate`` casts each back to its key's type.
    """
    return "[" + ", ".join(f"CAST({order_expression(k, alias)} AS VARCHAR)" for k in keys) + "]"


def compile_order_by(keys: Sequence[OrderKey], alias: str = "t") -> str:
    """``ORDER BY`` body: the keys, then ``trace_id`` ascending so the order is total."""
    parts = [f"{order_expression(k, alias)} {'DESC' if k.descending else 'ASC'}" for k in keys]
    return ", ".join(parts + [f"{alias}.trace_id ASC"])


def keyset_predicate(keys: Sequence[OrderKey], last_values: Sequence[Any], last_trace_id: str,
                     alias: str = "t") -> tuple[str, dict[str, Any]]:
    """Rows strictly after ``(last_values, last_trace_id)`` in ``compile_order_by(keys)`` order.

    ``last_values`` are the previous page's last ``order_expression`` values (a None is mapped
    to the sentinel, so raw column values work too). Values are cast to the key's SQL type, so
    they survive a JSON page token as strings. Expands to
    ``k1 > v1 OR (k1 = v1 AND k2 > v2) OR … OR (all equal AND trace_id > last_id)``.
    """
    if len(last_values) != len(keys):
        raise ValueError(f"keyset_predicate: {len(keys)} order keys but {len(last_values)} values")
    params: dict[str, Any] = {"ktid": last_trace_id}
    equal: list[str] = []
    terms: list[str] = []
    for i, (key, value) in enumerate(zip(keys, last_values)):
        params[f"k{i}"] = null_sentinel(key) if value is None else value
        sort_expr = order_expression(key, alias)
        param = f"CAST($k{i} AS {_sort_type(key)})"
        terms.append(" AND ".join([*equal, f"{sort_expr} {'<' if key.descending else '>'} {param}"]))
        equal.append(f"{sort_expr} = {param}")
    terms.append(" AND ".join([*equal, f"{alias}.trace_id > $ktid"]))
    return " OR ".join(f"({t})" for t in terms), params


# ---------------------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, now_ms: int, alias: str, window_param: str | None) -> None:
        self.now_ms = now_ms
        self.a = alias
        self.span_bound = f"s.trace_timestamp_ms >= ${window_param} AND " if window_param else ""
        self.params: dict[str, Any] = {}

    def param(self, value: Any) -> str:
        if isinstance(value, RelativeTime):
            value = value.resolve(self.now_ms)
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"${name}"

    def node(self, e: Expr) -> str:
        if isinstance(e, Comparison):
            return self.comparison(e)
        if isinstance(e, And):
            return "(" + " AND ".join(self.node(i) for i in e.items) + ")"
        if isinstance(e, Or):
            return "(" + " OR ".join(self.node(i) for i in e.items) + ")"
        if isinstance(e, Not):
            return f"NOT coalesce({self.node(e.item)}, FALSE)"
        if isinstance(e, SpanExists):
            return (f"{self.a}.trace_id IN (SELECT DISTINCT s.trace_id FROM spans s "
                    f"WHERE {self.span_bound}{self.node(e.item)})")
        raise TypeError(f"not a filter node: {type(e).__name__}")

    def apply(self, template: str, column: str, value: Any) -> str:
        if value is None:
            return template.format(c=column)
        values = value if isinstance(value, tuple) else (value,)
        return template.format(c=column, v=", ".join(self.param(v) for v in values))

    def comparison(self, c: Comparison) -> str:
        fam, op, value, key = c.field.family, c.op, c.value, c.field.key
        if fam in (Family.ATTRIBUTE, Family.SPAN):
            column = _column(c.field.spec, self.a)
            if c.field.kind is Kind.LIST:
                return self.apply(LIST_TEMPLATES[op], f"coalesce({column}, []::VARCHAR[])", value)
            if (split := span_type_split(c)) is not None:
                return self.span_type(c.op, column, *split)
            return self.apply(SQL_TEMPLATES[op], column, value)
        if fam is Family.SEARCH:
            if op in ("=", "CONTAINS"):
                p = self.param(str(value).lower())
                return f"(contains(lower({self.a}.request), {p}) OR contains(lower({self.a}.response), {p}))"
            template = SQL_TEMPLATES[op]
            return (f"({self.apply(template, f'{self.a}.request', value)} "
                    f"OR {self.apply(template, f'{self.a}.response', value)})")
        if fam is Family.TAG:
            return self.tag(c)
        if fam in (Family.METADATA, Family.SPAN_ATTRIBUTE):
            doc = f"{self.a}.metadata" if fam is Family.METADATA else "s.attributes"
            column = self.json_value(doc, str(key))
            if is_numeric_literal(value):
                column = f"TRY_CAST({column} AS DOUBLE)"
            return self.apply(SQL_TEMPLATES[op], column, value)
        if fam is Family.LABEL:
            return self.latest(c, "labels l", "l.criterion", "l.created_at_ms DESC, l.label_id DESC",
                               "l.value", "coalesce(l.numeric_value, TRY_CAST(l.value AS DOUBLE))")
        if fam is Family.SCORE:
            return self.latest(c, "scores sc", "sc.judge", "sc.created_at_ms DESC NULLS LAST, sc.run_id DESC",
                               "sc.verdict", "sc.score")
        if fam in (Family.FEEDBACK, Family.EXPECTATION):
            return self.assessment(assessment_test(c))
        if fam is Family.PROMPT:
            return self.prompt(c)
        raise TypeError(f"no SQL for field family {fam}")

    def span_type(self, op: str, column: str, stored: tuple[str, ...], declared: tuple[str, ...]) -> str:
        """``span.type``: canonical names on the column, custom ones on the type the source declared;
        a pattern may match either. Negations are "a span whose type is not …" (MLflow's meaning)."""
        positive = NEGATED.get(op, op)
        kind = "IN" if positive in ("=", "IN") else positive
        tests = [self.apply(SQL_TEMPLATES[kind], column, stored)] if stored else []
        if declared:
            keys = ", ".join(f"json_extract_string(s.attributes, {self.param(json_pointer(k))})"
                             for k in DECLARED_TYPE_KEYS)
            tests.append(f"coalesce({self.apply(SQL_TEMPLATES[kind], f'coalesce({keys})', declared)}, FALSE)")
        test = "(" + " OR ".join(tests) + ")"
        return f"NOT {test}" if positive != op else test

    def assessment(self, a: AssessmentTest) -> str:
        """``feedback.<name>`` / ``expectation.<name>`` (``filter_common.assessment_test``): the trace's
        current assessment passes, or a session-scoped one on a trace of the same session does."""
        key = self.param(a.key)
        rows = (f"SELECT trace_id, value AS text, value AS verdict, coalesce(numeric_value, TRY_CAST(value AS DOUBLE)) "
                f"AS num, source = {self.param(SESSION_LABEL_SOURCE)} AS whole_session FROM labels WHERE criterion = {key} "
                "QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY created_at_ms DESC, label_id DESC) = 1")
        if a.scores_too:
            rows += (f" UNION ALL SELECT trace_id, coalesce(value, verdict), verdict, coalesce(TRY_CAST(value AS DOUBLE), "
                     f"score), run_id = {self.param(SESSION_SCORE_RUN_ID)} FROM scores WHERE judge = {key} QUALIFY "
                     "row_number() OVER (PARTITION BY trace_id ORDER BY created_at_ms DESC NULLS LAST, run_id DESC) = 1")
        test = "TRUE"
        if a.column is not None:
            template = SQL_TEMPLATES["IN" if a.op == "=" else a.op]
            test = self.apply(template, f"a.{a.column}", a.values)
            test = f"NOT coalesce({test}, TRUE)" if a.negate else test
        hits = f"SELECT a.trace_id, a.whole_session FROM ({rows}) a WHERE {test}"
        found = (f"({self.a}.trace_id IN (SELECT trace_id FROM ({hits})) OR {self.a}.session_id IN "
                 f"(SELECT ts.session_id FROM traces ts WHERE ts.trace_id IN (SELECT trace_id FROM ({hits}) WHERE whole_session)))")
        return f"NOT coalesce({found}, FALSE)" if a.op == "IS NULL" else found

    def prompt(self, c: Comparison) -> str:
        """``prompt = 'name/version'``: MLflow links prompt versions to a trace in the ``mlflow.linkedPrompts``
        tag (a JSON list of {name, version}); ``prompt_version`` holds ``name@version`` for the first."""
        linked = f"json_extract_string({self.a}.tags, {self.param(json_pointer('mlflow.linkedPrompts'))})"
        if c.value is None:
            has = f"({linked} IS NOT NULL OR {self.a}.prompt_version IS NOT NULL)"
            return f"NOT {has}" if c.op == "IS NULL" else has
        name, version = str(c.value).split("/")
        pn, pv = self.param(name.strip()), self.param(version.strip())
        listed = (f"list_contains(list_transform(CAST(TRY_CAST({linked} AS JSON) -> '$[*]' AS JSON[]), "
                  "lambda p: json_extract_string(p, '$.name') || '/' || json_extract_string(p, '$.version')), "
                  f"{pn} || '/' || {pv})")
        return f"(coalesce({listed}, FALSE) OR {self.a}.prompt_version = {pn} || '@' || {pv})"

    def tag(self, c: Comparison) -> str:
        """A test on ``traces.tags`` behind a ``contains`` on its text (see the module docstring)."""
        key = self.param(str(c.field.key))
        value = f"json_extract_string({self.a}.tags, {self.param(json_pointer(str(c.field.key)))})"
        text = f"CAST({self.a}.tags AS VARCHAR)"
        # DuckDB encodes the needles itself, exactly as it encoded the stored text; chr(58) is
        # ':' (this module writes no quoted literal, so none can be mistaken for a user's value).
        has_key = f"contains({text}, to_json(CAST({key} AS VARCHAR)) || chr(58))"
        if c.op == "IS NULL":
            return f"(NOT {has_key} OR {value} IS NULL)"
        if c.op == "=" and isinstance(c.value, str):
            pair = f"to_json(CAST({key} AS VARCHAR)) || chr(58) || to_json(CAST({self.param(c.value)} AS VARCHAR))"
            return f"(contains({text}, {pair}) AND {self.apply(SQL_TEMPLATES['='], value, c.value)})"
        return f"({has_key} AND {self.apply(SQL_TEMPLATES[c.op], value, c.value)})"

    def latest(self, c: Comparison, table: str, key_col: str, order: str, text_col: str,
               num_col: str) -> str:
        """Compare the newest row for (trace, key); IS NULL means there is no row at all."""
        t = table.split()[1]
        where = f"{t}.trace_id = {self.a}.trace_id AND {key_col} = {self.param(c.field.key)}"
        if c.op in ("IS NULL", "IS NOT NULL"):
            return f"{'NOT ' if c.op == 'IS NULL' else ''}EXISTS (SELECT 1 FROM {table} WHERE {where})"
        column = num_col if is_numeric_literal(c.value) else text_col
        sub = f"(SELECT {column} FROM {table} WHERE {where} ORDER BY {order} LIMIT 1)"
        return self.apply(SQL_TEMPLATES[c.op], sub, c.value)

    def json_value(self, doc: str, key: str) -> str:
        """``json_extract_string`` by JSON Pointer (handles any key text); dotted keys try
        the literal top-level key first, then the nested path."""
        flat = f"json_extract_string({doc}, {self.param(json_pointer(key))})"
        if "." not in key:
            return flat
        nested = json_pointer(*key.split("."))
        return f"coalesce({flat}, json_extract_string({doc}, {self.param(nested)}))"


def json_pointer(*keys: str) -> str:
    """The JSON Pointer of a path of object keys (any key text: ``~`` and ``/`` are escaped)."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)


def _column(spec: FieldSpec, alias: str) -> str:
    if spec.name in COMPUTED:
        return COMPUTED[spec.name].format(a=alias)
    if spec.column is None:
        raise ValueError(f"field {spec.name} has no column")
    return f"{'s' if spec.family is Family.SPAN else alias}.{spec.column}"


def _sort_type(key: OrderKey) -> str:
    return "BIGINT" if sorts_as_number(key) else "VARCHAR"


def _sentinel_sql(key: OrderKey) -> str:
    if sorts_as_number(key):
        return str(null_sentinel(key))
    return "''" if key.descending else "chr(1114111)"


def _check_alias(alias: str) -> None:
    if not _ALIAS.match(alias) or alias in _RESERVED:
        raise ValueError(f"trace alias must be an identifier other than {sorted(_RESERVED)}: {alias!r}")
