"""`tracesieve monitor run --once` killed with SIGKILL mid-window resumes that window: same judge run,
no score twice, and the model is asked only for the items without a stored score.

Real parts: the CLI in a subprocess, a scripted OpenAI-compatible server on 127.0.0.1, the store
file and the kill. Only the staleness wait (2 min) is skipped by ageing the heartbeats.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb

from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import BASE_MS, stored_rows, trace
from tests.judge_processes import RUBRIC, judge_env, kill_after_calls, tracesieve
from tests.scripted_llm import scripted_llm

ITEMS = 30
EVERY = 600_000


def test_a_sigkilled_monitor_run_resumes_its_window_without_paying_twice(tmp_path: Path) -> None:
    db = tmp_path / "kill.duckdb"
    since = (int(time.time() * 1000) // EVERY) * EVERY - 2 * EVERY      # two windows, both due
    minute = (since - BASE_MS) // 60_000 + 1
    DuckDBTraceStore(db).write_traces([trace(f"k{i:02d}", minute + i % 5, question=f"Question number {i}")
                                       for i in range(ITEMS)])
    with scripted_llm() as llm:
        llm.latency_s = 0.15
        env = judge_env(llm)
        for args in (("judge", "define", "helpful", "--kind", "llm", "--criterion", "helpfulness", "--spec",
                      json.dumps(RUBRIC)),
                     ("monitor", "define", "live", "--judge", "helpful", "--every", "10m", "--settle", "0m",
                      "--since", str(since))):
            done = tracesieve(db, *args, env=env)
            assert done.wait(60) == 0, done.stderr.read()

        running = tracesieve(db, "monitor", "run", "--once", env=env)
        paid_before_kill = kill_after_calls(running, llm)
        assert paid_before_kill < ITEMS, "the window finished before it could be killed"

        con = duckdb.connect(str(db))
        (run_id,), = con.execute("SELECT run_id FROM judge_runs").fetchall()
        kept = con.execute("SELECT count(*) FROM scores WHERE error IS NULL").fetchone()[0]
        assert con.execute("SELECT status FROM monitor_windows").fetchall() == [("running",)]
        con.execute("UPDATE judge_runs SET heartbeat_ms = 1")             # two minutes pass
        con.execute("UPDATE monitor_windows SET claimed_at_ms = 1")
        con.close()
        assert 0 < kept < ITEMS

        resumed = tracesieve(db, "monitor", "run", "--once", env=env)
        out, err = resumed.communicate(timeout=180)
        assert resumed.returncode == 0, err
        report = json.loads(out)
        assert [(w["status"], w["run_id"]) for w in report["windows"]] == [("completed", run_id), ("completed", None)]
        assert report["windows"][0]["sampled"] == ITEMS
        assert len(llm.requests) - paid_before_kill == ITEMS - kept     # only the unscored items were sent
    assert stored_rows(db, "SELECT count(*), count(DISTINCT record_id) FROM scores") == [(ITEMS, ITEMS)]
    assert stored_rows(db, "SELECT count(*) FROM judge_runs") == [(1,)]
    assert stored_rows(db, "SELECT status FROM monitor_windows ORDER BY end_ms") == [("completed",), ("completed",)]
