"""Options and output helpers shared by every CLI command module."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click
from pydantic import BaseModel

from server.storage.backend import Backend
from server.storage.factory import StoreUrl, build_backend, resolve_store
from tools.errors import InvalidInputError

DEFAULT_DB = Path(".tracesieve") / "tracesieve.duckdb"

_STORE_URL = "tracesieve.store_url"
_CONTROL_URL = "tracesieve.control_url"
_DB_HELP = "Store file (env TRACESIEVE_DB); created on first use. Shorthand for --store duckdb:///PATH."


def _remember_store_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    ctx.meta[_STORE_URL] = value


_store_url_option = click.option(
    "--store", "store_url", envvar="TRACESIEVE_STORE", default=None, expose_value=False, is_eager=True,
    callback=_remember_store_url, metavar="URL",
    help="Store URL (env TRACESIEVE_STORE): duckdb:///PATH, chdb:///FOLDER, clickhouse://USER:PASS@HOST:8123/DB, "
         "clickhouse+https://…. Wins over --db.")


def _remember_control_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    ctx.meta[_CONTROL_URL] = value


_control_url_option = click.option(
    "--control", "control_url", envvar="TRACESIEVE_CONTROL", default=None, expose_value=False, is_eager=True,
    callback=_remember_control_url, metavar="URL",
    help="Control-plane URL (env TRACESIEVE_CONTROL) for a ClickHouse store: postgresql://USER:PASS@HOST:5432/DB "
         "(needed for datasets, judges, labels and monitors over a ClickHouse server; a chdb store keeps a "
         "SQLite file in its folder unless this is given).")


def _chosen_store(ctx: click.Context, db: Path) -> StoreUrl:
    """``--store`` and ``--db`` as one URL: one given on the command line beats the environment; both
    given the same way is refused rather than guessed."""
    url = ctx.meta.get(_STORE_URL)
    if not url:
        return resolve_store(None, db)
    sources = (ctx.get_parameter_source("store_url"), ctx.get_parameter_source("db"))
    explicit = click.core.ParameterSource.COMMANDLINE
    if sources[1] == explicit and sources[0] != explicit:
        return resolve_store(None, db)
    if sources[0] == sources[1]:
        raise click.UsageError("Give --store or --db, not both (--db PATH is short for --store duckdb:///PATH).")
    return resolve_store(url, None)


def _store_url_callback(ctx: click.Context, _param: click.Parameter, db: Path) -> StoreUrl:
    try:
        url = _chosen_store(ctx, db)
        control = ctx.meta.get(_CONTROL_URL)
        return replace(url, control=control) if control and url.engine != "duckdb" else url
    except InvalidInputError as error:
        raise click.BadParameter(str(error), param_hint="--store") from error


def store_option(fn):  # type: ignore[no-untyped-def]
    """``--store URL`` or ``--db PATH``: passes ``db: StoreUrl`` (open it with ``open_backend``)."""
    fn = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="TRACESIEVE_DB",
                      default=DEFAULT_DB, show_default=True, callback=_store_url_callback, help=_DB_HELP)(fn)
    return _control_url_option(_store_url_option(fn))


def open_backend(url: StoreUrl) -> Backend:
    """The backend of a command's store (call inside ``cli_errors()``)."""
    return build_backend(url)
table_option = click.option("--table", "as_table", is_flag=True, help="Print a table for people instead of JSON.")


def echo_result(result: BaseModel, as_table: bool = False) -> None:
    data = result.model_dump(mode="json")
    if as_table and isinstance(data.get("traces"), list):
        for t in data["traces"]:
            click.echo(f"{t['trace_id']}  {t['time']}  {t['status']:<5} {str(t['duration_ms']):>7}ms  "
                       f"{(t['request_preview'] or '')[:70]}")
        if data.get("next_page_token"):
            click.echo(f"-- more: --page-token {data['next_page_token']}")
        return
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
