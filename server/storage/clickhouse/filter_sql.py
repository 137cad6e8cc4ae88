"""Compile a parsed filter (``tools.filters.nodes``) to a ClickHouse WHERE clause over ``traces AS t``.

The ClickHouse twin of ``server/storage/duckdb/filter_sql.py``, with the same semantics (see its
docstring): a comparison never matches a missing value, ``NOT`` is a true complement, span
conditions in one group hold on one span, ``metadata.a.b`` tries the key ``"a.b"`` then the
path a -> b. Every value the user wrote becomes a typed server-side parameter ``{p0:String}``,
``{p1:Int64}``…; column names come only from the field registry and the tables below.

Differences that follow from the layout (``migrations.py``): tags are rows of ``tags``, so a tag
test is a semi-join on ``(key, value)``; the replacing tables are read ``FINAL`` by the client,
never here (the client adds ``FINAL`` to every ``FROM labels`` / ``scores`` / ``tags`` below). The
current label / score of a (trace, name) is the newest row, taken with ``argMax`` rather than a window
(of a one-element tuple where the value may be NULL: ``argMax`` skips NULL values, which would hand back
an older row's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.storage.filter_common import (BIG, DECLARED_TYPE_KEYS, NEGATED, SESSION_LABEL_SOURCE, SESSION_SCORE_RUN_ID,
                                          AssessmentTest, assessment_test, is_numeric_literal, null_sentinel,
                                          sorts_as_number, span_type_split)
from tools.filters.fields import Family, FieldSpec, Kind
from tools.filters.nodes import And, Comparison, Expr, Not, Or, OrderKey, RelativeTime, SpanExists

__all__ = ["compile_filter", "compile_order_by", "keyset_predicate", "order_expression", "sort_values_select"]

SQL_TEMPLATES: dict[str, str] = {
    "=": "{c} = {v}", "!=": "{c} != {v}", "<": "{c} < {v}", "<=": "{c} <= {v}",
    ">": "{c} > {v}", ">=": "{c} >= {v}",
    "IN": "{c} IN ({v})", "NOT IN": "{c} NOT IN ({v})",
    "LIKE": "{c} LIKE {v}", "NOT LIKE": "{c} NOT LIKE {v}",
    "ILIKE": "{c} ILIKE {v}", "NOT ILIKE": "{c} NOT ILIKE {v}", "RLIKE": "match({c}, {v})",
    "CONTAINS": "positionCaseInsensitiveUTF8({c}, {v}) > 0",
    "IS NULL": "{c} IS NULL", "IS NOT NULL": "{c} IS NOT NULL",
}
LIST_TEMPLATES: dict[str, str] = {
    "=": "has({c}, {v})", "CONTAINS": "has({c}, {v})", "!=": "NOT has({c}, {v})",
    "IN": "hasAny({c}, [{v}])", "NOT IN": "NOT hasAny({c}, [{v}])",
    "IS NULL": "empty({c})", "IS NOT NULL": "notEmpty({c})",
}
COMPUTED: dict[str, str] = {
    "attributes.total_tokens": "(coalesce({a}.input_tokens, 0) + coalesce({a}.output_tokens, 0))",
    "span.duration_ms": "((s.end_time_ns - s.start_time_ns) / 1e6)",
    "span.content": "concat_ws(' ', s.name, s.inputs, s.outputs, s.attributes)",
    "attributes.end_time_ms": "({a}.timestamp_ms + coalesce({a}.execution_time_ms, 0))",
}


def compile_filter(expr: Expr | None, *, now_ms: int) -> tuple[str, dict[str, Any]]:
    """``(where_sql, params)`` for ``SELECT … FROM traces AS t WHERE {where_sql}``."""
    if expr is None:
        return "1", {}
    c = _Compiler(now_ms)
    return c.node(expr), c.params


def order_expression(key: OrderKey) -> str:
    """One sort key with NULLs replaced by the sentinel at the far end of the order."""
    return f"coalesce({_column(key.field)}, {_sentinel_sql(key)})"


def sort_values_select(keys: Sequence[OrderKey]) -> str:
    """The row's sort values as text, for a page token (``keyset_predicate`` types them back)."""
    return "[" + ", ".join(f"toString({order_expression(k)})" for k in keys) + "]"


def compile_order_by(keys: Sequence[OrderKey]) -> str:
    parts = [f"{order_expression(k)} {'DESC' if k.descending else 'ASC'}" for k in keys]
    return ", ".join(parts + ["t.trace_id ASC"])


def keyset_predicate(keys: Sequence[OrderKey], last_values: Sequence[Any],
                     last_trace_id: str) -> tuple[str, dict[str, Any]]:
    """Rows strictly after ``(last_values, last_trace_id)`` in ``compile_order_by(keys)`` order."""
    if len(last_values) != len(keys):
        raise ValueError(f"keyset_predicate: {len(keys)} order keys but {len(last_values)} values")
    params: dict[str, Any] = {"ktid": last_trace_id}
    equal: list[str] = []
    terms: list[str] = []
    for i, (key, value) in enumerate(zip(keys, last_values)):
        numeric = sorts_as_number(key)
        raw = null_sentinel(key) if value is None else value
        params[f"k{i}"] = int(raw) if numeric else str(raw)
        sort_expr, param = order_expression(key), f"{{k{i}:{_sort_type(key)}}}"
        terms.append(" AND ".join([*equal, f"{sort_expr} {'<' if key.descending else '>'} {param}"]))
        equal.append(f"{sort_expr} = {param}")
    terms.append(" AND ".join([*equal, "t.trace_id > {ktid:String}"]))
    return " OR ".join(f"({t})" for t in terms), params


class _Compiler:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.params: dict[str, Any] = {}

    def param(self, value: Any) -> str:
        if isinstance(value, RelativeTime):
            value = value.resolve(self.now_ms)
        name = f"p{len(self.params)}"
        self.params[name] = value
        kind = "Int64" if isinstance(value, int) else "Float64" if isinstance(value, float) else "String"
        return f"{{{name}:{kind}}}"

    def node(self, e: Expr) -> str:
        if isinstance(e, Comparison):
            return self.comparison(e)
        if isinstance(e, And):
            return "(" + " AND ".join(self.node(i) for i in e.items) + ")"
        if isinstance(e, Or):
            return "(" + " OR ".join(self.node(i) for i in e.items) + ")"
        if isinstance(e, Not):
            return f"NOT coalesce({self.node(e.item)}, 0)"
        if isinstance(e, SpanExists):
            return f"t.trace_id IN (SELECT s.trace_id FROM spans AS s WHERE {self.node(e.item)})"
        raise TypeError(f"not a filter node: {type(e).__name__}")

    def apply(self, template: str, column: str, value: Any) -> str:
        if value is None:
            return template.format(c=column)
        values = value if isinstance(value, tuple) else (value,)
        return template.format(c=column, v=", ".join(self.param(v) for v in values))

    def comparison(self, c: Comparison) -> str:
        fam, op, value, key = c.field.family, c.op, c.value, c.field.key
        if fam in (Family.ATTRIBUTE, Family.SPAN):
            column = _column(c.field.spec)
            if c.field.kind is Kind.LIST:
                return self.apply(LIST_TEMPLATES[op], column, value)
            if (split := span_type_split(c)) is not None:
                return self.span_type(c.op, column, *split)
            return self.apply(SQL_TEMPLATES[op], column, value)
        if fam is Family.SEARCH:
            if op in ("=", "CONTAINS"):
                p = self.param(str(value))
                return f"(positionCaseInsensitiveUTF8(t.request, {p}) > 0 OR positionCaseInsensitiveUTF8(t.response, {p}) > 0)"
            template = SQL_TEMPLATES[op]
            return f"({self.apply(template, 't.request', value)} OR {self.apply(template, 't.response', value)})"
        if fam is Family.TAG:
            return self.tag(c)
        if fam in (Family.METADATA, Family.SPAN_ATTRIBUTE):
            column = self.json_value("t.metadata" if fam is Family.METADATA else "s.attributes", str(key))
            if is_numeric_literal(value):
                column = f"toFloat64OrNull({column})"
            return self.apply(SQL_TEMPLATES[op], column, value)
        if fam in (Family.LABEL, Family.SCORE):
            return self.latest(c)
        if fam in (Family.FEEDBACK, Family.EXPECTATION):
            return self.assessment(assessment_test(c))
        if fam is Family.PROMPT:
            return self.prompt(c)
        raise TypeError(f"no SQL for field family {fam}")

    def span_type(self, op: str, column: str, stored: tuple[str, ...], declared: tuple[str, ...]) -> str:
        """As DuckDB's: canonical names on the column, custom ones on the type the source declared."""
        positive = NEGATED.get(op, op)
        kind = "IN" if positive in ("=", "IN") else positive
        tests = [self.apply(SQL_TEMPLATES[kind], column, stored)] if stored else []
        if declared:
            keys = ", ".join(self._json_text("s.attributes", [self.param(k)]) for k in DECLARED_TYPE_KEYS)
            tests.append(f"coalesce({self.apply(SQL_TEMPLATES[kind], f'coalesce({keys})', declared)}, 0)")
        test = "(" + " OR ".join(tests) + ")"
        return f"NOT {test}" if positive != op else test

    def _labels(self, key: str) -> str:
        """The current label per trace for criterion ``key``: text, verdict, number, whole-session mark."""
        newest = "(created_at_ms, label_id)"
        return (f"SELECT trace_id, argMax(value, {newest}) AS a_text, a_text AS a_verdict, "
                f"argMax(tuple(coalesce(numeric_value, toFloat64OrNull(value))), {newest}).1 AS a_num, "
                f"argMax(coalesce(source, '') = {self.param(SESSION_LABEL_SOURCE)}, {newest}) AS a_whole "
                f"FROM labels WHERE criterion = {key} GROUP BY trace_id")

    def _scores(self, key: str) -> str:
        newest = f"(coalesce(created_at_ms, toInt64({-BIG})), run_id)"
        return (f"SELECT trace_id, argMax(coalesce(value, verdict), {newest}) AS a_text, "
                f"argMax(verdict, {newest}) AS a_verdict, "
                f"argMax(tuple(coalesce(toFloat64OrNull(value), score)), {newest}).1 AS a_num, "
                f"argMax(run_id = {self.param(SESSION_SCORE_RUN_ID)}, {newest}) AS a_whole "
                f"FROM scores WHERE judge = {key} GROUP BY trace_id")

    def latest(self, c: Comparison) -> str:
        """``labels.<criterion>`` / ``scores.<judge>``: the newest row per trace; IS NULL means none."""
        key = self.param(str(c.field.key))
        label = c.field.family is Family.LABEL
        if c.op in ("IS NULL", "IS NOT NULL"):
            table, column = ("labels", "criterion") if label else ("scores", "judge")
            found = f"t.trace_id IN (SELECT trace_id FROM {table} WHERE {column} = {key})"
            return f"NOT {found}" if c.op == "IS NULL" else found
        rows = self._labels(key) if label else self._scores(key)
        column = "a.a_num" if is_numeric_literal(c.value) else ("a.a_text" if label else "a.a_verdict")
        return f"t.trace_id IN (SELECT a.trace_id FROM ({rows}) AS a WHERE {self.apply(SQL_TEMPLATES[c.op], column, c.value)})"

    def assessment(self, a: AssessmentTest) -> str:
        """As DuckDB's: the trace's current assessment passes, or a whole-session one in its session does."""
        key = self.param(a.key)
        rows = self._labels(key) + (f" UNION ALL {self._scores(key)}" if a.scores_too else "")
        test = "1"
        if a.column is not None:
            test = self.apply(SQL_TEMPLATES["IN" if a.op == "=" else a.op], f"a.a_{a.column}", a.values)
            test = f"NOT coalesce({test}, 1)" if a.negate else test
        hits = f"SELECT a.trace_id, a.a_whole FROM ({rows}) AS a WHERE {test}"
        found = (f"(t.trace_id IN (SELECT trace_id FROM ({hits})) OR t.session_id IN (SELECT ts.session_id "
                 f"FROM traces AS ts WHERE ts.trace_id IN (SELECT trace_id FROM ({hits}) WHERE a_whole)))")
        return f"NOT coalesce({found}, 0)" if a.op == "IS NULL" else found

    def prompt(self, c: Comparison) -> str:
        """As DuckDB's: the ``mlflow.linkedPrompts`` tag lists the version, or ``prompt_version`` names it."""
        linked = self.param("mlflow.linkedPrompts")
        if c.value is None:
            has = f"(t.trace_id IN (SELECT trace_id FROM tags WHERE key = {linked}) OR t.prompt_version IS NOT NULL)"
            return f"NOT {has}" if c.op == "IS NULL" else has
        name, version = (part.strip() for part in str(c.value).split("/"))
        pn, pv = self.param(name), self.param(version)
        ids = ("arrayMap(p -> concat(JSONExtractString(p, 'name'), '/', if(JSONType(p, 'version') = 'String', "
               "JSONExtractString(p, 'version'), JSONExtractRaw(p, 'version'))), JSONExtractArrayRaw(value))")
        return (f"(t.trace_id IN (SELECT trace_id FROM tags WHERE key = {linked} AND has({ids}, concat({pn}, '/', {pv}))) "
                f"OR t.prompt_version = concat({pn}, '@', {pv}))")

    def tag(self, c: Comparison) -> str:
        key = self.param(str(c.field.key))
        if c.op == "IS NULL":
            return f"t.trace_id NOT IN (SELECT trace_id FROM tags WHERE key = {key})"
        if c.op == "IS NOT NULL":
            return f"t.trace_id IN (SELECT trace_id FROM tags WHERE key = {key})"
        test = self.apply(SQL_TEMPLATES[c.op], "value", c.value)
        return f"t.trace_id IN (SELECT trace_id FROM tags WHERE key = {key} AND {test})"

    def json_value(self, doc: str, key: str) -> str:
        """A JSON value as text (strings unquoted, others as written), NULL when the key is absent;
        a dotted key tries the literal top-level key first, then the nested path."""
        flat = self._json_text(doc, [self.param(key)])
        if "." not in key:
            return flat
        return f"coalesce({flat}, {self._json_text(doc, [self.param(k) for k in key.split('.')])})"

    @staticmethod
    def _json_text(doc: str, path: list[str]) -> str:
        args = ", ".join([doc, *path])
        return (f"multiIf(NOT JSONHas({args}), NULL, JSONType({args}) = 'String', JSONExtractString({args}), "
                f"JSONType({args}) = 'Null', NULL, JSONExtractRaw({args}))")


def _column(spec: FieldSpec) -> str:
    if spec.name in COMPUTED:
        return COMPUTED[spec.name].format(a="t")
    if spec.column is None:
        raise ValueError(f"field {spec.name} has no column")
    return f"{'s' if spec.family is Family.SPAN else 't'}.{spec.column}"


def _sort_type(key: OrderKey) -> str:
    return "Int64" if sorts_as_number(key) else "String"


def _sentinel_sql(key: OrderKey) -> str:
    if sorts_as_number(key):
        return f"toInt64({null_sentinel(key)})"
    return "''" if key.descending else "char(244, 143, 191, 191)"
