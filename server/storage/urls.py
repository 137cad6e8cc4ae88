"""Store URLs: which engine, where, and as whom. Parsed here, opened by ``server.storage.factory``.

``--store URL`` / ``TRACESIEVE_STORE`` pick the engine; ``--db PATH`` / ``TRACESIEVE_DB`` stay as
the shorthand for ``duckdb:///PATH``. Accepted forms::

    duckdb:///abs/path/traces.duckdb      duckdb://relative/traces.duckdb
    chdb:///abs/path/folder               the ClickHouse engine in this process (tests, laptops)
    chdb:///abs/path/folder?database=team one folder, several databases
    clickhouse://user:pass@host:8123/db   a ClickHouse server over HTTP
    clickhouse+https://user:pass@host:8443/db
    clickhouse://user:pass@host:8123/db?cluster=main   replicated tables, DDL ON CLUSTER main (one shard)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from tools.errors import InvalidInputError

Engine = Literal["duckdb", "chdb", "clickhouse"]

DEFAULT_DATABASE = "tracesieve"
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_FORMS = ("duckdb:///PATH", "chdb:///FOLDER", "clickhouse://USER:PASSWORD@HOST:8123/DATABASE",
          "clickhouse+https://USER:PASSWORD@HOST:8443/DATABASE")


@dataclass(frozen=True)
class StoreUrl:
    """A parsed store URL. ``path`` is the DuckDB file or the chdb folder; ``host``… the server's."""

    engine: Engine
    path: Path | None = None
    database: str = DEFAULT_DATABASE
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    secure: bool = False
    cluster: str | None = None
    #: The control plane's URL (``--control`` / ``TRACESIEVE_CONTROL``): ``postgresql://…`` or
    #: ``sqlite:///PATH``. A chdb store defaults to a SQLite file in its folder; DuckDB needs none.
    control: str | None = None

    def display(self) -> str:
        """The URL without its password, for messages and logs."""
        if self.engine == "clickhouse":
            scheme = "clickhouse+https" if self.secure else "clickhouse"
            user = f"{self.username}@" if self.username else ""
            cluster = f"?cluster={self.cluster}" if self.cluster else ""
            return f"{scheme}://{user}{self.host}:{self.port}/{self.database}{cluster}"
        suffix = f"?database={self.database}" if self.engine == "chdb" and self.database != DEFAULT_DATABASE else ""
        return f"{self.engine}://{self.path}{suffix}"


def parse_store_url(text: str) -> StoreUrl:
    """Parse ``text`` (see the module docstring), or say which forms are accepted."""
    scheme, sep, rest = text.strip().partition("://")
    scheme = scheme.lower()
    if not sep or not rest:
        raise _bad(text, "it has no scheme")
    if scheme == "duckdb":
        return StoreUrl("duckdb", path=Path(unquote(rest.split("?", 1)[0])).expanduser())
    if scheme == "chdb":
        location, _, query = rest.partition("?")
        database = parse_qs(query).get("database", [DEFAULT_DATABASE])[0]
        return StoreUrl("chdb", path=Path(unquote(location)).expanduser(), database=_database(text, database))
    if scheme in ("clickhouse", "clickhouse+http", "clickhouse+https"):
        parts = urlsplit(f"http://{rest}")
        if not parts.hostname:
            raise _bad(text, "it names no host")
        secure = scheme == "clickhouse+https"
        database = parts.path.strip("/") or DEFAULT_DATABASE
        cluster = parse_qs(parts.query).get("cluster", [None])[0]
        return StoreUrl("clickhouse", database=_database(text, database), host=parts.hostname,
                        cluster=_database(text, cluster) if cluster else None,
                        port=parts.port or (8443 if secure else 8123),
                        username=unquote(parts.username) if parts.username else None,
                        password=unquote(parts.password) if parts.password else None, secure=secure)
    raise _bad(text, f"'{scheme}' is not a store engine")


def resolve_store(store: str | None, db: Path | None) -> StoreUrl:
    """The store a command works on: ``--store`` if given, else ``--db`` (DuckDB)."""
    if store:
        return parse_store_url(store)
    if db is None:
        raise InvalidInputError("No store given. Pass --store URL (or set TRACESIEVE_STORE) or --db PATH.")
    return StoreUrl("duckdb", path=db)


def _database(url: str, name: str) -> str:
    if not _DATABASE.match(name):
        raise _bad(url, f"database '{name}' is not a plain identifier (letters, digits, underscore)")
    return name


def _bad(url: str, why: str) -> InvalidInputError:
    shown = re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)
    return InvalidInputError(f"Store URL '{shown}' cannot be used: {why}. Use one of: {', '.join(_FORMS)}.")
