"""Prompts for the seeds' three workflows, so a person can start one by name in their host.

Each prompt is the sequence of tool calls the workflow needs, with the person's choices filled in;
the model then runs it. Argument values complete from the store (``completions``).
"""

from __future__ import annotations

from mcp.server import MCPServer

from server.storage.backend import Backend


def register(mcp: MCPServer, backend: Backend) -> None:   # noqa: ARG001 - same signature as toolsets
    """Add curate_eval_set, calibrate_judge and gate_release to ``mcp``."""

    @mcp.prompt(name="curate_eval_set", title="Curate an eval set from recent errors")
    def curate_eval_set(days: str = "7", tag_value: str = "error_case", dataset: str = "error_cases") -> str:
        """Turn the last N days of failing production traces into a versioned eval dataset."""
        return (
            f"Build an eval dataset from the last {days} days of errors with tracesieve:\n"
            f"1. search_traces(filter=\"attributes.status = 'ERROR' AND attributes.timestamp_ms > now() - {days}d\", "
            "fields=['status', 'request_preview', 'tool_names', 'tags']) and page through the results.\n"
            "2. Open a few distinct failures with get_trace; skip duplicates of the same failure.\n"
            f"3. tag_trace(key='eval_candidate', value='{tag_value}', trace_ids=[...]) on the ones worth keeping.\n"
            f"4. build_dataset_from_tags(name='{dataset}', tags=['eval_candidate={tag_value}']) and report the "
            "version, record count and strata.")

    @mcp.prompt(name="calibrate_judge", title="Calibrate a judge against human labels")
    def calibrate_judge(judge: str, criterion: str) -> str:
        """Collect human labels where they matter most and check whether a judge agrees with them."""
        return (
            f"Check whether judge '{judge}' agrees with people on '{criterion}':\n"
            f"1. annotation_queue(criterion='{criterion}', limit=20) for the traces most worth labelling.\n"
            "2. For each: get_trace, show me the request, response and the relevant spans, and ask me for "
            "pass or fail. Record my answer with label_trace (the server asks me to confirm it is mine).\n"
            f"3. calibration_report(judge='{judge}', criterion='{criterion}') and tell me the verdict, MCC with its "
            "interval, and the disagreements worth a second look.")

    @mcp.prompt(name="gate_release", title="Gate a release on two judge runs")
    def gate_release(baseline_run: str, candidate_run: str) -> str:
        """Decide whether a candidate regressed against the baseline, with calibrated judges only."""
        return (
            f"Decide whether run {candidate_run} regressed against {baseline_run}:\n"
            f"1. compare_runs(baseline_run='{baseline_run}', candidate_run='{candidate_run}').\n"
            "2. State the verdict and exit code first, then per judge the pass-rate delta with its interval and "
            "whether it gates (uncalibrated judges do not).\n"
            "3. For a regression, open two flipped items with get_trace and say what changed.")
