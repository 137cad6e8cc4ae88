"""The control-plane half of the monitors feature: monitor versions, windows and alerts (c005).

These rows decide what runs (a window is claimed once) and what the on-call sees (an alert is one
row while its condition lasts), so they live where transactions are: every change below is one
``ControlPlane.transaction()``. DuckDB's adapter (``server/storage/duckdb/monitors_sql.py``) got
exactly-once from its single writer; here a claim takes ``plane.lock`` on the window's key
(PostgreSQL: an advisory lock two servers queue on; SQLite: ``BEGIN IMMEDIATE`` already serialises
writers), re-reads the row, and the primary key on (monitor, version, end_ms) refuses a second
insert even if a lock were missed. The aggregates a window measures over ClickHouse are in
``server/storage/clickhouse/monitors_store.py``.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.storage.control.plane import ControlPlane
from tools.monitors.ports import AlertRecord, MonitorRecord, WindowRecord, WindowStats

_ALERT_COLUMNS = tuple(AlertRecord.model_fields)
_WINDOW_KEY = "monitor = :m AND version = :v AND end_ms = :e"
_FINISHED = "status IN ('completed', 'budget_stopped')"


def _monitor(row: sa.Row) -> MonitorRecord:
    values = row._asdict()
    return MonitorRecord(**{**values, "spec": json.loads(values["spec"])})


def _window(row: sa.Row) -> WindowRecord:
    values = row._asdict()
    return WindowRecord(**{**values, "target": json.loads(values["target"]) if values["target"] else None,
                           "stats": WindowStats.model_validate_json(values["stats"]) if values["stats"] else None})


def _alert(row: sa.Row) -> AlertRecord:
    values = row._asdict()
    return AlertRecord(**{**values, "evidence": json.loads(values["evidence"])})


class ControlMonitors:
    """Monitor versions, windows and alerts in a control plane (SQLite or PostgreSQL)."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control

    # -- monitor versions ----------------------------------------------------------------------
    def save_monitor(self, record: MonitorRecord) -> MonitorRecord:
        """Store a new version. Under the monitor's lock: a definition another server stored first
        is returned as stored, and a sequence number it took is not taken twice."""
        with self.control.transaction() as conn:
            self.control.lock(conn, "monitors:" + record.name)
            same = conn.execute(sa.text("SELECT * FROM monitors WHERE name = :n AND version = :v"),
                                {"n": record.name, "v": record.version}).first()
            if same is not None:
                return _monitor(same)
            top = conn.execute(sa.text("SELECT max(seq) FROM monitors WHERE name = :n"), {"n": record.name}).scalar()
            if top is not None and top >= record.seq:
                record = record.model_copy(update={"seq": top + 1})
            conn.execute(sa.text("INSERT INTO monitors (name, version, seq, spec, since_ms, created_at_ms) "
                                 "VALUES (:name, :version, :seq, :spec, :since, :at)"),
                         {"name": record.name, "version": record.version, "seq": record.seq,
                          "spec": json.dumps(record.spec), "since": record.since_ms, "at": record.created_at_ms})
        return record

    def monitor_versions(self, name: str) -> list[MonitorRecord]:
        with self.control.reading() as conn:
            rows = conn.execute(sa.text("SELECT * FROM monitors WHERE name = :n ORDER BY seq DESC"), {"n": name})
            return [_monitor(r) for r in rows]

    def latest_monitors(self) -> list[MonitorRecord]:
        with self.control.reading() as conn:
            rows = conn.execute(sa.text(
                "SELECT m.* FROM monitors m JOIN (SELECT name, max(seq) AS seq FROM monitors GROUP BY name) top "
                "ON top.name = m.name AND top.seq = m.seq ORDER BY m.name"))
            return [_monitor(r) for r in rows]

    # -- windows -------------------------------------------------------------------------------
    def get_window(self, monitor: str, version: str, end_ms: int) -> WindowRecord | None:
        with self.control.reading() as conn:
            row = conn.execute(sa.text(f"SELECT * FROM monitor_windows WHERE {_WINDOW_KEY}"),
                               {"m": monitor, "v": version, "e": end_ms}).first()
        return _window(row) if row is not None else None

    def claim_window(self, window: WindowRecord, *, stale_before_ms: int) -> bool:
        key = {"m": window.monitor, "v": window.version, "e": window.end_ms}
        try:
            with self.control.transaction() as conn:
                self.control.lock(conn, f"monitor_window:{window.monitor}:{window.version}:{window.end_ms}")
                row = conn.execute(sa.text(f"SELECT status, claimed_at_ms FROM monitor_windows WHERE {_WINDOW_KEY}"),
                                   key).first()
                if row is None:
                    conn.execute(sa.text("INSERT INTO monitor_windows (monitor, version, start_ms, end_ms, status, "
                                         "claimed_at_ms) VALUES (:m, :v, :s, :e, 'running', :at)"),
                                 {**key, "s": window.start_ms, "at": window.claimed_at_ms})
                    return True
                if row.status != "running" or row.claimed_at_ms > stale_before_ms:
                    return False
                # compare-and-set on the claim time read above: one of two stale takeovers wins
                taken = conn.execute(sa.text(f"UPDATE monitor_windows SET claimed_at_ms = :at WHERE {_WINDOW_KEY} "
                                             "AND status = 'running' AND claimed_at_ms = :old"),
                                     {**key, "at": window.claimed_at_ms, "old": row.claimed_at_ms})
                return taken.rowcount == 1
        except IntegrityError:   # another process inserted the same window first
            return False

    def release_window(self, monitor: str, version: str, end_ms: int) -> None:
        """Let the next run take a window that failed (the model was down) without waiting."""
        with self.control.transaction() as conn:
            conn.execute(sa.text(f"UPDATE monitor_windows SET claimed_at_ms = 0 WHERE {_WINDOW_KEY} "
                                 "AND status = 'running'"), {"m": monitor, "v": version, "e": end_ms})

    def set_window_run(self, monitor: str, version: str, end_ms: int, run_id: str | None,
                       target: dict[str, Any] | None) -> None:
        with self.control.transaction() as conn:
            conn.execute(sa.text(f"UPDATE monitor_windows SET run_id = :r, target = :t WHERE {_WINDOW_KEY}"),
                         {"r": run_id, "t": json.dumps(target) if target else None, "m": monitor, "v": version,
                          "e": end_ms})

    def finished_windows(self, monitor: str, version: str, *, before_end_ms: int | None,
                         limit: int) -> list[WindowRecord]:
        params: dict[str, Any] = {"m": monitor, "v": version, "lim": int(limit)}
        before = ""
        if before_end_ms is not None:
            before, params["b"] = "AND end_ms < :b", before_end_ms
        with self.control.reading() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM monitor_windows WHERE monitor = :m AND version = :v AND "
                                        f"{_FINISHED} {before} ORDER BY end_ms DESC LIMIT :lim"), params)
            return [_window(r) for r in rows]

    def finished_ends(self, monitor: str, version: str) -> set[int]:
        with self.control.reading() as conn:
            return set(conn.execute(sa.text(f"SELECT end_ms FROM monitor_windows WHERE monitor = :m AND "
                                            f"version = :v AND {_FINISHED}"), {"m": monitor, "v": version}).scalars())

    def finish_window(self, window: WindowRecord, *, new_alerts: list[AlertRecord], seen_alerts: list[AlertRecord],
                      resolved_ids: list[str], now_ms: int) -> None:
        with self.control.transaction() as conn:
            conn.execute(sa.text(f"UPDATE monitor_windows SET status = :st, run_id = :r, finished_at_ms = :f, "
                                 f"stats = :stats, note = :note WHERE {_WINDOW_KEY}"), {
                "st": window.status, "r": window.run_id, "f": window.finished_at_ms,
                "stats": window.stats.model_dump_json() if window.stats else None, "note": window.note,
                "m": window.monitor, "v": window.version, "e": window.end_ms})
            insert = sa.text(f"INSERT INTO monitor_alerts ({', '.join(_ALERT_COLUMNS)}) VALUES "
                             f"({', '.join(':' + c for c in _ALERT_COLUMNS)})")
            for alert in new_alerts:   # a resumed window may have stored these already: same id, keep one
                conn.execute(sa.text("DELETE FROM monitor_alerts WHERE alert_id = :id"), {"id": alert.alert_id})
                conn.execute(insert, {**alert.model_dump(), "evidence": json.dumps(alert.evidence)})
            for alert in seen_alerts:
                conn.execute(sa.text("UPDATE monitor_alerts SET last_window_end = :e, windows_seen = :n, "
                                     "evidence = :ev WHERE alert_id = :id"),
                             {"e": alert.last_window_end, "n": alert.windows_seen, "ev": json.dumps(alert.evidence),
                              "id": alert.alert_id})
            if resolved_ids:
                conn.execute(sa.text("UPDATE monitor_alerts SET status = 'resolved', resolved_at_ms = :at "
                                     "WHERE alert_id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                             {"at": now_ms, "ids": list(resolved_ids)})

    # -- alerts --------------------------------------------------------------------------------
    def _alerts(self, where: str, params: dict[str, Any], limit: int = 1000) -> list[AlertRecord]:
        with self.control.reading() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM monitor_alerts WHERE {where} "
                                        "ORDER BY created_at_ms DESC, alert_id LIMIT :lim"),
                                {**params, "lim": int(limit)})
            return [_alert(r) for r in rows]

    def live_alerts(self, monitor: str, version: str) -> list[AlertRecord]:
        return self._alerts("monitor = :m AND version = :v AND status IN ('open', 'acked')",
                            {"m": monitor, "v": version})

    def list_alerts(self, *, monitor: str | None, status: str | None, limit: int) -> list[AlertRecord]:
        where, params = ["1 = 1"], {}
        if monitor:
            where.append("monitor = :m")
            params["m"] = monitor
        if status:
            where.append("status = :s")
            params["s"] = status
        return self._alerts(" AND ".join(where), params, limit)

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        found = self._alerts("alert_id = :id", {"id": alert_id}, 1)
        return found[0] if found else None

    def ack_alert(self, alert_id: str, *, by: str, note: str | None, now_ms: int) -> None:
        with self.control.transaction() as conn:
            conn.execute(sa.text("UPDATE monitor_alerts SET status = 'acked', acked_at_ms = :at, acked_by = :by, "
                                 "ack_note = :note WHERE alert_id = :id AND status = 'open'"),
                         {"at": now_ms, "by": by, "note": note, "id": alert_id})

    def unnotified_alerts(self) -> list[AlertRecord]:
        return self._alerts("notified_at_ms IS NULL AND status = 'open'", {})

    def mark_notified(self, alert_ids: list[str], now_ms: int) -> None:
        if alert_ids:
            with self.control.transaction() as conn:
                conn.execute(sa.text("UPDATE monitor_alerts SET notified_at_ms = :at WHERE alert_id IN :ids"
                                     ).bindparams(sa.bindparam("ids", expanding=True)),
                             {"at": now_ms, "ids": list(alert_ids)})

    # -- the judge run a window created (judges family's c002 table) ----------------------------
    def find_run(self, target: dict[str, Any], judges: list[str]) -> str | None:
        """The run whose stored target and judges are exactly these. The SQL narrows by the
        window's ``now_ms`` as text (portable; JSON functions differ between SQLite and
        PostgreSQL), the exact comparison is on the parsed JSON."""
        now = target.get("now_ms")
        with self.control.reading() as conn:
            rows = conn.execute(sa.text("SELECT run_id, target, judges FROM judge_runs WHERE target LIKE :pat "
                                        "ORDER BY started_at_ms"), {"pat": f"%{now}%"}).all()
        for run_id, stored, stored_judges in rows:
            if json.loads(stored) == target and json.loads(stored_judges) == judges:
                return run_id
        return None
