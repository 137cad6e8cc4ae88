"""A `tracesieve` process judging with the scripted model, and a `kill -9` in the middle of its calls.

Shared by the tests that prove a killed run (or monitor window) resumes without paying twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.scripted_llm import ScriptedLLM

REPO = Path(__file__).resolve().parents[1]
RUBRIC = {"type": "llm", "rubric": "Pass if the answer actually helps the customer.", "fields": ["input", "output"]}


def judge_env(llm: ScriptedLLM) -> dict[str, str]:
    """The environment that points a process's LLM judges at ``llm`` (and releases the store at once)."""
    return {**os.environ, "TRACESIEVE_JUDGE_BASE_URL": llm.base_url + "/v1", "TRACESIEVE_JUDGE_MODEL": "judge-mini",
            "OPENAI_API_KEY": "test-key", "TRACESIEVE_IDLE_RELEASE_MS": "0"}


def tracesieve(db: Path, *args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "server", *args, "--db", str(db)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after_calls(running: subprocess.Popen, llm: ScriptedLLM, calls: int = 12) -> int:
    """SIGKILL ``running`` once the model has had ``calls`` requests and a score flush has passed;
    returns how many calls were paid by then."""
    deadline = time.monotonic() + 60
    while len(llm.requests) < calls and time.monotonic() < deadline and running.poll() is None:
        time.sleep(0.02)
    time.sleep(0.6)  # past one score flush (every 0.5 s)
    os.kill(running.pid, signal.SIGKILL)
    running.wait(10)
    assert running.returncode == -signal.SIGKILL
    return len(llm.requests)
