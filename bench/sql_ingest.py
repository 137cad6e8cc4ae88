"""Experiment: OTLP/JSON lines -> the store's ``spans``/``traces`` rows entirely inside DuckDB.

The shipped ingest parses every span in Python (json.loads, the attribute tables, a pydantic
``Span``), which caps it near 5k spans/s. Here DuckDB's ``read_json`` reads the files, ``unnest``
flattens resourceSpans/scopeSpans/spans, the attribute list becomes a MAP, and the canonical
columns come from the same precedence rules (``server/ingestion/attributes.py``) written as SQL
``coalesce``/``CASE``. Only the keys this benchmark's files use are mapped: enough to measure the
cost of the approach, not a replacement reader. Run: ``python -m bench.sql_ingest DIR DB``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb

_KV = ("STRUCT(key VARCHAR, value STRUCT(stringValue VARCHAR, intValue VARCHAR, doubleValue DOUBLE, "
       "boolValue BOOLEAN))[]")
_COLUMNS = {"resourceSpans": f"""STRUCT(resource STRUCT(attributes {_KV}), scopeSpans STRUCT(
    scope STRUCT(name VARCHAR, version VARCHAR), spans STRUCT(traceId VARCHAR, spanId VARCHAR, parentSpanId VARCHAR,
    name VARCHAR, kind INTEGER, startTimeUnixNano VARCHAR, endTimeUnixNano VARCHAR, attributes {_KV},
    status STRUCT(code INTEGER, message VARCHAR), events JSON)[])[])[]"""}
# An OTLP AnyValue as text (scalars; arrays/kvlists are not used by these files).
_VALUE = ("coalesce(a.value.stringValue, a.value.intValue, a.value.doubleValue::VARCHAR, "
          "a.value.boolValue::VARCHAR)")

SPANS_SQL = f"""
CREATE OR REPLACE TEMP TABLE flat AS
WITH rs AS (SELECT unnest(resourceSpans) AS r FROM read_json($files, format='newline_delimited',
                columns={{'resourceSpans': '{_COLUMNS["resourceSpans"]}'}}, maximum_object_size=268435456)),
     ss AS (SELECT map_from_entries(list_transform(r.resource.attributes, lambda a: {{'k': a.key, 'v': {_VALUE}}})) AS res,
                   unnest(r.scopeSpans) AS s FROM rs),
     sp AS (SELECT res, unnest(s.spans) AS p FROM ss)
SELECT lower(p.traceId) AS trace_id, lower(p.spanId) AS span_id, nullif(lower(p.parentSpanId), '') AS parent_span_id,
       p.name, p.startTimeUnixNano::BIGINT AS start_time_ns, p.endTimeUnixNano::BIGINT AS end_time_ns,
       p.status.code AS code, p.status.message AS status_message, p.events,
       map_from_entries(list_transform(p.attributes, lambda a: {{'k': a.key, 'v': {_VALUE}}})) AS attrs, res
FROM sp
"""

INSERT_SPANS = """
INSERT INTO spans
SELECT trace_id, span_id, parent_span_id, name,
       coalesce(upper(attrs['mlflow.spanType']), upper(attrs['openinference.span.kind']),
                CASE attrs['gen_ai.operation.name'] WHEN 'chat' THEN 'CHAT_MODEL' WHEN 'text_completion' THEN 'LLM'
                     WHEN 'execute_tool' THEN 'TOOL' WHEN 'retrieval' THEN 'RETRIEVER' WHEN 'embeddings' THEN 'EMBEDDING'
                     WHEN 'invoke_agent' THEN 'AGENT' END, 'UNKNOWN') AS span_type,
       start_time_ns, end_time_ns,
       CASE WHEN code = 2 OR attrs['error.type'] IS NOT NULL THEN 'ERROR' WHEN code = 1 THEN 'OK' ELSE 'UNSET' END,
       status_message,
       coalesce(attrs['gen_ai.input.messages'], attrs['gen_ai.tool.call.arguments'], attrs['input.value']),
       coalesce(attrs['gen_ai.output.messages'], attrs['gen_ai.tool.call.result'], attrs['output.value']),
       coalesce(attrs['gen_ai.response.model'], attrs['gen_ai.request.model']),
       TRY_CAST(attrs['gen_ai.usage.input_tokens'] AS BIGINT), TRY_CAST(attrs['gen_ai.usage.output_tokens'] AS BIGINT),
       coalesce(attrs['gen_ai.tool.name'], attrs['tool.name']),
       to_json(attrs), coalesce(events::VARCHAR, '[]')
FROM flat
"""

INSERT_TRACES = """
INSERT INTO traces
SELECT s.trace_id, min(s.start_time_ns) // 1000000,
       max(CASE WHEN s.parent_span_id IS NULL THEN (s.end_time_ns - s.start_time_ns) // 1000000 END),
       CASE WHEN bool_or(s.parent_span_id IS NULL AND s.status = 'ERROR') THEN 'ERROR' ELSE 'OK' END,
       any_value(s.name) FILTER (WHERE s.parent_span_id IS NULL),
       any_value(s.inputs) FILTER (WHERE s.parent_span_id IS NULL),
       any_value(s.outputs) FILTER (WHERE s.parent_span_id IS NULL),
       any_value(f.attrs['gen_ai.conversation.id']) FILTER (WHERE s.parent_span_id IS NULL),
       any_value(f.attrs['user.id']) FILTER (WHERE s.parent_span_id IS NULL),
       arg_min(s.model, s.start_time_ns) FILTER (WHERE s.span_type IN ('LLM', 'CHAT_MODEL')),
       any_value(f.attrs['llm.prompt_template.version']) FILTER (WHERE s.parent_span_id IS NULL),
       any_value(f.res['deployment.environment.name']),
       sum(s.input_tokens) FILTER (WHERE s.span_type IN ('LLM', 'CHAT_MODEL')),
       sum(s.output_tokens) FILTER (WHERE s.span_type IN ('LLM', 'CHAT_MODEL')),
       '{}', 'otlp', NULL, count(*), count(*) FILTER (WHERE s.status = 'ERROR'),
       list_distinct(list(s.tool_name ORDER BY s.start_time_ns) FILTER (WHERE s.tool_name IS NOT NULL)),
       epoch_ms(now())
FROM spans s JOIN flat f USING (trace_id, span_id)
WHERE s.trace_id IN (SELECT DISTINCT trace_id FROM flat)
GROUP BY s.trace_id
"""


def load(files: list[Path], db: Path, *, per_call: int = 10) -> tuple[int, float]:
    """Load ``files`` into ``db`` (a migrated tracesieve store), ``per_call`` files per transaction."""
    from server.storage.duckdb_store import DuckDBTraceStore

    DuckDBTraceStore(db)  # create + migrate
    con = duckdb.connect(str(db))
    spans = 0
    t0 = time.perf_counter()
    for i in range(0, len(files), per_call):
        con.execute("BEGIN")
        con.execute(SPANS_SQL, {"files": [str(f) for f in files[i:i + per_call]]})
        spans += con.execute(INSERT_SPANS).fetchone()[0]
        con.execute(INSERT_TRACES)
        con.execute("COMMIT")
    con.close()
    return spans, time.perf_counter() - t0


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    n, seconds = load(sorted(src.glob("part-*.jsonl")), dst, per_call=int(sys.argv[3]) if len(sys.argv) > 3 else 10)
    print(f"{n:,} spans in {seconds:.1f} s: {n / seconds:,.0f} spans/s")
