"""The MCP surface: one thin tool per ``tools`` function, docstrings written for the model.

Each wrapper only builds the typed input, calls the logic in ``tools`` and returns its pydantic
result. ``surface.TracesieveServer`` shapes every result (budget, summary, one copy) and every
definition; ``toolsets`` decides which families of tools a server exposes.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from mcp.server import MCPServer

from server.mcp import completions, prompts, resources
from server.mcp import toolsets as toolset_registry
from server.mcp.grammar import GRAMMAR
from server.mcp.surface import TracesieveServer
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
Results are compact and paged: pass next_page_token / offset / span_offset back to continue. Every result
starts with `summary`; a `truncated_to_fit` note names the call that reads what did not fit.

Filter grammar (search_traces, profile_traces, error_patterns, and the filter of tag_trace, datasets, judges):
""" + GRAMMAR


def server_version() -> str:
    try:
        return version("tracesieve")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def build_app(store: Backend | TraceStore, *, toolsets: tuple[str, ...] | None = None,
              read_only: bool = False) -> MCPServer:
    """An MCP server over ``store`` (a backend, or an open DuckDB store); every call opens the store only
    for its own duration.

    ``toolsets`` defaults to every toolset (tests and ``tracesieve call`` reach every tool);
    ``tracesieve serve`` passes ``toolsets.resolve(--toolsets)``, whose default is smaller. A backend
    gets the toolsets whose feature stores it has (``toolsets.NEEDS``): the trace tools at least. ``read_only`` keeps only
    the tools annotated read-only.
    """
    backend = as_backend(store)
    mcp = TracesieveServer("tracesieve", instructions=INSTRUCTIONS, version=server_version())
    names = toolsets or tuple(toolset_registry.TOOLSETS)
    names = tuple(name for name in names if all(backend.has(family) for family in toolset_registry.NEEDS[name]))
    for name in names:
        toolset_registry.TOOLSETS[name].register(mcp, backend)
    for feature in (resources, prompts, completions):
        feature.register(mcp, backend)
    if read_only:   # the SDK lists registered tools (with their annotations) only through its manager
        for tool in mcp._tool_manager.list_tools():
            if not (tool.annotations and tool.annotations.read_only_hint):
                mcp.remove_tool(tool.name)
    return mcp
