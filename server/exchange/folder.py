"""The one folder MCP tools may read files from and write files to: ``<store folder>/exports/``.

An agent names files, the server opens them: without a fence a tool argument could make the
server read ``~/.ssh/id_rsa`` into an error message. MCP tools therefore take plain file names
inside this folder; the CLI, run by a person, takes any path.
"""

from __future__ import annotations

from pathlib import Path

from tools.errors import InvalidInputError


def exchange_dir(store_path: Path) -> Path:
    return store_path.resolve().parent / "exports"


def confined_to(folder: Path, file: str, *, example: str, cli_alternative: str) -> Path:
    """``file`` as a path directly inside ``folder`` (a store's exports folder), or an error."""
    folder = folder.resolve()
    candidate = (folder / file).resolve()
    if Path(file).is_absolute() or candidate.parent != folder:
        raise InvalidInputError(
            f"file '{file}' must be a plain file name inside the store's exports folder ({folder}), such as "
            f"'{example}'. Copy the file there, or use the CLI: {cli_alternative}.")
    return candidate
