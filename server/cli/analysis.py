"""CLI commands for the analysis feature: ``tracesieve profile`` and ``tracesieve errors``.

Same input models as the MCP tools, so validation and messages match; JSON by default,
``--markdown`` prints the result's markdown rendering for people.
"""

from __future__ import annotations

from typing import Any

import click

from server.cli.common import echo_result, open_backend, store_option
from server.errors import cli_errors
from server.storage.urls import StoreUrl
from tools.analysis import error_patterns as errors_tool
from tools.analysis import profiling
from tools.clock import now_ms

markdown_option = click.option("--markdown", "as_markdown", is_flag=True,
                               help="Print findings and tables as markdown instead of JSON.")


def _emit(result: profiling.ProfileTracesResult | errors_tool.ErrorPatternsResult, as_markdown: bool) -> None:
    if as_markdown:
        click.echo(result.markdown)
    else:
        echo_result(result)


def _analytics(url: StoreUrl, what: str) -> Any:
    """The store's analytics adapter (DuckDB or ClickHouse), or an error naming what is missing."""
    return open_backend(url).require_features(what, "analytics").analytics


def _parse_prices(items: tuple[str, ...]) -> dict[str, tuple[float, float]] | None:
    prices: dict[str, tuple[float, float]] = {}
    for item in items:
        model, _, numbers = item.partition("=")
        parts = numbers.split(",")
        try:
            if not model.strip() or len(parts) != 2:
                raise ValueError
            prices[model.strip()] = (float(parts[0]), float(parts[1]))
        except ValueError:
            raise click.BadParameter(f"{item!r} is not MODEL=INPUT,OUTPUT (USD per 1M tokens), "
                                     "e.g. --price gpt-4o=2.5,10", param_hint="--price") from None
    return prices or None


@click.command("profile")
@store_option
@click.argument("filter", default="")
@click.option("--trace-id", default=None, help="Profile one trace instead of a filter selection.")
@click.option("--group-by", default=None,
              help="environment | model | prompt_version | day | hour | tag:<key>.")
@click.option("--limit", type=click.IntRange(1, 50), default=10, show_default=True, help="Rows per table.")
@click.option("--price", "prices", multiple=True, metavar="MODEL=IN,OUT",
              help="USD per 1M tokens, overriding the built-in estimates (repeatable).")
@markdown_option
def profile_cmd(db: StoreUrl, filter: str, trace_id: str | None, group_by: str | None, limit: int,
                prices: tuple[str, ...], as_markdown: bool) -> None:
    """Where time, tokens and cost go in the traces FILTER selects (profile_traces).

    Per span type, span name, tool and model: calls, total/avg/p95 time, self time and its share of
    wall time and of p95-tail latency, tokens and estimated cost; largest contributors first.

    Example:

    \b
        tracesieve profile "tags.environment = 'production'" --group-by model --markdown
        tracesieve profile --trace-id tr-abc123
    """
    with cli_errors():
        inp = profiling.ProfileTracesInput(filter=filter, trace_id=trace_id, group_by=group_by, limit=limit,
                                           prices=_parse_prices(prices))
        result = profiling.profile_traces(_analytics(db, "tracesieve profile"), inp, now_ms=now_ms())
    _emit(result, as_markdown)


@click.command("errors")
@store_option
@click.argument("filter", default="")
@click.option("--window", default="24h", show_default=True, help="Window length: 30m, 24h, 7d, 2w.")
@click.option("--anchor", type=click.Choice(["now", "latest"]), default="now", show_default=True,
              help="End the window now, or at the newest matching trace (for exported data).")
@click.option("--limit", type=click.IntRange(1, 50), default=10, show_default=True, help="Max patterns.")
@markdown_option
def errors_cmd(db: StoreUrl, filter: str, window: str, anchor: str, limit: int, as_markdown: bool) -> None:
    """Error rate of the last WINDOW vs the one before, and the error patterns behind it (error_patterns).

    Errors are grouped by type, where they started and normalised message, with share of traffic,
    first/last seen, example trace ids and a redacted sample input.

    Example:

    \b
        tracesieve errors "tags.environment = 'production'" --window 24h --markdown
        tracesieve errors --window 7d --anchor latest
    """
    with cli_errors():
        inp = errors_tool.ErrorPatternsInput(filter=filter, window=window, anchor=anchor, limit=limit)
        result = errors_tool.error_patterns(_analytics(db, "tracesieve errors"), inp, now_ms=now_ms())
    _emit(result, as_markdown)


COMMANDS: list[click.Command] = [profile_cmd, errors_cmd]
