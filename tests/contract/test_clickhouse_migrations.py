"""A store made before M003 keeps its ingested labels and scores through the migration, also when the
process died part-way through it and the next one runs it again."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from server.storage.clickhouse import migrations
from server.storage.clickhouse.client import ClickHouseClient
from server.storage.factory import build_backend, parse_store_url
from server.storage.urls import StoreUrl


def _store_at_m002_with_m001_rows(chdb_folder: Path) -> tuple[StoreUrl, ClickHouseClient]:
    url = parse_store_url(f"chdb://{chdb_folder}?database=t_m003_{uuid.uuid4().hex[:8]}")
    client = ClickHouseClient.connect(url)
    for v in (0, 1, 2):
        for st in migrations.statements(v):
            client.command(st)
    client.command("INSERT INTO schema_migrations VALUES (1, 0), (2, 0)")
    client.insert("labels", [("l1", "t1", "helpful", "pass", None, "ana", None, 5, "mlflow", 1, 0)],
                  ["label_id", "trace_id", "criterion", "value", "numeric_value", "reviewer", "rationale",
                   "created_at_ms", "source", "version", "is_deleted"])
    client.insert("scores", [("r1", "j", "t1", "fail", 0.0, None, "why", 7, 1, 0)],
                  ["run_id", "judge", "trace_id", "verdict", "score", "value", "rationale", "created_at_ms",
                   "version", "is_deleted"])
    return url, client


def _assert_migrated_with_rows(url: StoreUrl) -> None:
    backend = build_backend(url)
    client = backend.traces.client  # type: ignore[attr-defined]
    assert backend.traces.schema_version() == migrations.SCHEMA_VERSION  # type: ignore[attr-defined]
    assert client.read("SELECT label_id, criterion, value, reviewer FROM labels") == [("l1", "helpful", "pass", "ana")]
    assert client.read("SELECT run_id, verdict, record_id FROM scores") == [("r1", "fail", "")]
    keys = dict(client.read("SELECT name, sorting_key FROM system.tables WHERE database = currentDatabase() "
                            "AND name IN ('labels', 'scores')"))
    assert keys == {"labels": "criterion, trace_id, label_id", "scores": "run_id, judge, trace_id, record_id"}


def test_m003_copies_m001_rows(chdb_folder: Path) -> None:
    url, _ = _store_at_m002_with_m001_rows(chdb_folder)
    _assert_migrated_with_rows(url)


@pytest.mark.parametrize("steps_done", [1, 2, 3, 5])
def test_m003_rerun_after_dying_part_way_completes_and_keeps_the_rows(chdb_folder: Path, steps_done: int) -> None:
    """The first ``steps_done`` steps of M003 ran, then the process died before recording it."""
    url, client = _store_at_m002_with_m001_rows(chdb_folder)
    for step in migrations.statements(3)[:steps_done]:
        client.command(step.sql if isinstance(step, migrations.Guarded) else step)
    _assert_migrated_with_rows(url)


@pytest.mark.parametrize("control", ["sqlite", "postgres"])
def test_servers_starting_together_on_an_older_database_migrate_it_once(chdb_folder: Path, control: str,
                                                                        request: pytest.FixtureRequest) -> None:
    """Four servers open a database at M002 at the same moment: each must come up, M003 must run once
    (its renames are not idempotent under a race), and the rows it copies must be there once."""
    url, _ = _store_at_m002_with_m001_rows(chdb_folder)
    if control == "postgres":
        url = replace(url, control=request.getfixturevalue("postgres_server").new_database())
    start = threading.Barrier(4, timeout=60)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            build_backend(url)
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    _assert_migrated_with_rows(url)
    client = build_backend(url).traces.client  # type: ignore[attr-defined]
    assert client.read("SELECT version, count() FROM schema_migrations GROUP BY version ORDER BY version") == [
        (1, 1), (2, 1), (3, 1)]
