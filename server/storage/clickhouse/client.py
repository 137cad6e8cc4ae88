"""The one way this package talks to ClickHouse: de-duplicated reads, inserts, DDL.

Traces, spans and tags live in ``ReplacingMergeTree`` tables, which keep every written copy of
a row until a background merge (that may never come) folds them. A plain ``SELECT`` over them
therefore sees duplicates and deleted rows. ``ClickHouseClient.read`` is the only read path,
and it rewrites every ``FROM``/``JOIN`` of a replacing table to read it ``FINAL``, so a bare
read cannot be written by accident; ``with_final`` is that rewrite, tested on its own.

Values only ever travel as typed server-side parameters (``{name:Type}`` placeholders, bound by
clickhouse-connect for the server and for chdb alike). chdb runs one engine per process, on one
folder; asking for a second folder is refused with advice instead of ClickHouse's own message.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError, ProgrammingError

from tools.errors import InvalidInputError, StoreBusyError

if TYPE_CHECKING:
    from server.storage.urls import StoreUrl

#: Tables whose rows are versions of one another: every read must go through ``with_final``.
REPLACING_TABLES = ("traces", "spans", "tags", "labels", "scores", "dataset_records")

_BARE = re.compile(r"\b(FROM|JOIN)\s+(" + "|".join(REPLACING_TABLES) + r")\b(\s+AS\s+[A-Za-z_]\w*)?+(?!\s+FINAL\b)",
                   re.IGNORECASE)
_version_lock = threading.Lock()
#: The folder this process's chdb engine runs on (chdb allows one per process).
_chdb_folder: Path | None = None
_last_version = 0


def with_final(sql: str) -> str:
    """``sql`` with ``FINAL`` after every ``FROM``/``JOIN`` of a replacing table that lacks it."""
    return _BARE.sub(lambda m: f"{m.group(1)} {m.group(2)}{m.group(3) or ''} FINAL", sql)


def check_one_shard(cluster: str, shards: int) -> None:
    """Refuse a cluster this layout cannot serve. ``?cluster=`` creates replicated tables, not
    ``Distributed`` ones, so on several shards each node would hold and read only its own writes:
    searches would miss traces and a span's two deliveries could land on two shards, never folded."""
    if shards == 0:
        raise InvalidInputError(
            f"ClickHouse has no cluster named '{cluster}' (system.clusters). Name one from its remote_servers "
            "config in ?cluster=, or drop ?cluster= for a single node.")
    if shards > 1:
        raise InvalidInputError(
            f"Cluster '{cluster}' has {shards} shards. Tracesieve's clustered layout replicates one shard "
            "(ReplicatedReplacingMergeTree on every replica; no Distributed tables yet), so on several shards each "
            "node would see only its own writes. Name a cluster of one shard with several replicas.")


def cluster_settings(url: StoreUrl) -> dict[str, Any]:
    """Settings every write of a clustered store carries. ``insert_quorum = 'auto'``: an insert returns
    once a majority of the shard's replicas hold it, so a dataset header committed after its records
    (``datasets_store``) never names records that live on one replica only, and a replica lost right
    after an insert loses nothing acknowledged. One node and chdb need nothing."""
    return {"insert_quorum": "auto"} if url.cluster else {}


def next_version() -> int:
    """A row version for ``ReplacingMergeTree``: wall-clock nanoseconds, strictly increasing in
    this process (two servers writing the same row at once: the later clock wins, as in Langfuse)."""
    global _last_version
    with _version_lock:
        _last_version = max(time.time_ns(), _last_version + 1)
        return _last_version


class ClickHouseClient:
    """A clickhouse-connect client on one database (of a server or of this process's chdb engine)."""

    def __init__(self, client: Any, database: str, *, serialize: bool,
                 per_query_settings: dict[str, Any] | None = None) -> None:
        self.raw = client
        self.database = database
        #: Settings sent with every query (a server's sandbox; chdb's is set once on its session).
        self.per_query_settings = per_query_settings
        # chdb's engine runs queries in this process: one at a time keeps its handle consistent.
        self._lock: threading.Lock | None = threading.Lock() if serialize else None

    @classmethod
    def connect(cls, url: StoreUrl) -> ClickHouseClient:
        """Connect to ``url`` and create its database if it does not exist."""
        if url.engine == "chdb":
            assert url.path is not None
            url.path.mkdir(parents=True, exist_ok=True)
            global _chdb_folder
            folder = url.path.resolve()
            if _chdb_folder is not None and _chdb_folder != folder:
                raise InvalidInputError(
                    f"This process already runs the chdb engine on {_chdb_folder}, and chdb allows one folder per "
                    f"process, so {url.display()} cannot be opened here. Use that folder (other stores in it: "
                    "chdb:///FOLDER?database=NAME) or run a separate process.")
            try:
                boot = clickhouse_connect.get_client(interface="chdb", path=str(folder))
            except ProgrammingError as error:
                raise StoreBusyError(
                    f"The chdb folder {folder} is in use by another process: chdb lets one process at a time "
                    "use a folder. Stop that process (often another 'tracesieve serve'), or run a ClickHouse "
                    "server and pass --store clickhouse://… so several processes can share the store. "
                    f"(chdb: {_first_line(error)})") from error
            _chdb_folder = folder
            boot.command(f"CREATE DATABASE IF NOT EXISTS {url.database}")
            client = clickhouse_connect.get_client(interface="chdb", path=str(folder), database=url.database)
            return cls(client, url.database, serialize=True)
        try:
            boot = clickhouse_connect.get_client(
                host=url.host, port=url.port, username=url.username or "default", password=url.password or "",
                secure=url.secure, autogenerate_session_id=False)
            on_cluster = f" ON CLUSTER {url.cluster}" if url.cluster else ""
            if url.cluster:
                check_one_shard(url.cluster, int(boot.query(
                    "SELECT uniqExact(shard_num) FROM system.clusters WHERE cluster = {c:String}",
                    parameters={"c": url.cluster}).result_rows[0][0]))
            boot.command(f"CREATE DATABASE IF NOT EXISTS {url.database}{on_cluster}")
        except ClickHouseError as error:
            raise StoreBusyError(f"Cannot reach ClickHouse at {url.display()}: {_first_line(error)}. Check the host, "
                                 "port, user and password in --store, and that the server is running.") from error
        client = clickhouse_connect.get_client(
            host=url.host, port=url.port, username=url.username or "default", password=url.password or "",
            secure=url.secure, database=url.database, autogenerate_session_id=False, settings=cluster_settings(url))
        return cls(client, url.database, serialize=False)

    @classmethod
    def sandbox(cls, url: StoreUrl, settings: dict[str, Any]) -> ClickHouseClient:
        """A separate handle for caller-written SQL, under ``settings`` (``readonly`` last). chdb keeps
        settings per handle, so they are set once and ``readonly`` then locks them; a server gets them
        with every request (clickhouse-connect sends no session)."""
        if url.engine == "chdb":
            assert _chdb_folder is not None, "open the store before its sandbox"
            client = clickhouse_connect.get_client(interface="chdb", path=str(_chdb_folder), database=url.database)
            for name, value in settings.items():
                client.command(f"SET {name} = {value!r}" if isinstance(value, str) else f"SET {name} = {int(value)}")
            return cls(client, url.database, serialize=True)
        client = clickhouse_connect.get_client(
            host=url.host, port=url.port, username=url.username or "default", password=url.password or "",
            secure=url.secure, database=url.database, autogenerate_session_id=False)
        return cls(client, url.database, serialize=False, per_query_settings=dict(settings))

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if self._lock is None:
            yield
            return
        with self._lock:
            yield

    def read(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        """Rows of a query over de-duplicated tables (see ``with_final``)."""
        with self._turn():
            return self.raw.query(with_final(sql), parameters=params or {}).result_rows

    def read_dicts(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._turn():
            result = self.raw.query(with_final(sql), parameters=params or {})
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def read_estimate(self, sql: str) -> list[tuple]:
        """Rows of a query read WITHOUT de-duplication, for estimates that tolerate duplicate and
        deleted rows and must not cost a merge of the whole table (a search's time range, which
        only sizes its windows). Never for an answer: use ``read``."""
        with self._turn():
            return self.raw.query(sql).result_rows

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """A statement with no rows back: DDL, or ``INSERT … SELECT`` (whose reads get ``FINAL`` too)."""
        with self._turn():
            self.raw.command(with_final(sql), parameters=params or {})

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Append ``rows`` to ``table`` (one insert: one part, atomic on a single node)."""
        if not rows:
            return
        with self._turn():
            self.raw.insert(table, rows, column_names=list(columns))

    def close(self) -> None:
        self.raw.close()


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
