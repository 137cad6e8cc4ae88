"""tools/ is pure logic: it never imports the server, MCP, DuckDB, HTTP or click."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"server", "mcp", "duckdb", "httpx", "httpx2", "click", "mlflow", "uvicorn", "starlette", "pyarrow"}
TOOLS = Path(__file__).resolve().parents[1] / "tools"


def test_tools_imports_nothing_from_the_outside_world() -> None:
    offenders = []
    for path in sorted(TOOLS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert len(list(TOOLS.rglob("*.py"))) > 5
