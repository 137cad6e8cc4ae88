"""The ``tracesieve`` command: serve, ingest, the tools as commands, ``call`` and ``demo``.

Commands parse arguments, call the same ``tools`` functions the MCP server calls (on the same
input models, so validation matches), and print JSON (default) or a table. Errors go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import click

from server.cli import analysis, calibration, datasets, judges, live, monitors, reviewers
from server.cli.common import echo_result, open_backend, store_option, table_option
from server.errors import cli_errors
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.factory import StoreUrl
from server.storage.duckdb.time_order import worth_rewriting
from tools.traces import describe, search, tagging, view
from tools.traces import sql as sql_tool
from tools.clock import now_ms

#: Each feature module contributes its commands; the group is assembled at the bottom.
FEATURE_COMMANDS = (analysis.COMMANDS, datasets.COMMANDS, judges.COMMANDS, calibration.COMMANDS, monitors.COMMANDS,
                    reviewers.COMMANDS, live.COMMANDS)


@click.group()
@click.version_option(package_name="tracesieve")
def cli() -> None:
    """tracesieve: turn production LLM/agent traces into evaluation assets, over MCP."""
    logging.basicConfig(level=os.environ.get("TRACESIEVE_LOG", "WARNING"), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@store_option
@click.option("--http", "use_http", is_flag=True, help="Serve streamable HTTP instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP bind address.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535), help="HTTP port.")
@click.option("--token", envvar="TRACESIEVE_TOKEN", default=None,
              help="Bearer token clients must send (env TRACESIEVE_TOKEN); required off loopback.")
@click.option("--monitor", "with_monitor", is_flag=True, help="Also run due monitor windows in this process.")
@click.option("--toolsets", envvar="TRACESIEVE_TOOLSETS", default="default", show_default=True,
              help="Comma-separated toolsets to expose: default (traces, analysis, datasets), all, observe, curate, "
                   "judge, calibrate, monitor, or traces/analysis/datasets/judges/calibration/monitors (env TRACESIEVE_TOOLSETS).")
@click.option("--read-only", is_flag=True, help="Expose only the tools that never write.")
def serve(db: StoreUrl, use_http: bool, host: str, port: int, token: str | None, with_monitor: bool, toolsets: str,
          read_only: bool) -> None:
    """Run the MCP server (stdio by default).

    Example:

        claude mcp add tracesieve -- tracesieve serve --db /path/to/traces.duckdb --toolsets all
    """
    from server.http.transport import serve_http
    from server.mcp import toolsets as toolset_registry
    from server.mcp.app import build_app

    with cli_errors():
        backend = open_backend(db)
        app = build_app(backend, toolsets=toolset_registry.resolve(toolsets), read_only=read_only)
        if with_monitor:
            from server.monitoring.loop import start_background

            start_background(backend.require_features("Monitors", "monitors", "judges"))
        if use_http:
            from server.http.otlp_receiver import OtlpReceiver

            # the labelling page needs the labelling family; the OTLP receiver writes to any engine
            label_store = backend if all(backend.has(f) for f in ("reviewers", "review", "queue")) else None
            otlp = OtlpReceiver(backend.traces)
            serve_http(app, host=host, port=port, token=token, store=label_store, otlp=otlp)
        else:
            app.run("stdio")


@cli.command()
@store_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", "otlp", "mlflow", "langfuse", "otel-python", "otel-js",
                                                    "phoenix"]), default="auto",
              show_default=True, help="Input format; auto sniffs each file (gzipped .gz files too).")
@click.option("--from-mlflow", "tracking_uri", default=None,
              help="Read live traces from an MLflow tracking URI (e.g. sqlite:///mlflow.db or http://host:5000).")
@click.option("--experiment", default=None, help="With --from-mlflow: experiment name or id (default: all).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes reading files at once (default: TRACESIEVE_INGEST_WORKERS, else one per core; "
                   "1 reads in this process). Only loads of several files and 16 MiB or more use them.")
@click.option("--replace", is_flag=True, help="Replace traces stored by an earlier load whole (a corrected "
              "export), instead of adding and updating their spans.")
def ingest(db: StoreUrl, paths: tuple[Path, ...], fmt: str, tracking_uri: str | None, experiment: str | None,
           workers: int | None, replace: bool) -> None:
    """Load traces from files/folders (OTLP JSON or protobuf, MLflow JSON, Langfuse, OTel Python/JS span dumps,
    Phoenix span exports; gzipped too) or an MLflow server.

    Spans are upserted by (trace id, span id): a trace split over files or loads gets every span, a
    span sent again replaces its copy, nothing stored is dropped (--replace drops an earlier load's
    copy of each trace read). The report counts stored spans (new, updated, unchanged). Bad files
    or traces are reported and skipped; the rest load.

    Example:

        tracesieve ingest exports/ --format auto
        tracesieve ingest --from-mlflow sqlite:///mlflow.db --experiment support-agent
    """
    from server.ingestion.pipeline import IngestReport
    from server.ingestion.pipeline import ingest as run_ingest
    from server.ingestion import list_files, read_mlflow_tracking
    from server.ingestion.parallel import ingest_files

    if not paths and not tracking_uri:
        raise click.UsageError("Give PATHS to read, or --from-mlflow TRACKING_URI.")
    with cli_errors():
        backend = open_backend(db)
        store = backend.traces
        if backend.engine != "duckdb":
            workers = 1  # the worker processes hand the DuckDB writer Arrow tables; other engines take traces
        files = [file for path in paths for file in list_files(path)]
        report = IngestReport()
        replace_before_ms = now_ms() if replace else None
        # Progress in bytes of input read; batches still span files, so many small files stay cheap.
        with click.progressbar(length=sum(f.stat().st_size for f in files) or 1, label="ingesting",
                               file=sys.stderr) as bar:
            ingest_files(store, files, fmt, workers=workers, report=report,  # type: ignore[arg-type]
                         on_file=lambda file: bar.update(file.stat().st_size), replace_before_ms=replace_before_ms)
        if tracking_uri:
            run_ingest(store, read_mlflow_tracking(tracking_uri, experiment), report=report,
                       replace_before_ms=replace_before_ms)
        hint = _optimize_hint(store, db.path) if report.traces and isinstance(store, DuckDBTraceStore) else None
    click.echo(json.dumps(report.model_dump(), indent=2))
    if hint:
        click.echo(hint, err=True)
    if report.error_count and not report.traces:
        sys.exit(1)


def _optimize_hint(store: DuckDBTraceStore, db: Path) -> str | None:
    """A note for stderr when the load left the store out of time order (a backfill, typically)."""
    traces, out_of_place = store.traces_out_of_place()
    if not worth_rewriting(traces, out_of_place):
        return None
    return (f"note: {out_of_place / traces:.0%} of the stored traces are out of time order (files that each cover "
            f"the whole period, as a backfill's do), so searches cannot skip old data. Run "
            f"`tracesieve optimize --db {db}` once to put them in order.")


@cli.command("optimize")
@store_option
def optimize_cmd(db: StoreUrl) -> None:
    """Put stored traces and spans back in time order after a backfill, so searches read less.

    Searches read the newest traces first and skip the parts of the file outside their time
    window, which works when rows were stored roughly in time order, as live traffic arrives.
    Export files that each cover the whole period interleave all of it; run this once after
    loading them. Everything stays as it was (one transaction), and a store already in order is
    left alone. It needs the store to itself for the rewrite (about 20 s per 100k traces).

    On ClickHouse (chdb:// or clickhouse://) it runs OPTIMIZE TABLE … FINAL on the replacing tables
    instead: re-sent spans, superseded rows and the rows under tombstones are folded into one row
    per key now, so reads do less work; what reads return does not change. Before that it sweeps
    dataset records that no committed version names (a writer killed mid-write) once they are an
    hour old: nothing ever read them.

    Example:

        tracesieve ingest exports/ && tracesieve optimize
        tracesieve optimize --store chdb:///path/to/folder
    """
    if db.engine != "duckdb":
        from server.storage.clickhouse.optimize import fold_replacing_tables

        with cli_errors():
            backend = open_backend(db)
            datasets: Any = backend.features.datasets  # ClickHouseDatasetStore, when there is a control plane
            sweep = datasets.sweep_orphan_records(now_ms=now_ms()) if datasets is not None else None
            client = backend.traces.client  # type: ignore[attr-defined]
            report = fold_replacing_tables(client, engine=db.engine, cluster=db.cluster)
        click.echo(json.dumps({**report.model_dump(), "dataset_orphans": sweep and sweep.model_dump()}, indent=2))
        return
    assert db.path is not None
    with cli_errors():
        store = DuckDBTraceStore(db.path)
        bytes_before = store.path.stat().st_size
        started = time.perf_counter()
        report = store.put_in_time_order()
        seconds = time.perf_counter() - started
        store.release()
    click.echo(json.dumps({**report.model_dump(), "seconds": round(seconds, 1), "file_bytes_before": bytes_before,
                           "file_bytes_after": store.path.stat().st_size}, indent=2))


@cli.command("describe")
@store_option
def describe_cmd(db: StoreUrl) -> None:
    """What is in the store and which fields can be filtered.

    Example:

        tracesieve describe
    """
    with cli_errors():
        backend = open_backend(db)
        echo_result(describe.describe_store(backend.traces, sql_tables=list(backend.sql_tables)))


@cli.command("search")
@store_option
@click.argument("filter", default="")
@click.option("--order-by", multiple=True, help="e.g. 'attributes.execution_time_ms DESC' (repeatable).")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--page-token", default=None, help="next_page_token of the previous page.")
@table_option
def search_cmd(db: StoreUrl, filter: str, order_by: tuple[str, ...], limit: int, page_token: str | None,
               as_table: bool) -> None:
    """Find traces matching FILTER, newest first.

    Example:

        tracesieve search "attributes.status = 'ERROR' AND tags.environment = 'production'" --table
    """
    with cli_errors():
        inp = search.SearchTracesInput(filter=filter, order_by=list(order_by), limit=limit, page_token=page_token)
        echo_result(search.search_traces(open_backend(db).traces, inp, now_ms=now_ms()), as_table)


@cli.command("show")
@store_option
@click.argument("trace_id")
@click.option("--max-chars", type=int, default=16_000, show_default=True)
@click.option("--span-id", default=None, help="Read one span's content page by page.")
@click.option("--field", default="outputs", show_default=True)
@click.option("--offset", type=int, default=0)
def show_cmd(db: StoreUrl, trace_id: str, max_chars: int, span_id: str | None, field: str, offset: int) -> None:
    """Print one trace's span tree (get_trace).

    Example:

        tracesieve show tr-4f2a... --max-chars 4000
    """
    with cli_errors():
        inp = view.GetTraceInput(trace_id=trace_id, max_chars=max_chars, span_id=span_id, field=field,
                                   offset=offset)
        echo_result(view.get_trace(open_backend(db).traces, inp))


def _selection_options(fn):  # type: ignore[no-untyped-def]
    fn = click.option("--id", "trace_ids", multiple=True, help="Trace id (repeatable).")(fn)
    return click.option("--filter", "filter_", default=None, help="Select traces by search filter instead.")(fn)


@cli.command("tag")
@store_option
@click.argument("key")
@click.argument("value", default="true")
@_selection_options
def tag_cmd(db: StoreUrl, key: str, value: str, trace_ids: tuple[str, ...], filter_: str | None) -> None:
    """Set tag KEY=VALUE on traces selected by --id or --filter.

    Example:

        tracesieve tag eval_candidate error_case --filter "attributes.status = 'ERROR'"
    """
    with cli_errors():
        inp = tagging.TagTraceInput(trace_ids=list(trace_ids) or None, filter=filter_, key=key, value=value)
        echo_result(tagging.tag_trace(open_backend(db).traces, inp, by="cli", now_ms=now_ms()))


@cli.command("untag")
@store_option
@click.argument("key")
@_selection_options
def untag_cmd(db: StoreUrl, key: str, trace_ids: tuple[str, ...], filter_: str | None) -> None:
    """Remove tag KEY from traces selected by --id or --filter.

    Example:

        tracesieve untag eval_candidate --id tr-123
    """
    with cli_errors():
        inp = tagging.UntagTraceInput(trace_ids=list(trace_ids) or None, filter=filter_, key=key)
        echo_result(tagging.untag_trace(open_backend(db).traces, inp, by="cli", now_ms=now_ms()))


@cli.command("sql")
@store_option
@click.argument("query")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def sql_cmd(db: StoreUrl, query: str, limit: int) -> None:
    """Run one read-only SELECT over the store (query_sql).

    Example:

        tracesieve sql "SELECT status, count(*) FROM trace_unified GROUP BY 1"
    """
    with cli_errors():
        echo_result(sql_tool.query_sql(open_backend(db).traces, sql_tool.QuerySqlInput(sql=query, limit=limit)))


@cli.command("call")
@store_option
@click.argument("tool")
@click.argument("arguments", default="{}")
def call_cmd(db: StoreUrl, tool: str, arguments: str) -> None:
    """Call a tool through a real in-process MCP client and print exactly what an agent receives.

    Example:

        tracesieve call search_traces '{"filter": "attributes.status = \\'ERROR\\'", "limit": 3}'
    """
    from mcp import Client

    from server.mcp.app import build_app

    try:
        args = json.loads(arguments)
    except ValueError as error:
        raise click.UsageError(f"ARGUMENTS must be a JSON object: {error}") from error

    async def run() -> int:
        async with Client(build_app(open_backend(db))) as client:
            result = await client.call_tool(tool, args)
        payload = result.structured_content if result.structured_content is not None else [
            getattr(c, "text", str(c)) for c in result.content]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return 1 if result.is_error else 0

    with cli_errors():
        sys.exit(anyio.run(run))


@cli.command("demo")
@store_option
@click.option("--traces", "n_traces", type=click.IntRange(10, 1_000_000), default=3000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo_cmd(db: StoreUrl, n_traces: int, seed: int) -> None:
    """Create a realistic demo store (a support agent's traces) and walk an agent's session over MCP.

    The store is a DuckDB file (--db) or a chdb folder (--store chdb:///FOLDER), on this machine.

    Example:

        tracesieve demo --db /tmp/demo.duckdb
        tracesieve demo --store chdb:///tmp/demo-chdb
    """
    from server.demo.walkthrough import run_walkthrough

    with cli_errors():
        run_walkthrough(db, n_traces=n_traces, seed=seed, echo=click.echo)


for _feature in FEATURE_COMMANDS:
    for _command in _feature:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="tracesieve")


if __name__ == "__main__":
    main()
