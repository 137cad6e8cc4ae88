"""Resources an agent host can attach to a conversation: the filter grammar, a trace, a dataset page.

Hosts let a person pick these (``@trace://tr-1`` in Claude Code, the MCP Inspector's Resources tab)
so a trace can be put in front of the model without a tool call. The content is exactly what the
tools return (``get_trace`` / ``get_dataset`` first page), as compact JSON within the same budget.
"""

from __future__ import annotations

import json

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import BaseModel

from server.mcp import budget
from server.mcp.grammar import GRAMMAR, GRAMMAR_URI
from server.storage.backend import Backend
from tools.datasets import builder
from tools.errors import TracesieveError
from tools.traces import view


def as_json(result: BaseModel) -> str:
    data, cuts = budget.fit(budget.compact(result.model_dump(mode="json")), budget.BUDGET_CHARS)
    if cuts:
        data["truncated_to_fit"] = "; ".join(f"{c.path}: kept {c.kept} of {c.total} {c.unit}" for c in cuts)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def register(mcp: MCPServer, backend: Backend) -> None:
    """Add the grammar resource and the trace and dataset templates to ``mcp`` (the dataset template
    where the store holds datasets)."""
    store = backend.traces

    @mcp.resource(GRAMMAR_URI, name="filter-grammar", title="Filter grammar", mime_type="text/plain",
                  description="The search filter language: fields, operators, time syntax and examples.")
    def filter_grammar() -> str:
        return GRAMMAR

    @mcp.resource("trace://{trace_id}", name="trace", title="A trace", mime_type="application/json",
                  description="One trace's header and first page of spans, as get_trace returns it.")
    def trace_resource(trace_id: str) -> str:
        try:
            return as_json(view.get_trace(store, view.GetTraceInput(trace_id=trace_id)))
        except TracesieveError as error:
            raise ResourceError(str(error)) from error

    if backend.features is None or backend.features.datasets is None:
        return
    datasets = backend.features.datasets

    @mcp.resource("dataset://{name}@{version}", name="dataset", title="A dataset version",
                  mime_type="application/json",
                  description="A dataset version's header and first 20 records, as get_dataset returns them.")
    def dataset_resource(name: str, version: str) -> str:
        if not version.isdigit():
            raise ResourceError(f"Version '{version}' is not a number. Use dataset://{name}@1 (list_datasets "
                                "shows the versions).")
        try:
            return as_json(builder.get_dataset(datasets, builder.GetDatasetInput(name=name, version=int(version))))
        except TracesieveError as error:
            raise ResourceError(str(error)) from error
