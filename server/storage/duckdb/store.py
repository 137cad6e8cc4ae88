"""DuckDBTraceStore: the embedded reference implementation of ``tools.ports.TraceStore``.

Every method uses the process's kept connection (see ``connection.py``): reads hold the file
read-only, so several server processes can read at once; writes hold it read-write and run in
one transaction. Filters arrive as ASTs and are compiled to parameterised SQL here; no value
is ever spliced into a statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from server.storage.duckdb import completion_sql, filter_sql, page_query, time_order, trace_read, trace_tags_sql
from server.storage.duckdb.connection import (default_idle_release, default_lock_timeout, fetch_dicts, keeper_for,
                                              out_of_memory, transaction)
from server.storage.duckdb.id_lists import ids_in
from server.storage.duckdb.schema import MIGRATIONS, SCHEMA_VERSION
from server.storage.duckdb.sql_sandbox import run_query
from server.storage.duckdb.span_counts_sql import SPAN_TYPE_SQL, counts_and_traces
from server.storage.duckdb.writer import write_batch, write_tables
from tools import clock
from tools.errors import InvalidInputError
from tools.models import Span, Trace
from tools.ports import PreviousValue, SearchPage, SqlResult, TagChange, TraceRow, WriteOutcome


class DuckDBTraceStore:
    """A trace store in one DuckDB file (created and migrated on first use)."""

    def __init__(self, path: Path | str, *, lock_timeout_s: float | None = None,
                 idle_release_s: float | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        self.lock_timeout_s = default_lock_timeout() if lock_timeout_s is None else lock_timeout_s
        self.idle_release_s = default_idle_release() if idle_release_s is None else idle_release_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # -- connections -------------------------------------------------------------------------
    @property
    def _keeper(self):  # type: ignore[no-untyped-def]
        return keeper_for(self.path)

    def release(self) -> None:
        """Let go of the file now (otherwise it is released after ``idle_release_s`` without use)."""
        self._keeper.release()

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for the length of the block (other processes may read too)."""
        with self._keeper.use(write=False, lock_timeout_s=self.lock_timeout_s,
                              idle_release_s=self.idle_release_s) as con:
            try:
                yield con
            except duckdb.OutOfMemoryException as error:
                raise out_of_memory(error) from error

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection for the length of the block; use one transaction inside."""
        with self._keeper.use(write=True, lock_timeout_s=self.lock_timeout_s,
                              idle_release_s=self.idle_release_s) as con:
            yield con

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction: everything in the block lands, or nothing."""
        with self.writing() as con, transaction(con):
            yield con

    def _migrate(self) -> None:
        with self.writing() as con:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at_ms BIGINT)")
            current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise InvalidInputError(
                    f"Store {self.path} has schema version {current}, newer than this tracesieve "
                    f"understands ({SCHEMA_VERSION}). Upgrade tracesieve or use another --db.")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                with transaction(con):
                    con.execute(MIGRATIONS[version - 1])
                    con.execute("INSERT INTO schema_version VALUES ($v, $at)", {"v": version, "at": clock.now_ms()})

    def schema_version(self) -> int:
        with self.reading() as con:
            return con.execute("SELECT max(version) FROM schema_version").fetchone()[0]

    # -- writes ------------------------------------------------------------------------------
    def write_traces(self, traces: Sequence[Trace], *, replace_before_ms: int | None = None) -> WriteOutcome:
        with self.writing() as con:
            return write_batch(con, traces, now_ms=clock.now_ms(), replace_before_ms=replace_before_ms)

    def traces_out_of_place(self) -> tuple[int, int]:
        """``(traces, traces out of place)`` in storage order; see ``time_order.out_of_place``."""
        with self.reading() as con:
            return time_order.out_of_place(con, "traces")

    def put_in_time_order(self) -> time_order.TimeOrderReport:
        """Rewrite ``traces`` and ``spans`` in time order if a backfill left them out of it (see
        ``time_order``), then checkpoint so the old rows' space is free for later writes."""
        with self.writing() as con:
            with transaction(con):
                report = time_order.put_in_time_order(con)
            con.execute("CHECKPOINT")
            report.free_bytes = time_order.free_bytes(con)
        return report

    def write_tables(self, tables: dict[str, pa.Table], *, replace_before_ms: int | None = None) -> WriteOutcome:
        """Write a batch already converted by ``writer.to_arrow`` (in another process, say)."""
        with self.writing() as con:
            return write_tables(con, tables, replace_before_ms=replace_before_ms)

    # -- search ------------------------------------------------------------------------------
    def where(self, expr: Any, now_ms: int, *, window_param: str | None = None) -> tuple[str, dict[str, Any]]:
        """The filter as SQL over ``traces t`` (``TRUE`` for none); see ``filter_sql.compile_filter``."""
        return filter_sql.compile_filter(expr, now_ms=now_ms, alias="t", window_param=window_param)

    def search(self, expr: Any, order: Sequence[Any], *, limit: int, after: dict | None,
               now_ms: int, count_cap: int | None = None) -> SearchPage:
        where, params = self.where(expr, now_ms, window_param=page_query.WINDOW_PARAM)
        page_where, page_params = where, dict(params)
        upper_ms = None
        if after is not None:
            ks_sql, ks_params = filter_sql.keyset_predicate(order, after["values"], after["trace_id"], "t")
            page_where = f"({where}) AND ({ks_sql})"
            page_params.update(ks_params)
            if page_query.newest_first(order) and after["values"][0] is not None:
                upper_ms = int(after["values"][0])
        with self.reading() as con:
            windows = page_query.TimeWindows.of(con)
            total, exact = (page_query.count_matches(con, where, params, count_cap, windows) if count_cap
                            else (None, True))
            page = [] if (total, exact) == (0, True) else page_query.fetch_page(
                con, page_where, page_params, order, limit=limit, upper_ms=upper_ms, windows=windows)
        rows = [TraceRow(**{**r, "tool_names": r["tool_names"] or [], "tags": orjson.loads(r["tags"])})
                for r in page[:limit]]
        return SearchPage(rows=rows, has_more=len(page) > limit, total_matches=total, total_exact=exact)

    # -- single traces -----------------------------------------------------------------------
    def load_trace(self, trace_id: str) -> Trace | None:
        with self.reading() as con:
            cursor = con.execute("SELECT * EXCLUDE (span_count, error_count, tool_names, ingested_at_ms) "
                                 "FROM traces WHERE trace_id = $id", {"id": trace_id})
            row = cursor.fetchone()
            if row is None:
                return None
            record = dict(zip([d[0] for d in cursor.description], row))
            cursor = con.execute("SELECT * EXCLUDE (trace_id, trace_timestamp_ms) FROM spans WHERE trace_id = $id "
                                 "ORDER BY start_time_ns, span_id", {"id": trace_id})
            span_columns = [d[0] for d in cursor.description]
            spans = []
            for span_row in cursor.fetchall():
                span = dict(zip(span_columns, span_row))
                span["attributes"] = json.loads(span["attributes"] or "{}")
                span["events"] = json.loads(span["events"] or "[]")
                spans.append(Span(**span))
        record["metadata"] = json.loads(record["metadata"] or "{}")
        record["tags"] = orjson.loads(record["tags"])
        return Trace(**record, spans=spans)

    # Reading by the piece (see ``trace_read``): what get_trace returns, never the whole trace.
    def trace_outline(self, trace_id: str, head: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        with self.reading() as con:
            header = trace_read.header(con, trace_id, head)
            return None if header is None else (header, trace_read.skeleton(con, trace_id))

    def span_texts(self, trace_id: str, span_ids: list[str], head: int,
                   attributes: bool) -> dict[str, dict[str, Any]]:
        with self.reading() as con:
            return trace_read.texts(con, trace_id, span_ids, head, attributes)

    def field_text(self, trace_id: str, span_id: str | None, field: str, offset: int,
                   length: int) -> tuple[str, int] | None:
        with self.reading() as con:
            return trace_read.field_text(con, trace_id, span_id, field, offset, length)

    def completions(self, kind: str, prefix: str, context: dict[str, str], limit: int = 100) -> tuple[list[str], bool]:
        """Existing values of ``kind`` (dataset, judge, criterion, tag_key, ...) for argument completion."""
        with self.reading() as con:
            return completion_sql.candidates(con, kind, prefix, context, limit)

    def known_trace_ids(self, trace_ids: Sequence[str]) -> set[str]:
        with self.reading() as con:
            where, params = ids_in("trace_id", list(dict.fromkeys(trace_ids)))
            rows = con.execute(f"SELECT trace_id FROM traces WHERE {where}", params).fetchall()
        return {r[0] for r in rows}

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]:
        with self.reading() as con:
            rows = con.execute(
                "SELECT trace_id FROM traces ORDER BY jaro_winkler_similarity(trace_id, $id) DESC, trace_id "
                "LIMIT $n", {"id": trace_id, "n": limit}).fetchall()
        return [r[0] for r in rows]

    # -- tags --------------------------------------------------------------------------------
    def _selection(self, con: duckdb.DuckDBPyConnection, trace_ids: Sequence[str] | None, expr: Any,
                   now_ms: int, key: str) -> int:
        """Materialise the selected traces into temp table ``sel`` (trace_id, row id, the current
        value of tag ``key`` from ``traces.tags``); return how many there are."""
        if trace_ids is not None:
            where, params = ids_in("t.trace_id", list(dict.fromkeys(trace_ids)))
        else:
            where, params = self.where(expr, now_ms)
        return con.execute(f"""CREATE TEMP TABLE sel AS
                               SELECT t.trace_id, t.rowid AS rid, json_extract_string(t.tags, $sel_key) AS old
                               FROM traces t WHERE {where}""",
                           {**params, "sel_key": filter_sql.json_pointer(key)}).fetchone()[0]

    @staticmethod
    def _previous(con: duckdb.DuckDBPyConnection, value: str | None) -> tuple[int, list[PreviousValue]]:
        """How many selected traces (``sel``) hold another value of the key, and the most common ones."""
        rows = con.execute("""SELECT old, count(*) n, list(trace_id ORDER BY trace_id)[1:3], sum(count(*)) OVER ()
                              FROM sel WHERE old IS NOT NULL AND old IS DISTINCT FROM $value
                              GROUP BY old ORDER BY n DESC, old LIMIT 10""", {"value": value}).fetchall()
        total = int(rows[0][3]) if rows else 0
        return total, [PreviousValue(value=old, traces=n, example_trace_ids=list(ids)) for old, n, ids, _ in rows]

    def set_tag(self, *, trace_ids: Sequence[str] | None, expr: Any, key: str, value: str, by: str,
                now_ms: int) -> TagChange:
        args = {"key": key, "value": value, "at": now_ms, "by": by}
        changing = "FROM sel WHERE old IS DISTINCT FROM $value"
        with self.transaction() as con:
            matched = self._selection(con, trace_ids, expr, now_ms, key)
            replaced, previous = self._previous(con, value)
            changed = con.execute(f"INSERT INTO tag_history SELECT trace_id, $key, $value, 'set', $at, $by {changing}",
                                  args).fetchone()[0]
            if changed:
                con.execute(f"DELETE FROM tags WHERE key = $key AND trace_id IN (SELECT trace_id {changing})",
                            {"key": key, "value": value})
                con.execute(f"INSERT INTO tags SELECT trace_id, $key, $value, $at, $by {changing}", args)
                trace_tags_sql.patch(con, f"SELECT rid {changing}", key, value)
            con.execute("DROP TABLE sel")
        return TagChange(matched=matched, changed=changed, unchanged=matched - changed, replaced=replaced,
                         previous=previous)

    def remove_tag(self, *, trace_ids: Sequence[str] | None, expr: Any, key: str, by: str,
                   now_ms: int) -> TagChange:
        args = {"key": key, "at": now_ms, "by": by}
        with self.transaction() as con:
            matched = self._selection(con, trace_ids, expr, now_ms, key)
            replaced, previous = self._previous(con, None)
            changed = con.execute("INSERT INTO tag_history SELECT trace_id, $key, old, 'delete', $at, $by "
                                  "FROM sel WHERE old IS NOT NULL", args).fetchone()[0]
            if changed:
                con.execute("DELETE FROM tags WHERE key = $key AND trace_id IN (SELECT trace_id FROM sel)",
                            {"key": key})
                trace_tags_sql.patch(con, "SELECT rid FROM sel WHERE old IS NOT NULL", key, None)
            con.execute("DROP TABLE sel")
        return TagChange(matched=matched, changed=changed, unchanged=matched - changed, replaced=replaced,
                         previous=previous)

    def tag_history(self, trace_id: str) -> list[dict[str, Any]]:
        with self.reading() as con:
            return fetch_dicts(con.execute("SELECT key, value, op, at_ms, set_by FROM tag_history "
                                           "WHERE trace_id = $id ORDER BY at_ms, op", {"id": trace_id}))

    # -- overview & SQL ----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        def counts(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, int]]:
            return [(r[0], r[1]) for r in con.execute(sql).fetchall()]

        with self.reading() as con:
            n, first, last, spans = con.execute(
                "SELECT count(*), min(timestamp_ms), max(timestamp_ms), coalesce(sum(span_count), 0) "
                "FROM traces").fetchone()
            return {
                "trace_count": n, "span_count": int(spans), "first_timestamp_ms": first,
                "last_timestamp_ms": last,
                "statuses": counts(con, "SELECT status, count(*) c FROM traces GROUP BY 1 ORDER BY c DESC"),
                "environments": counts(con, "SELECT environment, count(*) c FROM traces "
                                            "WHERE environment IS NOT NULL GROUP BY 1 ORDER BY c DESC LIMIT 20"),
                "models": counts(con, "SELECT model, count(*) c FROM traces WHERE model IS NOT NULL "
                                      "GROUP BY 1 ORDER BY c DESC LIMIT 20"),
                "prompt_versions": counts(con, "SELECT prompt_version, count(*) c FROM traces WHERE "
                                               "prompt_version IS NOT NULL GROUP BY 1 ORDER BY c DESC LIMIT 20"),
                "sources": counts(con, "SELECT source, count(*) c FROM traces GROUP BY 1 ORDER BY c DESC"),
                # (value, rows, distinct traces): describe_store labels both (span_counts_sql)
                "span_types": counts_and_traces(con, "spans", SPAN_TYPE_SQL, ""),
                "tools": counts_and_traces(con, "spans", "tool_name", "WHERE tool_name IS NOT NULL", 20),
                "tag_keys": [
                    {"key": k, "traces": c, "distinct_values": d, "top_values": list(v)}
                    for k, c, d, v in con.execute("""
                        SELECT key, sum(n)::BIGINT AS c, count(*), list(value ORDER BY n DESC, value)[1:3]
                        FROM (SELECT key, value, count(*) n FROM tags GROUP BY 1, 2)
                        GROUP BY key ORDER BY c DESC, key LIMIT 50""").fetchall()
                ],
                "label_criteria": counts_and_traces(con, "labels", "criterion", "", 50),
                "judges": counts_and_traces(con, "scores", "judge", "", 50),
            }

    def query_sql(self, sql: str, *, limit: int) -> SqlResult:
        try:
            with self._keeper.sandboxed_cursor(lock_timeout_s=self.lock_timeout_s,
                                               idle_release_s=self.idle_release_s) as cursor:
                return run_query(cursor, sql, limit=limit)
        except InvalidInputError as error:  # DuckDB's own messages may name files beside the store
            text = str(error).replace(str(self.path.parent), "<store folder>")
            raise InvalidInputError(text) from error


class StoreFeature:
    """Base of the feature adapters (analytics, labels, …) over one ``DuckDBTraceStore``: they share
    its kept connection and answer trace-id questions the way the core store does."""

    def __init__(self, store: DuckDBTraceStore) -> None:
        self.store = store

    def known_trace_ids(self, trace_ids: Sequence[str]) -> set[str]:
        return self.store.known_trace_ids(trace_ids)

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]:
        return self.store.similar_trace_ids(trace_id, limit)
