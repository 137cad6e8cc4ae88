"""A store for the labelling-page tests: traces with PII, a judge's verdicts, reviewers.

Scores are inserted as ``run_judges`` writes them (as in ``tests/calibration_data.py``), with the
judge registered for its criterion so the page pairs them.
"""

from __future__ import annotations

import re
from pathlib import Path

from server.storage.duckdb.reviewers_sql import DuckDBReviewers
from server.storage.duckdb.store import DuckDBTraceStore
from tests.calibration_data import add_labels, add_scores
from tests.factory import trace

CRITERION = "citation_grounded"
JUDGE = "grounded"
N = 30
PRELABELLED = [f"c{i:02d}" for i in range(25, N)]  # labelled by bob before the page is used


def email(i: int) -> str:
    return f"maria.lopez{i}@example.com"


def judge_verdict(i: int) -> str:
    return "fail" if i % 3 == 0 else "pass"


def build(path: Path) -> DuckDBTraceStore:
    """``N`` traces ``c00``… whose request holds an email and a phone number; every fourth errored."""
    store = DuckDBTraceStore(path)
    store.write_traces([
        trace(f"c{i:02d}", i, question=f"I am {email(i)}, call me on +1 415 555 0{100 + i}. Where is order {i}?",
              status="ERROR" if i % 4 == 0 else "OK", tool_status="ERROR" if i % 5 == 0 else "OK")
        for i in range(N)])
    add_scores(store, "run-1", JUDGE, {f"c{i:02d}": judge_verdict(i) for i in range(N)})
    with store.writing() as con:  # an LLM judge's rationale may quote the trace's personal data
        con.execute("UPDATE scores SET rationale = 'grounded says ' || verdict || ': the reply to maria.lopez' || "
                    "CAST(substr(trace_id, 2) AS INTEGER) || '@example.com cites nothing it retrieved'")
        con.execute("INSERT INTO judges VALUES ($j, 'v1', 1, 'rule', $c, '{}', NULL, 0)", {"j": JUDGE, "c": CRITERION})
    add_labels(store, CRITERION, {t: judge_verdict(int(t[1:])) for t in PRELABELLED}, reviewer="bob")
    return store


def add_reviewer(store: DuckDBTraceStore, name: str, role: str = "reviewer") -> str:
    return DuckDBReviewers(store).add(name, role, now_ms=1)


def csrf(html: str) -> str:
    """The CSRF token of the first form on a page."""
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)
