"""Migration (speed): copies that let a search test tags and spans inside its time window.

* ``traces.tags``: the trace's current tags as one JSON object, kept in step with the ``tags``
  table by every write (see ``server.storage.duckdb.trace_tags_sql``).
* ``spans.trace_timestamp_ms``: the trace's timestamp on each of its spans. Spans are written
  with their trace, in time order, so a span filter inside a search's time window can skip the
  row groups of older spans (a trace's own timestamp need not bound its spans' start times:
  MLflow and Langfuse set it separately).
"""

SQL = """
    ALTER TABLE traces ADD COLUMN tags JSON DEFAULT '{}';
    UPDATE traces SET tags = d.doc
    FROM (SELECT g.trace_id, to_json(map(list(g.key ORDER BY g.key), list(g.value ORDER BY g.key))) AS doc
          FROM tags g GROUP BY g.trace_id) AS d
    WHERE traces.trace_id = d.trace_id;
    ALTER TABLE spans ADD COLUMN trace_timestamp_ms BIGINT;
    UPDATE spans SET trace_timestamp_ms = t.timestamp_ms FROM traces t WHERE spans.trace_id = t.trace_id;
"""
