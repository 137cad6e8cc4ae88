"""ClickHouse adapter for the analysis tools: ``tools.analysis.profiling.ProfileStore`` and
``tools.analysis.error_patterns.ErrorStore`` (and the monitors' ``count_slower`` / ``error_data`` reads).

The twin of ``server/storage/duckdb/analytics_sql.py``: the same aggregation in SQL on the server,
Python only ever sees aggregates. The statements are in ``analytics_profile_sql`` and
``analytics_errors_sql``; this module picks the selection (the shared filter compiler), binds the
parameters (typed, ``a_*`` / ``e_*``, never clashing with the filter's ``p*``) and shapes the rows
into the models ``tools.analysis`` reads. Every read goes through ``ClickHouseClient.read_dicts``,
so the replacing tables are read ``FINAL``.
"""

from __future__ import annotations

from typing import Any

from server.storage.clickhouse import analytics_errors_sql as errors_sql
from server.storage.clickhouse import analytics_profile_sql as profile_sql
from server.storage.clickhouse import filter_sql
from server.storage.clickhouse.store import ClickHouseTraceStore
from tools.analysis.error_patterns import ErrorData, ErrorRequest, PatternRow, WindowCounts
from tools.analysis.profile_models import BREAKDOWNS, GroupRow, ProfileData, ProfileRequest, SpanStatsRow, TraceOverview


class ClickHouseAnalytics:
    """Profiles and error patterns computed inside ClickHouse over a ``ClickHouseTraceStore``'s database.
    ``control`` (the control plane) is accepted like every feature adapter's and not needed here."""

    def __init__(self, store: ClickHouseTraceStore, control: Any = None) -> None:
        self.store = store
        self._settings: str | None = None

    # -- plumbing ----------------------------------------------------------------------------
    def _read(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self._settings is None:
            self._settings = self._probe_settings()
        materialize = "enable_materialized_cte" in self._settings
        return self.store.client.read_dicts(profile_sql.materialized(sql, materialize) + "\n" + self._settings,
                                            params)

    def _probe_settings(self) -> str:
        """Materialised CTEs (ClickHouse 25.x+) compute each step once per statement; an older server
        lacks the setting and gets plain CTEs (the same answer, computed more than once)."""
        found = self.store.client.read("SELECT count() FROM system.settings WHERE name = 'enable_materialized_cte'")
        return profile_sql.SETTINGS + (", enable_materialized_cte = 1" if found[0][0] else "")

    def _selection(self, expr: Any, now_ms: int) -> tuple[str, dict[str, Any]]:
        return filter_sql.compile_filter(expr, now_ms=now_ms)

    # -- profile_traces ----------------------------------------------------------------------
    def profile_data(self, request: ProfileRequest) -> ProfileData:
        if request.trace_id is not None:
            where, params = "t.trace_id = {a_trace_id:String}", {"a_trace_id": request.trace_id}
        else:
            where, params = self._selection(request.expr, request.now_ms)
        group = request.group_by
        group_sql = profile_sql.GROUP_SQL[group.kind] if group else "CAST(NULL AS Nullable(String))"
        tag_join = ""
        if group and group.kind == "tag":
            params, tag_join = {**params, "a_tag": group.tag_key}, profile_sql.TAG_JOIN
        sel = profile_sql.selection_cte(where, group_sql, tag_join)
        overview = TraceOverview(**self._read(profile_sql.OVERVIEW_SQL.replace("{sel}", sel), params)[0])
        # longest key first: the SQL takes the first key that matches (DuckDB: arg_max by length)
        prices = sorted(request.prices, key=lambda p: -len(p.model))
        semi = "" if where == "1" else "WHERE s.trace_id IN (SELECT trace_id FROM a_sel)"
        pipeline = "WITH " + sel + "," + profile_sql.SPAN_ROWS_CTES.replace("{semi}", semi)
        params = {**params, "a_p95": overview.p95_ms, "a_pkeys": [p.model for p in prices],
                  "a_pdated": [p.model + "-" for p in prices],
                  "a_pin": [float(p.input_usd_per_mtok) for p in prices],
                  "a_pout": [float(p.output_usd_per_mtok) for p in prices], "a_top": request.top}
        breakdowns: dict[str, list[SpanStatsRow]] = {d: [] for d in BREAKDOWNS}
        sizes: dict[str, int] = {}
        spans, cost, unpriced = 0, None, []
        for row in self._read(pipeline + profile_sql.breakdown_sql(), params):
            dim, n = row.pop("dim"), row.pop("n")
            if dim == profile_sql.TOTAL:
                spans, cost = row["calls"], row["cost_usd"]
            elif dim == profile_sql.UNPRICED:
                unpriced.append(row["key"])
            else:
                sizes[dim] = n
                breakdowns[dim].append(SpanStatsRow(**row))
        groups, group_count = [], 0
        if group:
            by_time = group.kind in ("day", "hour")
            order = "group DESC" if by_time else "traces DESC, group ASC NULLS LAST"
            rows = self._read(pipeline + ",\n" + profile_sql.GROUPS_SQL.format(order=order), params)
            group_count = rows[0]["n"] if rows else 0
            groups = [GroupRow(**{k: v for k, v in r.items() if k != "n"}) for r in rows]
            if by_time:
                groups.reverse()
        return ProfileData(overview=overview.model_copy(update={"spans": spans}), breakdowns=breakdowns,
                           breakdown_sizes=sizes, cost_usd=cost, unpriced_models=sorted(unpriced), groups=groups,
                           group_count=group_count)

    def known_trace_ids(self, trace_ids: list[str]) -> set[str]:
        return self.store.known_trace_ids(trace_ids)

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]:
        return self.store.similar_trace_ids(trace_id, limit)

    # -- error_patterns ----------------------------------------------------------------------
    def newest_timestamp(self, expr: Any, now_ms: int) -> int | None:
        where, params = self._selection(expr, now_ms)
        return self.store.client.read(f"SELECT max(toNullable(t.timestamp_ms)) FROM traces AS t WHERE {where}",
                                      params)[0][0]

    def error_data(self, request: ErrorRequest) -> ErrorData:
        where, params = self._selection(request.expr, request.now_ms)
        params = {**params, "e_prev": request.previous_start_ms, "e_cur": request.current_start_ms,
                  "e_end": request.end_ms}
        win = errors_sql.window_cte(where)
        counts = {bool(row.pop("cur")): WindowCounts(**row)
                  for row in self._read(errors_sql.COUNTS_SQL.replace("{win}", win), params)}
        rule_params, error_type, message = errors_sql.error_rules(request)
        rows = self._read(errors_sql.patterns_sql(win, error_type, message),
                          {**params, **rule_params, "e_top": request.top, "e_examples": request.examples,
                           "e_chars": request.message_chars})
        pattern_count = rows[0]["n"] if rows else 0
        patterns = [PatternRow(**{k: v for k, v in r.items() if k != "n"}) for r in rows]
        return ErrorData(current=counts.get(True, WindowCounts()), previous=counts.get(False, WindowCounts()),
                         patterns=patterns, pattern_count=pattern_count)

    # -- the monitors' reads -----------------------------------------------------------------
    def count_slower(self, expr: Any, now_ms: int, start_ms: int, end_ms: int, threshold_ms: float) -> int:
        """Traces in (start, end] slower than ``threshold_ms`` (a latency monitor's tail count)."""
        where, params = self._selection(expr, now_ms)
        return int(self.store.client.read(
            f"SELECT count() FROM traces AS t WHERE ({where}) AND t.timestamp_ms > {{m_s:Int64}} "
            "AND t.timestamp_ms <= {m_e:Int64} AND t.execution_time_ms > {m_th:Float64}",
            {**params, "m_s": start_ms, "m_e": end_ms, "m_th": float(threshold_ms)})[0][0])
