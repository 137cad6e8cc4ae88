"""The README documents every MCP tool and every CLI command has help with an example."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from mcp import Client

from server.cli.main import cli
from server.mcp.app import build_app
from server.storage.duckdb.store import DuckDBTraceStore

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.anyio
async def test_readme_lists_every_tool(tmp_path: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(tmp_path / "s.duckdb"))) as client:
        names = [t.name for t in (await client.list_tools()).tools]
    missing = [n for n in names if f"`{n}`" not in README]
    assert names and missing == []


def test_readme_starts_with_the_two_commands() -> None:
    head = "\n".join(README.splitlines()[:6])
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output, command
