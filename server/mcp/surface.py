"""TracesieveServer: what every tool result and definition costs an agent, decided in one place.

Each tool returns its pydantic result; the SDK would send it twice (indented JSON as text, compact
JSON as ``structuredContent``) with nulls and full-precision floats. Here, for every call:
- ``structuredContent`` is compact (``budget.compact``), begins with ``summary`` (``summaries``) and
  fits the hard result budget (``budget.fit``), with a ``truncated_to_fit`` note naming the next call
  if anything had to be cut;
- the text content is that summary (a tool that writes its own text, such as calibration_report's
  markdown, keeps it, within the budget); error text is bounded too.
And for ``tools/list``: schemas without titles and null wrappers (``schemas``), a title per tool.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult, TextContent, Tool

from server.mcp import budget, summaries
from server.mcp.client_log import ClientLog
from server.mcp.schemas import relax_output_schema, slim_input_schema
from server.mcp.strict_args import StrictArgumentsServer

#: The budget share a tool's own text (markdown) may use; the structured content gets the rest.
MAX_OWN_TEXT = 16_000
#: Titles that say more than the name does; the rest are the name in words.
TITLES = {"describe_store": "Describe the trace store", "query_sql": "Query traces with read-only SQL",
          "get_trace": "Read one trace", "tag_trace": "Tag traces", "untag_trace": "Remove a tag from traces",
          "calibration_report": "Judge vs human agreement", "compare_runs": "Compare two judge runs (release gate)",
          "annotation_queue": "Pick traces to label next", "run_judges": "Run judges"}
_ADDED_OUTPUT = {
    "summary": {"type": "string", "description": "Read first: the headline and the next call."},
    "truncated_to_fit": {"type": "string", "description": "Set when the result was cut to fit the token "
                                                          "budget: what was cut and the call that reads the rest."},
}


def title_for(name: str) -> str:
    return TITLES.get(name) or name.replace("_", " ").capitalize()


def _is_sdk_echo(text: str, structured: dict[str, Any]) -> bool:
    """True if ``text`` is only the SDK's indented copy of the structured content."""
    if not text.startswith("{"):
        return False
    try:
        return json.loads(text) == structured
    except ValueError:
        return False


class TracesieveServer(StrictArgumentsServer):
    _tools: list[Tool] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_log = ClientLog(self._lowlevel_server)

    async def list_tools(self) -> list[Tool]:
        if self._tools is None:
            self._tools = [tool.model_copy(update={
                "title": tool.title or title_for(tool.name),
                "input_schema": slim_input_schema(tool.input_schema),
                "output_schema": _with_added(relax_output_schema(tool.output_schema)),
            }) for tool in await super().list_tools()]
        return self._tools

    def add_tool(self, *args: Any, **kwargs: Any) -> None:
        super().add_tool(*args, **kwargs)
        self._tools = self._parameters = None   # definitions are shaped again on the next list

    def remove_tool(self, name: str) -> None:
        super().remove_tool(name)
        self._tools = self._parameters = None

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Any, Any] | None = None) -> CallToolResult | InputRequiredResult:
        try:
            result = await super().call_tool(name, arguments, context)
        except ToolError as error:
            if isinstance(error, UnexpectedToolError) or len(str(error)) <= budget.BUDGET_CHARS // 4:
                raise
            raise ToolError(str(error)[: budget.BUDGET_CHARS // 4] + "…[error text cut]") from error
        if not isinstance(result, CallToolResult) or result.is_error:
            return result
        shaped = self._shape(name, arguments, result)
        data = shaped.structured_content or {}
        if "truncated_to_fit" in data:
            await self.client_log.send(context, "warning", {"tool": name, "note": data["truncated_to_fit"]})
        await self.client_log.send(context, "info", {"tool": name, "summary": data.get("summary")})
        return shaped

    def _shape(self, name: str, arguments: dict[str, Any], result: CallToolResult) -> CallToolResult:
        structured = result.structured_content
        texts = [c for c in result.content if isinstance(c, TextContent)]
        others = [c for c in result.content if not isinstance(c, TextContent)]
        if structured is None:   # a tool without structured output: bound its text alone
            return result.model_copy(update={"content": [_bounded(t, budget.BUDGET_CHARS) for t in texts] + others})
        own = "\n\n".join(t.text for t in texts if not _is_sdk_echo(t.text, structured))[:MAX_OWN_TEXT]
        room = budget.BUDGET_CHARS - len(own) - 2 * summaries.MAX_SUMMARY - 900
        data, cuts = budget.fit(budget.compact(structured), room)
        parameters = (self._parameters or {}).get(name, [])
        note = budget.next_call(name, arguments, data, cuts, parameters) if cuts else None
        summary = summaries.summarize(name, data, note)
        shaped = {"summary": summary, **data}
        if note:
            shaped["truncated_to_fit"] = note
        text = own or summary   # a tool's own text (markdown) already leads with its headline
        return result.model_copy(update={"content": [TextContent(type="text", text=text), *others],
                                         "structured_content": shaped})


def _bounded(block: TextContent, limit: int) -> TextContent:
    if len(block.text) <= limit:
        return block
    return TextContent(type="text", text=block.text[:limit] + "…[cut to fit the result budget]")


def _with_added(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    return {**schema, "properties": {**_ADDED_OUTPUT, **schema.get("properties", {})}}
