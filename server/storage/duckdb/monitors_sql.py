"""DuckDB adapter of the monitors feature (``tools.monitors.ports.MonitorStore``).

Monitor versions, windows and alerts live in the m009 tables. A window's claim is one
conditional INSERT/UPDATE on the write connection (DuckDB lets one writer in at a time), which is
what makes each window run once even with two ``monitor run`` processes on one store. Error
rate, p95 and error groups come from ``DuckDBAnalytics.error_data``, the SQL ``error_patterns``
uses, so a monitor and the daily health check never disagree about the same window.
"""

from __future__ import annotations

import json
from typing import Any

from server.storage.duckdb.analytics_sql import DuckDBAnalytics
from server.storage.duckdb.calibration_sql import DuckDBCalibrationStore
from server.storage.duckdb.connection import fetch_dicts
from server.storage.duckdb.store import DuckDBTraceStore
from tools.analysis.error_patterns import ErrorData, ErrorRequest
from tools.calibration.regression import CalibrationStatus
from tools.monitors.ports import AlertRecord, JudgeCount, MonitorRecord, Spend, WindowRecord, WindowStats

#: Slice fields a monitor may test per value: column of ``traces t``.
SLICE_SQL = {"model": "t.model", "environment": "t.environment", "prompt_version": "t.prompt_version",
             "name": "t.name"}
_ALERT_COLUMNS = tuple(AlertRecord.model_fields)


class DuckDBMonitorStore:
    def __init__(self, store: DuckDBTraceStore) -> None:
        self.store = store
        self._errors = DuckDBAnalytics(store)
        self._calibrations = DuckDBCalibrationStore(store)

    # -- monitor versions ----------------------------------------------------------------------
    def save_monitor(self, record: MonitorRecord) -> MonitorRecord:
        """Store a new version; in one transaction a definition stored first (by a concurrent
        request) is returned as stored, and a taken sequence number is not reused."""
        with self.store.transaction() as con:
            same = fetch_dicts(con.execute("SELECT * FROM monitors WHERE name = $n AND version = $v",
                                           {"n": record.name, "v": record.version}))
            if same:
                return self._monitor(same[0])
            top = con.execute("SELECT max(seq) FROM monitors WHERE name = $n", {"n": record.name}).fetchone()[0]
            if top is not None and top >= record.seq:
                record = record.model_copy(update={"seq": top + 1})
            con.execute("INSERT INTO monitors VALUES ($name, $version, $seq, $spec, $since, $at)", {
                "name": record.name, "version": record.version, "seq": record.seq, "spec": json.dumps(record.spec),
                "since": record.since_ms, "at": record.created_at_ms})
        return record

    @staticmethod
    def _monitor(row: dict[str, Any]) -> MonitorRecord:
        return MonitorRecord(**{**row, "spec": json.loads(row["spec"])})

    def monitor_versions(self, name: str) -> list[MonitorRecord]:
        with self.store.reading() as con:
            rows = fetch_dicts(con.execute("SELECT * FROM monitors WHERE name = $n ORDER BY seq DESC", {"n": name}))
        return [self._monitor(r) for r in rows]

    def latest_monitors(self) -> list[MonitorRecord]:
        with self.store.reading() as con:
            rows = fetch_dicts(con.execute("SELECT * FROM monitors QUALIFY row_number() OVER (PARTITION BY name "
                                           "ORDER BY seq DESC) = 1 ORDER BY name"))
        return [self._monitor(r) for r in rows]

    # -- windows -------------------------------------------------------------------------------
    @staticmethod
    def _window(row: dict[str, Any]) -> WindowRecord:
        return WindowRecord(**{**row, "target": json.loads(row["target"]) if row["target"] else None,
                               "stats": WindowStats.model_validate_json(row["stats"]) if row["stats"] else None})

    def get_window(self, monitor: str, version: str, end_ms: int) -> WindowRecord | None:
        with self.store.reading() as con:
            rows = fetch_dicts(con.execute("SELECT * FROM monitor_windows WHERE monitor = $m AND version = $v AND "
                                           "end_ms = $e", {"m": monitor, "v": version, "e": end_ms}))
        return self._window(rows[0]) if rows else None

    def claim_window(self, window: WindowRecord, *, stale_before_ms: int) -> bool:
        key = {"m": window.monitor, "v": window.version, "e": window.end_ms}
        with self.store.transaction() as con:
            row = con.execute("SELECT status, claimed_at_ms FROM monitor_windows WHERE monitor = $m AND version = $v "
                              "AND end_ms = $e", key).fetchone()
            if row is None:
                con.execute("INSERT INTO monitor_windows (monitor, version, start_ms, end_ms, status, claimed_at_ms) "
                            "VALUES ($m, $v, $s, $e, 'running', $at)", {**key, "s": window.start_ms,
                                                                      "at": window.claimed_at_ms})
                return True
            if row[0] != "running" or row[1] > stale_before_ms:
                return False
            con.execute("UPDATE monitor_windows SET claimed_at_ms = $at WHERE monitor = $m AND version = $v AND "
                        "end_ms = $e", {**key, "at": window.claimed_at_ms})
            return True

    def release_window(self, monitor: str, version: str, end_ms: int) -> None:
        """Let the next run take a window that failed (the model was down) without waiting."""
        with self.store.writing() as con:
            con.execute("UPDATE monitor_windows SET claimed_at_ms = 0 WHERE monitor = $m AND version = $v AND "
                        "end_ms = $e AND status = 'running'", {"m": monitor, "v": version, "e": end_ms})

    def set_window_run(self, monitor: str, version: str, end_ms: int, run_id: str | None,
                       target: dict[str, Any] | None) -> None:
        with self.store.writing() as con:
            con.execute("UPDATE monitor_windows SET run_id = $r, target = $t WHERE monitor = $m AND version = $v "
                        "AND end_ms = $e", {"r": run_id, "t": json.dumps(target) if target else None, "m": monitor,
                                            "v": version, "e": end_ms})

    def finished_windows(self, monitor: str, version: str, *, before_end_ms: int | None,
                         limit: int) -> list[WindowRecord]:
        where = "AND end_ms < $b" if before_end_ms is not None else ""
        params: dict[str, Any] = {"m": monitor, "v": version}
        if before_end_ms is not None:
            params["b"] = before_end_ms
        with self.store.reading() as con:
            rows = fetch_dicts(con.execute(f"""SELECT * FROM monitor_windows WHERE monitor = $m AND version = $v
                AND status IN ('completed', 'budget_stopped') {where} ORDER BY end_ms DESC LIMIT {int(limit)}""",
                                           params))
        return [self._window(r) for r in rows]

    def finished_ends(self, monitor: str, version: str) -> set[int]:
        with self.store.reading() as con:
            return {r[0] for r in con.execute("SELECT end_ms FROM monitor_windows WHERE monitor = $m AND version = $v "
                                              "AND status IN ('completed', 'budget_stopped')",
                                              {"m": monitor, "v": version}).fetchall()}

    def finish_window(self, window: WindowRecord, *, new_alerts: list[AlertRecord], seen_alerts: list[AlertRecord],
                      resolved_ids: list[str], now_ms: int) -> None:
        with self.store.transaction() as con:
            con.execute("""UPDATE monitor_windows SET status = $st, run_id = $r, finished_at_ms = $f, stats = $stats,
                           note = $note WHERE monitor = $m AND version = $v AND end_ms = $e""", {
                "st": window.status, "r": window.run_id, "f": window.finished_at_ms,
                "stats": window.stats.model_dump_json() if window.stats else None, "note": window.note,
                "m": window.monitor, "v": window.version, "e": window.end_ms})
            for alert in new_alerts:   # a resumed window may have stored these already: same id, keep one
                con.execute("DELETE FROM monitor_alerts WHERE alert_id = $id", {"id": alert.alert_id})
                values = alert.model_dump()
                values["evidence"] = json.dumps(values["evidence"])
                con.execute(f"INSERT INTO monitor_alerts ({', '.join(_ALERT_COLUMNS)}) VALUES "
                            f"({', '.join('$' + c for c in _ALERT_COLUMNS)})", values)
            for alert in seen_alerts:
                con.execute("UPDATE monitor_alerts SET last_window_end = $e, windows_seen = $n, evidence = $ev "
                            "WHERE alert_id = $id", {"e": alert.last_window_end, "n": alert.windows_seen,
                                                     "ev": json.dumps(alert.evidence), "id": alert.alert_id})
            if resolved_ids:
                con.execute("UPDATE monitor_alerts SET status = 'resolved', resolved_at_ms = $at WHERE alert_id IN "
                            "(SELECT unnest($ids))", {"at": now_ms, "ids": resolved_ids})

    # -- alerts --------------------------------------------------------------------------------
    def _alerts(self, where: str, params: dict[str, Any], limit: int = 1000) -> list[AlertRecord]:
        with self.store.reading() as con:
            rows = fetch_dicts(con.execute(f"SELECT * FROM monitor_alerts WHERE {where} "
                                           f"ORDER BY created_at_ms DESC, alert_id LIMIT {int(limit)}", params))
        return [AlertRecord(**{**r, "evidence": json.loads(r["evidence"])}) for r in rows]

    def live_alerts(self, monitor: str, version: str) -> list[AlertRecord]:
        return self._alerts("monitor = $m AND version = $v AND status IN ('open', 'acked')",
                            {"m": monitor, "v": version})

    def list_alerts(self, *, monitor: str | None, status: str | None, limit: int) -> list[AlertRecord]:
        where, params = ["TRUE"], {}
        if monitor:
            where.append("monitor = $m")
            params["m"] = monitor
        if status:
            where.append("status = $s")
            params["s"] = status
        return self._alerts(" AND ".join(where), params, limit)

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        found = self._alerts("alert_id = $id", {"id": alert_id}, 1)
        return found[0] if found else None

    def ack_alert(self, alert_id: str, *, by: str, note: str | None, now_ms: int) -> None:
        with self.store.writing() as con:
            con.execute("UPDATE monitor_alerts SET status = 'acked', acked_at_ms = $at, acked_by = $by, "
                        "ack_note = $note WHERE alert_id = $id AND status = 'open'",
                        {"at": now_ms, "by": by, "note": note, "id": alert_id})

    def unnotified_alerts(self) -> list[AlertRecord]:
        return self._alerts("notified_at_ms IS NULL AND status = 'open'", {})

    def mark_notified(self, alert_ids: list[str], now_ms: int) -> None:
        if alert_ids:
            with self.store.writing() as con:
                con.execute("UPDATE monitor_alerts SET notified_at_ms = $at WHERE alert_id IN (SELECT unnest($ids))",
                            {"at": now_ms, "ids": alert_ids})

    # -- what a window measures ----------------------------------------------------------------
    def find_run(self, target: dict[str, Any], judges: list[str]) -> str | None:
        with self.store.reading() as con:
            rows = con.execute("SELECT run_id, target, judges FROM judge_runs WHERE "
                               "json_extract(target, '$.now_ms')::BIGINT = $now ORDER BY started_at_ms",
                               {"now": target.get("now_ms")}).fetchall()
        for run_id, stored, stored_judges in rows:
            if json.loads(stored) == target and json.loads(stored_judges) == judges:
                return run_id
        return None

    def window_counts(self, run_id: str, slice_by: list[str]) -> list[JudgeCount]:
        parts = ["NULL::VARCHAR"] + [f"'{f}=' || coalesce({SLICE_SQL[f]}, '(none)')" for f in slice_by]
        union = " UNION ALL ".join(f"""
            SELECT s.judge, {expr} AS slice, count(*) FILTER (WHERE s.verdict = 'pass') AS passed,
                   count(*) FILTER (WHERE s.verdict = 'fail') AS failed,
                   count(*) FILTER (WHERE s.verdict = 'unknown') AS unknown
            FROM scores s LEFT JOIN traces t ON t.trace_id = s.trace_id WHERE s.run_id = $r GROUP BY ALL"""
                                   for expr in parts)
        with self.store.reading() as con:
            rows = fetch_dicts(con.execute(f"SELECT * FROM ({union}) ORDER BY judge, slice NULLS FIRST",
                                           {"r": run_id}))
        return [JudgeCount(**r) for r in rows]

    def run_spend(self, run_id: str) -> Spend:
        with self.store.reading() as con:
            row = con.execute("""SELECT count(*) FILTER (WHERE cache_key IS NOT NULL AND NOT coalesce(cached, FALSE)),
                                        coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
                                        coalesce(sum(cost_usd), 0), count(*) FILTER (WHERE cached)
                                 FROM scores WHERE run_id = $r""", {"r": run_id}).fetchone()
        return Spend(calls=row[0], input_tokens=row[1], output_tokens=row[2], usd=row[3], cache_hits=row[4])

    def count_slower(self, expr: Any, now_ms: int, start_ms: int, end_ms: int, threshold_ms: float) -> int:
        where, params = self.store.where(expr, now_ms)
        with self.store.reading() as con:
            return con.execute(f"""SELECT count(*) FROM traces t WHERE ({where}) AND t.timestamp_ms > $m_s
                                   AND t.timestamp_ms <= $m_e AND t.execution_time_ms > $m_th""",
                               {**params, "m_s": start_ms, "m_e": end_ms, "m_th": threshold_ms}).fetchone()[0]

    def error_data(self, request: ErrorRequest) -> ErrorData:
        return self._errors.error_data(request)

    def latest_calibrations(self, judges: list[str]) -> dict[str, CalibrationStatus]:
        return self._calibrations.latest_calibrations(judges)
