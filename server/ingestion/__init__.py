"""Ingestion readers: files and MLflow tracking stores -> canonical ``Trace`` objects.

The store calls exactly two functions. Both stream: they yield each Trace as soon as it is
built, and an ``IngestError`` for each bad file, line or trace instead of raising, so one
malformed record never stops the good ones in the same batch from loading.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal

from server.ingestion.detect import Document, diagnose, looks_like_protobuf, read_documents, sniff
from server.ingestion.langfuse import read_langfuse_documents
from server.ingestion.mlflow_json import read_mlflow_documents
from server.ingestion.mlflow_live import read_mlflow_tracking
from server.ingestion.otel_js import read_otel_js_documents
from server.ingestion.otel_python import read_otel_python_documents
from server.ingestion.otlp import read_otlp_documents, read_otlp_protobuf
from server.ingestion.phoenix import read_phoenix_documents
from tools.errors import IngestError, InvalidInputError
from tools.models import Trace

__all__ = ["FORMATS", "Format", "read_mlflow_tracking", "read_path"]

Format = Literal["auto", "otlp", "mlflow", "langfuse", "otel-python", "otel-js", "phoenix"]
FORMATS: tuple[str, ...] = Format.__args__  # type: ignore[attr-defined]

_Reader = Callable[[Iterable[Document | IngestError], Path], Iterator[Trace | IngestError]]
_READERS: dict[str, _Reader] = {
    "otlp": read_otlp_documents,
    "mlflow": read_mlflow_documents,
    "langfuse": read_langfuse_documents,
    "otel-python": read_otel_python_documents,
    "otel-js": read_otel_js_documents,
    "phoenix": read_phoenix_documents,
}
#: Files a directory walk skips: Langfuse's derived chat views, and the license and readme texts
#: that sit beside exported data; hidden files too.
_GZIP_MAGIC = b"\x1f\x8b"
_SKIPPED_SUFFIXES = (".chatml.json", ".md")
_SKIPPED_PREFIXES = ("LICENSE",)


def read_path(path: Path, fmt: Format = "auto") -> Iterator[Trace | IngestError]:
    """Read one file, or every file under a directory (recursively, in sorted order).

    ``fmt="auto"`` tells formats apart by content. Raises InvalidInputError at once (not on
    first iteration) for a path that does not exist or an unknown format; everything that goes
    wrong inside the files is yielded as an IngestError.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise InvalidInputError(f"Unknown trace format '{fmt}'. Use one of: {', '.join(FORMATS)}.")
    if not path.exists():
        raise InvalidInputError(f"No file or directory at '{path}'. Check the path (relative paths start "
                                f"from {Path.cwd()}).")
    return _read_tree(path, fmt)


def list_files(path: Path) -> list[Path]:
    """The files ``read_path`` reads for ``path``: the file itself, or a directory's files in sorted
    order (Langfuse chat views, licence/readme texts and hidden files left out)."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not _skipped(p.relative_to(path)))


def _read_tree(path: Path, fmt: Format) -> Iterator[Trace | IngestError]:
    for file in list_files(path):
        try:
            yield from _read_file(file, fmt)
        except RecursionError:  # a nesting the depth checks in json_text did not foresee
            yield IngestError("nested too deeply to read (Python's recursion limit); the traces of this file "
                              "read before it were kept. Fix or remove the file; the other files still load.",
                              source=str(file))


def _skipped(relative: Path) -> bool:
    hidden = any(part.startswith(".") for part in relative.parts)
    return hidden or relative.name.endswith(_SKIPPED_SUFFIXES) or relative.name.startswith(_SKIPPED_PREFIXES)


def _read_file(path: Path, fmt: Format) -> Iterator[Trace | IngestError]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield IngestError(f"cannot read the file ({exc.strerror}); check its permissions.", source=str(path))
        return
    if data[:2] == _GZIP_MAGIC:  # any format may be gzipped; the name without ".gz" still says protobuf
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            yield IngestError(f"a gzip file that cannot be decompressed ({exc}); check the download is complete "
                              "or gunzip it to see what is wrong.", source=str(path))
            return
        path_for_kind = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    else:
        path_for_kind = path
    if fmt in ("auto", "otlp") and looks_like_protobuf(path_for_kind, data[:64]):
        yield from read_otlp_protobuf(data, path)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield IngestError(f"not UTF-8 text (bad byte at offset {exc.start}); re-export it as UTF-8 JSON.",
                          source=str(path))
        return
    docs = read_documents(path, text)
    if fmt != "auto":
        yield from _READERS[fmt](docs, path)
        return
    for doc in docs:  # sniff the first document that parses; errors before it still get reported
        if isinstance(doc, IngestError):
            yield doc
            continue
        kind = sniff(doc.value)
        if kind is None:
            yield IngestError(diagnose(doc.value), source=str(path), location=doc.location)
            return
        yield from _READERS[kind](_chain(doc, docs), path)
        return


def _chain(first: Document | IngestError, rest: Iterator[Document | IngestError]) -> Iterator[Document | IngestError]:
    yield first
    yield from rest
