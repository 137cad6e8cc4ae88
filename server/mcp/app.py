"""The MCP surface: one thin tool per ``tools`` function, docstrings written for the model.

Each wrapper only builds the typed input, calls the logic in ``tools`` and returns its pydantic
result (published as structured output). Parameter descriptions are the ``Annotated`` aliases
defined next to the logic, so the MCP schema, the CLI and the code cannot drift apart.
"""

from __future__ import annotations

from mcp.server import MCPServer

from server.mcp import analysis, calibration, datasets, judges, monitors, traces
from server.mcp.strict_args import StrictArgumentsServer
from server.storage.backend import Backend
from server.storage.factory import as_backend
from tools.ports import TraceStore

INSTRUCTIONS = """\
tracesieve turns production LLM/agent traces into evaluation assets. The loop, tool by tool:
1. Observe: describe_store (what is here and which fields filter) -> search_traces (MLflow-style filters, e.g.
   attributes.status = 'ERROR' AND tags.environment = 'production') -> get_trace (one trace's span tree; cut
   text ends in a marker naming the call that reads more) -> profile_traces / error_patterns (where time goes,
   what broke) -> query_sql (read-only SQL over trace_unified / otel_spans).
2. Curate: tag_trace (e.g. key 'eval_candidate', value 'error_case') -> build_dataset_from_tags (versioned,
   PII-redacted, optionally stratified) -> get_dataset / diff_datasets / merge_records / set_expectations.
3. Judge: define_judge (rule or LLM) / train_classifier_judge -> run_judges on a dataset@version or a live
   filter + window -> get_run_results(verdict='fail').
4. Calibrate and gate: annotation_queue -> label_trace -> calibration_report (does the judge agree with people?)
   -> compare_runs (did the candidate regress? only calibrated judges gate).
Results are compact and paged: pass next_page_token / offset / span_offset back to continue."""


def build_app(store: Backend | TraceStore) -> MCPServer:
    """An MCP server over ``store`` (a backend, or an open DuckDB store); every call opens the store only
    for its own duration. A backend without the feature stores gets the trace tools only."""
    backend = as_backend(store)
    mcp = StrictArgumentsServer("tracesieve", instructions=INSTRUCTIONS)
    traces.register(mcp, backend)
    if backend.features is not None:
        for toolset in (analysis, datasets, judges, calibration, monitors):
            toolset.register(mcp, backend)
    return mcp
