"""The tree is the architecture: these tests keep it so.

``tools/`` is pure logic: it never imports the server, MCP, DuckDB, HTTP or click. Inside it, each
family is a package that may use the shared modules at the top of ``tools/`` and the families it
declares below, nothing else; no module of either tree takes part in an import cycle; no module
grows past the size where it stops having one job.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
FORBIDDEN = {"server", "mcp", "duckdb", "httpx", "httpx2", "click", "mlflow", "uvicorn", "starlette", "pyarrow"}

#: Which families each family may import. A new edge is a design decision: add it here, on purpose.
FAMILY_DEPENDENCIES: dict[str, set[str]] = {
    "filters": set(),
    "privacy": set(),
    "traces": {"filters"},
    "datasets": {"filters", "privacy"},
    "judges": {"privacy"},
    "labels": {"filters", "traces", "privacy"},  # the review page shows a redacted get_trace
    "calibration": {"labels"},
    "analysis": {"filters", "traces", "privacy"},
    # monitors run the same judges on live windows and test them with the same statistics
    "monitors": {"filters", "traces", "judges", "calibration", "analysis"},
}
#: Lines past which a module is to be split (tests and generated data excepted).
MAX_MODULE_LINES = 420


def _imports(path: Path) -> list[str]:
    """Every absolute module a file imports, ``from tools import x`` counted as ``tools.x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names]
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(*trees: str) -> dict[str, Path]:
    return {_module_name(p): p for tree in trees for p in sorted((ROOT / tree).rglob("*.py"))}


def _family(module: str) -> str | None:
    """``tools.judges.runs`` -> ``judges``; a shared module (``tools.errors``) -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (ROOT / "tools" / parts[-1]).is_dir() else None


def test_tools_imports_nothing_from_the_outside_world() -> None:
    offenders = [f"{path.name}: {name}" for path in sorted(TOOLS.rglob("*.py")) for name in _imports(path)
                 if name.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert len(list(TOOLS.rglob("*.py"))) > 5


def test_every_family_package_is_declared_and_says_what_it_does() -> None:
    families = {p.name for p in TOOLS.iterdir() if (p / "__init__.py").is_file()}
    assert families == set(FAMILY_DEPENDENCIES)
    for family in families:
        doc = ast.get_docstring(ast.parse((TOOLS / family / "__init__.py").read_text()))
        assert doc and len(doc) > 40, f"tools/{family}/__init__.py needs a docstring saying what the family does"


def test_a_family_imports_only_shared_modules_and_the_families_it_declares() -> None:
    modules = _modules("tools")
    offenders = []
    for module, path in modules.items():
        family = _family(module)
        allowed = {family} | FAMILY_DEPENDENCIES.get(family, set()) if family else set()
        for name in _imports(path):
            if name.startswith("tools.") and name in modules:
                target = _family(name)
                if target is not None and target not in allowed:
                    offenders.append(f"{module} imports {name} (family {target!r} is not a declared dependency"
                                     f" of {family or 'the shared modules'!r})")
    assert offenders == []


def test_no_module_takes_part_in_an_import_cycle() -> None:
    """Type-only imports count too: a cycle of types is still two modules that cannot be read apart."""
    modules = _modules("tools", "server")
    graph = {m: {n for n in _imports(p) if n in modules and n != m} for m, p in modules.items()}
    # a package's own __init__ re-exporting is not a cycle with its children
    graph = {m: {n for n in targets if not m.startswith(n + ".")} for m, targets in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize("tree", ["tools", "server", "bench"])
def test_no_module_is_past_the_size_where_it_has_one_job(tree: str) -> None:
    too_long = {str(p.relative_to(ROOT)): n for p in (ROOT / tree).rglob("*.py")
                if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert too_long == {}
