"""What a judge looks at, built by ClickHouse SQL: items of a dataset version or of live traces.

The ClickHouse twin of the item half of ``server/storage/duckdb/judges_sql.py``. Items come from
``dataset_records`` (a committed version: the caller has checked its header in the control
plane) or from ``traces`` (filter + window + a stable hash sample), joined with their trace and
its spans for retrieved documents, tool calls and error spans. Request/response text is pulled
out of JSON bodies with the path table in ``tools.judges.rules``, so SQL rules and Python judges
read the same text.

ClickHouse differs from DuckDB in three ways this module absorbs: JSON indexes are 1-based and an
integer step on an object picks its n-th member (so every integer step is guarded by an
``Array`` type check); a ``LEFT JOIN`` fills missing rows with defaults rather than NULL (so the
trace side carries a ``found`` flag); and arrays of tuples come back as Python tuples.
"""

from __future__ import annotations

import json
from typing import Any

from server.storage.clickhouse import filter_sql
from tools.filters import parser
from tools.judges.ports import ErrorSpan, Item, Target, ToolCall
from tools.judges.rules import INPUT_PATHS, OUTPUT_PATHS

Path = tuple[str | int, ...]


def _step(step: str | int) -> str:
    if isinstance(step, int):
        return str(step + 1 if step >= 0 else step)
    return "'" + step.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _at(column: str, path: Path) -> str:
    """The string at ``path`` in ``column``'s JSON, else NULL (an integer step needs an array)."""
    guards = [f"JSONType({', '.join([column, *map(_step, path[:i])])}) = 'Array'"
              for i, step in enumerate(path) if isinstance(step, int)]
    args = ", ".join([column, *map(_step, path)])
    test = " AND ".join([*guards, f"JSONType({args}) = 'String'"])
    return f"if({test}, JSONExtractString({args}), NULL)"


def extract_sql(column: str, paths: tuple[Path, ...], *, depth: int = 2) -> str:
    """SQL for the readable text of a JSON body: the first string at ``paths``, else the raw text.
    A body that is a JSON string holding JSON (double-encoded) is unwrapped once and searched again."""
    inner = f"JSONExtractString({column})"
    unwrapped = extract_sql(inner, paths, depth=depth - 1) if depth > 1 else inner
    return (f"multiIf({column} IS NULL, NULL, NOT isValidJSON({column}), {column}, "
            f"JSONType({column}) = 'String', {unwrapped}, "
            f"coalesce({', '.join(_at(column, p) for p in paths)}, {column}))")


SPANS = """
    SELECT s.trace_id,
        arrayMap(x -> (x.3, x.4), arraySort(groupArrayIf((s.start_time_ns, s.span_id, coalesce(s.name, ''),
            assumeNotNull(s.outputs)), s.span_type = 'RETRIEVER' AND s.outputs IS NOT NULL))) AS retrieved,
        arrayMap(x -> (x.3, x.4, x.5, x.6), arraySort(groupArrayIf((s.start_time_ns, s.span_id,
            coalesce(s.tool_name, s.name, ''), s.inputs, s.status, s.status_message), s.span_type = 'TOOL'))) AS tool_calls,
        arrayMap(x -> (x.3, x.4, x.5), arraySort(groupArrayIf((s.start_time_ns, s.span_id, s.span_type,
            coalesce(s.name, ''), s.status_message), s.status = 'ERROR'))) AS error_spans
    FROM spans AS s WHERE s.trace_id IN (SELECT trace_id FROM page) GROUP BY s.trace_id"""

_TRACE_SIDE = """SELECT trace_id, 1 AS found, status, execution_time_ms, input_tokens, output_tokens, metadata
                 FROM traces AS t WHERE t.trace_id IN (SELECT trace_id FROM page)"""


def items_sql(target: Target, *, in_progress: bool = False, batch: str | None = None) -> tuple[str, dict[str, Any]]:
    """``SELECT item_id, trace_id, raw_in, raw_out, expectations`` for the target (with
    ``in_progress``, the IN_PROGRESS traces it skips instead). A dataset target reads only ``batch``,
    the records its committed header names: a writer killed before its header committed, or one
    that lost the race for the version number, left rows under the same name and version."""
    limit = f"LIMIT {int(target.max_items)}" if target.max_items else ""
    if target.dataset:
        name, _, version = target.dataset.partition("@")
        return (f"""SELECT record_id AS item_id, coalesce(trace_id, '') AS trace_id, inputs AS raw_in,
                        outputs AS raw_out, expectations FROM dataset_records
                    WHERE name = {{j_ds:String}} AND version = {{j_dv:Int64}} AND records_batch = {{j_batch:String}}
                    ORDER BY position {limit}""",
                {"j_ds": name, "j_dv": int(version), "j_batch": batch or ""})
    now = int(target.now_ms or 0)
    expr = parser.parse(target.filter) if target.filter and target.filter.strip() else None
    where, params = filter_sql.compile_filter(expr, now_ms=now)
    if target.window_ms:
        where += " AND t.timestamp_ms > {j_from:Int64} AND t.timestamp_ms <= {j_now:Int64}"
        params.update(j_from=now - target.window_ms, j_now=now)
    if target.sample_rate < 1:
        where += " AND sipHash64(t.trace_id) % 1000000 < {j_ppm:UInt64}"
        params["j_ppm"] = int(target.sample_rate * 1_000_000)
    if in_progress:
        where += " AND t.status = 'IN_PROGRESS'"
    elif not target.include_in_progress:  # their root span (the answer) is still missing
        where += " AND t.status != 'IN_PROGRESS'"
    order = "ORDER BY sipHash64(t.trace_id), t.trace_id" if limit else ""
    return (f"""SELECT t.trace_id AS item_id, t.trace_id AS trace_id, t.request AS raw_in, t.response AS raw_out,
                CAST(NULL AS Nullable(String)) AS expectations FROM traces AS t WHERE {where} {order} {limit}""",
            params)


def base_sql(items: str, *, spans: bool, page: str = "") -> str:
    """A ``WITH`` whose ``base`` holds one row per item of ``page`` (a clause over ``items``) with the
    columns ``rule_sql`` expressions read."""
    span_cols = ("sp.retrieved AS retrieved, sp.tool_calls AS tool_calls, sp.error_spans AS error_spans"
                 if spans else "")
    span_join = "LEFT JOIN sp ON sp.trace_id = i.trace_id" if spans else ""
    return f"""WITH items AS ({items}), page AS (SELECT * FROM items {page}),
        {'sp AS (' + SPANS + '),' if spans else ''}
        tr AS ({_TRACE_SIDE}),
        base AS (
            SELECT i.item_id AS item_id, i.trace_id AS trace_id, i.expectations AS expectations,
                if(tr.found = 1, toNullable(toString(tr.status)), NULL) AS status,
                if(tr.found = 1, tr.execution_time_ms, NULL) AS latency_ms,
                if(tr.found = 1, tr.input_tokens, NULL) AS input_tokens,
                if(tr.found = 1, tr.output_tokens, NULL) AS output_tokens,
                if(tr.found = 1, tr.metadata, '{{}}') AS metadata,
                {extract_sql('i.raw_in', INPUT_PATHS)} AS input_text,
                {extract_sql('i.raw_out', OUTPUT_PATHS)} AS output_text{', ' + span_cols if spans else ''}
            FROM page AS i LEFT JOIN tr ON tr.trace_id = i.trace_id {span_join})"""


def to_item(r: dict[str, Any]) -> Item:
    retrieved = r.get("retrieved") or []
    return Item(item_id=r["item_id"], trace_id=r["trace_id"] or r["item_id"], input=r["input_text"],
                output=r["output_text"], retrieved=[d[1] for d in retrieved], retriever_names=[d[0] for d in retrieved],
                tool_calls=[ToolCall(name=c[0], arguments=c[1], status=c[2], error=c[3])
                            for c in r.get("tool_calls") or []],
                status=r["status"], latency_ms=r["latency_ms"], input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"],
                error_spans=[ErrorSpan(type=e[0], name=e[1], message=e[2]) for e in r.get("error_spans") or []],
                metadata=json.loads(r["metadata"] or "{}"), expectations=json.loads(r["expectations"] or "{}") or {})
