"""Operator switches for where redaction applies beyond datasets (read from the environment).

* ``TRACESIEVE_REDACT_JUDGE_INPUTS`` (default on): LLM-judge prompts are built from redacted items,
  because they leave for an external model endpoint. Turn off (``0``/``off``) only for a judge
  that must see the personal data itself (e.g. "did the reply leak the caller's email?") and a
  model the operator trusts with it.
* ``TRACESIEVE_REDACT_READS`` (default off): ``get_trace`` and ``search_traces`` results are
  redacted too, for deployments where the agent reading traces must not see personal data.
"""

from __future__ import annotations

import os

_OFF = ("0", "off", "false", "no")


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None or not raw.strip() else raw.strip().lower() not in _OFF


def judge_inputs_redacted() -> bool:
    return _flag("TRACESIEVE_REDACT_JUDGE_INPUTS", True)


def reads_redacted() -> bool:
    return _flag("TRACESIEVE_REDACT_READS", False)
