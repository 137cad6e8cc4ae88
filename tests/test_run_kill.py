"""A `tracesieve run` process killed with SIGKILL mid-run resumes without paying twice.

Everything is real: the CLI in a subprocess, an OpenAI-compatible scripted server on 127.0.0.1,
the store file, and the kill. Only the clock is advanced afterwards (the run's heartbeat is aged
past the staleness window) instead of waiting two minutes for it to go stale.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import trace
from tests.scripted_llm import scripted_llm

REPO = Path(__file__).resolve().parents[1]
RUBRIC = {"type": "llm", "rubric": "Pass if the answer actually helps the customer.", "fields": ["input", "output"]}
ITEMS = 30


def tracesieve(db: Path, *args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "server", *args, "--db", str(db)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_sigkilled_run_resumes_and_only_calls_the_model_for_unscored_items(tmp_path: Path) -> None:
    db = tmp_path / "kill.duckdb"
    DuckDBTraceStore(db).write_traces([trace(f"k{i:02d}", i, question=f"Question number {i}") for i in range(ITEMS)])
    with scripted_llm() as llm:
        llm.latency_s = 0.15
        env = {**os.environ, "TRACESIEVE_JUDGE_BASE_URL": llm.base_url + "/v1", "TRACESIEVE_JUDGE_MODEL": "judge-mini",
               "OPENAI_API_KEY": "test-key", "TRACESIEVE_IDLE_RELEASE_MS": "0"}
        defined = tracesieve(db, "judge", "define", "helpful", "--kind", "llm", "--criterion", "helpfulness",
                             "--spec", json.dumps(RUBRIC), env=env)
        assert defined.wait(60) == 0, defined.stderr.read()

        running = tracesieve(db, "run", "helpful", "--filter", "attributes.source = 'test'",
                             "--concurrency", "1", env=env)
        deadline = time.monotonic() + 60
        while len(llm.requests) < 12 and time.monotonic() < deadline and running.poll() is None:
            time.sleep(0.02)
        time.sleep(0.6)  # past one score flush (every 0.5 s)
        os.kill(running.pid, signal.SIGKILL)
        running.wait(10)
        assert running.returncode == -signal.SIGKILL
        calls_before_kill = len(llm.requests)
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
