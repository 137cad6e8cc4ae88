"""`tracesieve demo` end to end: builds a store and drives a real stdio server like an agent."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]


def test_demo_builds_a_store_and_walks_the_agent_workflow(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    done = subprocess.run([sys.executable, "-m", "server", "demo", "--db", str(db), "--traces", "400"],
                          cwd=REPO, capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "Built demo store" in out and "400 traces" in out
    assert "Connected over stdio. Tools: describe_store, search_traces" in out
    tagged = int(re.search(r"Tag every tool-failure trace as an eval candidate.\n.*\n  matched (\d+), changed \1",
                           out).group(1))
    assert tagged > 0
    assert "Tagging again is idempotent." in out and f"matched {tagged}, changed 0" in out
    assert "Where does the time go in production this week?" in out and "of p95-tail latency" in out
    assert re.search(r"support-regressions@1 \(new\): \d+ records", out)
    assert "support-regressions@1, created=False" in out
    assert re.search(r"run run-[0-9a-f]+: \d+ items, status completed", out)
    assert "no model endpoint configured, so none was run" in out
    assert "recorded as reviewer 'demo-ground-truth'" in out
    assert re.search(r"exit code [012] \(", out)
    assert "live traces over the last 2 days streamed in" in out
    assert re.search(r"Run it as cron would.*\n(  \d\d-\d\dT\d\d:00 +\d+ traces .*\n){7,8}  exit code [01] ", out)
    assert "Did you mean 'attributes.status'?" in out
    assert "query_sql is read-only: DELETE statements are refused" in out
    con = duckdb.connect(str(db), read_only=True)
    stored = con.execute("SELECT count(*) FROM tags WHERE key = 'eval_candidate' AND value = 'error_case'").fetchone()[0]
    tool_errors = con.execute("SELECT count(DISTINCT trace_id) FROM spans WHERE span_type = 'TOOL' "
                              "AND status = 'ERROR' AND trace_id NOT LIKE 'live-%'").fetchone()[0]  # not the monitor's stream
    con.close()
    assert stored == tool_errors == tagged
