"""Judges and runs: rule, LLM and classifier judges scoring datasets or live traffic.

``specs`` and ``registry`` (versioned definitions), ``rules`` / ``llm`` / ``classifier`` (the
three kinds), ``runs`` (resumable, cached, progress-reporting runs) and ``run_reports``. Needs
``ports.JudgeStore``, ``ports.ItemSource`` and, for LLM judges, ``ports.JudgeModel``.
"""
