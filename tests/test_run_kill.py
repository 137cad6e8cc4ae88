"""A `tracesieve run` process killed with SIGKILL mid-run resumes without paying twice.

Everything is real: the CLI in a subprocess, an OpenAI-compatible scripted server on 127.0.0.1,
the store file, and the kill. Only the clock is advanced afterwards (the run's heartbeat is aged
past the staleness window) instead of waiting two minutes for it to go stale.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import trace
from tests.judge_processes import RUBRIC, judge_env, kill_after_calls, tracesieve
from tests.scripted_llm import scripted_llm

ITEMS = 30


def test_a_sigkilled_run_resumes_and_only_calls_the_model_for_unscored_items(tmp_path: Path) -> None:
    db = tmp_path / "kill.duckdb"
    DuckDBTraceStore(db).write_traces([trace(f"k{i:02d}", i, question=f"Question number {i}") for i in range(ITEMS)])
    with scripted_llm() as llm:
        llm.latency_s = 0.15
        env = judge_env(llm)
        defined = tracesieve(db, "judge", "define", "helpful", "--kind", "llm", "--criterion", "helpfulness",
                             "--spec", json.dumps(RUBRIC), env=env)
        assert defined.wait(60) == 0, defined.stderr.read()

        running = tracesieve(db, "run", "helpful", "--filter", "attributes.source = 'test'",
                             "--concurrency", "1", env=env)
        calls_before_kill = kill_after_calls(running, llm)
        assert calls_before_kill < ITEMS, "the run finished before it could be killed"

        con = duckdb.connect(str(db))
        (run_id, status), = con.execute("SELECT run_id, status FROM judge_runs").fetchall()
        kept = con.execute("SELECT count(*) FROM scores WHERE run_id = $r AND error IS NULL", {"r": run_id}).fetchone()[0]
        con.execute("UPDATE judge_runs SET heartbeat_ms = 1 WHERE run_id = $r", {"r": run_id})  # time passes
        con.close()
        assert status == "running" and kept >= 5

        resumed = tracesieve(db, "run", "--resume", run_id, "--concurrency", "4", env=env)
        out, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
        report = json.loads(out)
        assert report["run_id"] == run_id and report["status"] == "completed"
        assert report["judges"][0]["scored"] == ITEMS
        # finished items are not paid for again: only the items without a stored score were sent
        assert len(llm.requests) - calls_before_kill == ITEMS - kept
