"""Options and output helpers shared by every CLI command module."""

from __future__ import annotations

import json
from pathlib import Path

import click
from pydantic import BaseModel

DEFAULT_DB = Path(".tracesieve") / "tracesieve.duckdb"

db_option = click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), envvar="TRACESIEVE_DB", default=DEFAULT_DB,
    show_default=True, help="Store file (env TRACESIEVE_DB); created on first use.")
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
