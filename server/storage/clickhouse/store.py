"""ClickHouseTraceStore: ``tools.ports.TraceStore`` over ClickHouse (a server, or chdb in-process).

Same contract as the DuckDB store (``tests/contract/``): searches with the same filter language,
order and keyset page tokens; ``get_trace`` read by the piece (``trace_read``: a page of the tree
reads no span text); tags set and removed
by ids or by filter, the selection evaluated server-side in one ``INSERT … SELECT`` whose rows
are then the history and the new tag values alike; a ``describe_store`` summary.

All SQL goes through ``ClickHouseClient``: reads of replacing tables get ``FINAL`` there, values
are typed server-side parameters. ``query_sql`` runs on a separate read-only handle (``sql_sandbox``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from server.storage.clickhouse import filter_sql, migrations, page_query, sql_sandbox, trace_read
from server.storage.clickhouse.client import ClickHouseClient, next_version
from server.storage.clickhouse.writer import write_traces
from server.storage.span_type_sql import SPAN_TYPE_SQL
from server.storage.urls import StoreUrl
from tools import clock
from tools.errors import InvalidInputError
from tools.models import Span, Trace
from tools.ports import SearchPage, SqlResult, TagChange, TraceRow, WriteOutcome

_SPAN_FIELDS = ("span_id", "parent_span_id", "name", "span_type", "start_time_ns", "end_time_ns", "status",
                "status_message", "inputs", "outputs", "model", "input_tokens", "output_tokens", "tool_name",
                "attributes", "events")


class ClickHouseTraceStore:
    """Traces, spans and tags in one ClickHouse database (created and migrated on first use)."""

    #: What ``query_sql`` may read (ClickHouse SQL).
    sql_tables = sql_sandbox.QUERYABLE

    def __init__(self, client: ClickHouseClient, url: StoreUrl,
                 migration_lock: AbstractContextManager[Any] | None = None) -> None:
        self.client = client
        self.url = url
        self.location = url.display()
        self._sandbox: ClickHouseClient | None = None
        with migration_lock or nullcontext():
            self._migrate()

    @classmethod
    def open(cls, url: StoreUrl, migration_lock: AbstractContextManager[Any] | None = None) -> ClickHouseTraceStore:
        """Connect and migrate; ``migration_lock`` (the control plane's, when there is one) is held
        while migrating, so servers starting together on a new or older database migrate it once."""
        return cls(ClickHouseClient.connect(url), url, migration_lock)

    def _migrate(self) -> None:
        for statement in migrations.statements(0, cluster=self.url.cluster):
            self.client.command(str(statement))
        current = self.schema_version()
        if current > migrations.SCHEMA_VERSION:
            raise InvalidInputError(
                f"Store {self.location} has schema version {current}, newer than this tracesieve understands "
                f"({migrations.SCHEMA_VERSION}). Upgrade tracesieve or use another --store.")
        for version in range(current + 1, migrations.SCHEMA_VERSION + 1):
            for step in migrations.statements(version, cluster=self.url.cluster):
                if isinstance(step, migrations.Guarded):
                    if self.client.read(f"EXISTS TABLE {step.unless_table}")[0][0]:
                        continue
                    step = step.sql
                self.client.command(step)
            self.client.insert("schema_migrations", [(version, clock.now_ms())], ("version", "applied_at_ms"))

    def schema_version(self) -> int:
        return int(self.client.read("SELECT max(version) FROM schema_migrations")[0][0] or 0)

    # -- writes ------------------------------------------------------------------------------
    def write_traces(self, traces: Sequence[Trace], *, replace_before_ms: int | None = None) -> WriteOutcome:
        return write_traces(self.client, traces, now_ms=clock.now_ms(), replace_before_ms=replace_before_ms)

    # -- search ------------------------------------------------------------------------------
    def search(self, expr: Any, order: Sequence[Any], *, limit: int, after: dict | None,
               now_ms: int, count_cap: int | None = None) -> SearchPage:
        rows, total, exact = page_query.search_rows(self.client, expr, order, limit=limit, after=after,
                                                    now_ms=now_ms, count_cap=count_cap)
        tags = self._tags_of([r["trace_id"] for r in rows[:limit]])
        page = [TraceRow(**{**r, "tool_names": list(r["tool_names"]), "sort_values": list(r["sort_values"]),
                            "tags": tags.get(r["trace_id"], {})}) for r in rows[:limit]]
        return SearchPage(rows=page, has_more=len(rows) > limit, total_matches=total, total_exact=exact)

    def _tags_of(self, trace_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        tags: dict[str, dict[str, str]] = {}
        if trace_ids:
            for trace_id, key, value in self.client.read(
                    "SELECT trace_id, key, value FROM tags WHERE trace_id IN {ids:Array(String)} ORDER BY key",
                    {"ids": list(trace_ids)}):
                tags.setdefault(trace_id, {})[key] = value
        return tags

    # -- single traces -----------------------------------------------------------------------
    def load_trace(self, trace_id: str) -> Trace | None:
        found = self.client.read_dicts(
            "SELECT trace_id, timestamp_ms, execution_time_ms, status, name, request, response, session_id, user_id, "
            "model, prompt_version, environment, input_tokens, output_tokens, metadata, source, source_id "
            "FROM traces AS t WHERE t.trace_id = {id:String}", {"id": trace_id})
        if not found:
            return None
        spans = [Span(**{**s, "attributes": json.loads(s["attributes"] or "{}"),
                         "events": json.loads(s["events"] or "[]")})
                 for s in self.client.read_dicts(
                     f"SELECT {', '.join(_SPAN_FIELDS)} FROM spans WHERE trace_id = {{id:String}} "
                     "ORDER BY start_time_ns, span_id", {"id": trace_id})]
        record = found[0]
        record["metadata"] = json.loads(record["metadata"] or "{}")
        return Trace(**record, spans=spans, tags=self._tags_of([trace_id]).get(trace_id, {}))

    def trace_outline(self, trace_id: str, head: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        return trace_read.outline(self.client, trace_id, head, self._tags_of([trace_id]).get(trace_id, {}))

    def span_texts(self, trace_id: str, span_ids: list[str], head: int,
                   attributes: bool) -> dict[str, dict[str, Any]]:
        return trace_read.texts(self.client, trace_id, span_ids, head, attributes)

    def field_text(self, trace_id: str, span_id: str | None, field: str, offset: int,
                   length: int) -> tuple[str, int] | None:
        return trace_read.field_text(self.client, trace_id, span_id, field, offset, length)

    def known_trace_ids(self, trace_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(trace_ids))
        if not ids:
            return set()
        return {r[0] for r in self.client.read(
            "SELECT trace_id FROM traces WHERE trace_id IN {ids:Array(String)}", {"ids": ids})}

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]:
        return [r[0] for r in self.client.read(
            "SELECT trace_id FROM traces ORDER BY jaroWinklerSimilarity(trace_id, {id:String}) DESC, trace_id "
            "LIMIT {n:UInt32}", {"id": trace_id, "n": limit})]

    # -- tags --------------------------------------------------------------------------------
    def _selected(self, trace_ids: Sequence[str] | None, expr: Any, now_ms: int) -> tuple[str, dict[str, Any]]:
        """A subquery of the selected trace ids, and its parameters."""
        if trace_ids is not None:
            return ("SELECT trace_id FROM traces AS t WHERE t.trace_id IN {sel_ids:Array(String)}",
                    {"sel_ids": list(dict.fromkeys(trace_ids))})
        where, params = filter_sql.compile_filter(expr, now_ms=now_ms)
        return f"SELECT t.trace_id FROM traces AS t WHERE {where}", params

    def _change_tags(self, op: str, trace_ids: Sequence[str] | None, expr: Any, key: str, value: str | None,
                     by: str, now_ms: int) -> TagChange:
        """Record every change in ``tag_history`` with one ``INSERT … SELECT`` (the selection and the
        current values read server-side), then apply exactly those rows to ``tags``."""
        selected, params = self._selected(trace_ids, expr, now_ms)
        # Counted first: the change may make the filter stop matching (untag by a tag filter).
        matched = self.client.read(f"SELECT count() FROM ({selected})", params)[0][0]
        op_id = uuid.uuid4().hex
        args = {**params, "key": key, "value": value, "at": now_ms, "by": by, "op_id": op_id}
        current = "SELECT trace_id, value FROM tags WHERE key = {key:String}"
        if op == "set":
            change = f"""SELECT sel.trace_id, {{key:String}}, {{value:Nullable(String)}}, 'set', {{at:Int64}},
                                {{by:String}}, {{op_id:String}}
                         FROM ({selected}) AS sel LEFT JOIN ({current}) AS cur ON cur.trace_id = sel.trace_id
                         WHERE cur.trace_id = '' OR cur.value != {{value:Nullable(String)}}"""
        else:
            change = f"""SELECT cur.trace_id, {{key:String}}, cur.value, 'delete', {{at:Int64}}, {{by:String}},
                                {{op_id:String}}
                         FROM ({current}) AS cur WHERE cur.trace_id IN ({selected})"""
        self.client.command(f"INSERT INTO tag_history (trace_id, key, value, op, at_ms, set_by, op_id) {change}",
                            args)
        self.client.command(
            "INSERT INTO tags (trace_id, key, value, set_at_ms, set_by, version, is_deleted) "
            "SELECT trace_id, key, coalesce(value, ''), at_ms, set_by, {version:UInt64}, op = 'delete' "
            "FROM tag_history WHERE op_id = {op_id:String}", {"op_id": op_id, "version": next_version()})
        changed = self.client.read("SELECT count() FROM tag_history WHERE op_id = {op_id:String}",
                                   {"op_id": op_id})[0][0]
        return TagChange(matched=matched, changed=changed, unchanged=max(0, matched - changed))

    def set_tag(self, *, trace_ids: Sequence[str] | None, expr: Any, key: str, value: str, by: str,
                now_ms: int) -> TagChange:
        return self._change_tags("set", trace_ids, expr, key, value, by, now_ms)

    def remove_tag(self, *, trace_ids: Sequence[str] | None, expr: Any, key: str, by: str,
                   now_ms: int) -> TagChange:
        return self._change_tags("delete", trace_ids, expr, key, None, by, now_ms)

    def tag_history(self, trace_id: str) -> list[dict[str, Any]]:
        return self.client.read_dicts("SELECT key, value, op, at_ms, set_by FROM tag_history "
                                      "WHERE trace_id = {id:String} ORDER BY at_ms, op", {"id": trace_id})

    # -- overview ----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        def counts(sql: str) -> list[tuple[Any, int]]:
            return [(r[0], int(r[1])) for r in self.client.read(sql)]

        def counts_and_traces(table: str, column_sql: str, where_sql: str, limit: int | None = None
                              ) -> list[tuple[Any, int, int]]:
            """``(value, rows, distinct traces)``, as the DuckDB store's ``span_counts_sql`` counts them."""
            sql = (f"SELECT {column_sql} AS v, count() AS c, uniqExact(trace_id) FROM {table} {where_sql} "
                   f"GROUP BY v ORDER BY c DESC, v" + (f" LIMIT {int(limit)}" if limit else ""))
            return [(r[0], int(r[1]), int(r[2])) for r in self.client.read(sql)]

        n, first, last, spans = self.client.read(
            "SELECT count(), min(timestamp_ms), max(timestamp_ms), sum(span_count) FROM traces")[0]
        top = "GROUP BY 1 ORDER BY c DESC, 1 LIMIT 20"
        return {
            "trace_count": int(n), "span_count": int(spans or 0), "first_timestamp_ms": first if n else None,
            "last_timestamp_ms": last if n else None,
            "statuses": counts("SELECT status, count() AS c FROM traces GROUP BY 1 ORDER BY c DESC, 1"),
            "environments": counts(f"SELECT environment, count() AS c FROM traces WHERE environment IS NOT NULL {top}"),
            "models": counts(f"SELECT model, count() AS c FROM traces WHERE model IS NOT NULL {top}"),
            "prompt_versions": counts(
                f"SELECT prompt_version, count() AS c FROM traces WHERE prompt_version IS NOT NULL {top}"),
            "sources": counts("SELECT source, count() AS c FROM traces GROUP BY 1 ORDER BY c DESC, 1"),
            "span_types": counts_and_traces("spans", SPAN_TYPE_SQL, ""),
            "tools": counts_and_traces("spans", "tool_name", "WHERE tool_name IS NOT NULL", 20),
            "tag_keys": [
                {"key": k, "traces": int(c), "distinct_values": int(d), "top_values": list(v)}
                for k, c, d, v in self.client.read("""
                    SELECT key, sum(n) AS c, count() AS d, arraySlice(arrayMap(x -> x.2, arraySort(
                        x -> (-x.1, x.2), groupArray((n, value)))), 1, 3)
                    FROM (SELECT key, value, count() AS n FROM tags GROUP BY key, value)
                    GROUP BY key ORDER BY c DESC, key LIMIT 50""")
            ],
            "label_criteria": counts_and_traces("labels", "criterion", "", 50),
            "judges": counts_and_traces("scores", "judge", "", 50),
        }

    def query_sql(self, sql: str, *, limit: int) -> SqlResult:
        """One caller-written statement on a read-only handle with limits (see ``sql_sandbox``)."""
        if self._sandbox is None:
            self._sandbox = ClickHouseClient.sandbox(self.url, sql_sandbox.sandbox_settings())
        return sql_sandbox.run_query(self._sandbox, sql, limit=limit)

    def release(self) -> None:
        """Nothing to let go of: ClickHouse is shared by design (kept for the DuckDB store's callers)."""
