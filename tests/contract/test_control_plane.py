"""The control plane under the feature stores: migrations that apply once even when several servers
start together, a lock that serialises allocation, and a ClickHouse store that finds its plane."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.storage.control.migrate import migration_names
from server.storage.control.plane import ControlPlane
from server.storage.factory import build_backend, parse_store_url
from tools.errors import InvalidInputError, StoreBusyError


@pytest.fixture(params=["sqlite", "postgres"])
def control_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'control.sqlite'}"
    return request.getfixturevalue("postgres_server").new_database()


def _applied(plane: ControlPlane) -> list[str]:
    with plane.reading() as conn:
        return list(conn.execute(sa.text("SELECT name FROM control_migrations ORDER BY name")).scalars())


def test_servers_starting_together_apply_each_migration_once(control_url: str) -> None:
    planes: list[ControlPlane] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            planes.append(ControlPlane.open(control_url))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(planes) == 4
    assert _applied(planes[0]) == migration_names()


def test_the_lock_serialises_read_modify_write(control_url: str) -> None:
    """Eight writers each allocate ``max + 1`` under the lock: eight distinct numbers, none lost."""
    plane = ControlPlane.open(control_url)
    with plane.transaction() as conn:
        conn.execute(sa.text("CREATE TABLE allocations (n INTEGER NOT NULL UNIQUE)"))

    def allocate() -> None:
        with plane.transaction() as conn:
            plane.lock(conn, "allocations")
            top = conn.execute(sa.text("SELECT coalesce(max(n), 0) FROM allocations")).scalar_one()
            conn.execute(sa.text("INSERT INTO allocations (n) VALUES (:n)"), {"n": top + 1})

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with plane.reading() as conn:
        assert sorted(conn.execute(sa.text("SELECT n FROM allocations")).scalars()) == list(range(1, 9))


def test_a_failed_transaction_leaves_nothing(control_url: str) -> None:
    plane = ControlPlane.open(control_url)
    with plane.transaction() as conn:
        conn.execute(sa.text("CREATE TABLE notes (body TEXT NOT NULL)"))
    with pytest.raises(RuntimeError), plane.transaction() as conn:
        conn.execute(sa.text("INSERT INTO notes (body) VALUES ('half')"))
        raise RuntimeError("killed mid-write")
    with plane.reading() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM notes")).scalar_one() == 0


def test_bad_control_urls_say_what_to_pass() -> None:
    with pytest.raises(InvalidInputError, match="postgresql://USER:PASSWORD@HOST:5432/DATABASE"):
        ControlPlane.open("mysql://u:p@127.0.0.1/db")
    with pytest.raises(StoreBusyError, match="--control") as refused:
        ControlPlane.open("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(refused.value)


def test_a_chdb_store_keeps_its_control_plane_in_its_folder(chdb_folder: Path) -> None:
    backend = build_backend(parse_store_url(f"chdb://{chdb_folder}?database=t_control_beside"))
    assert backend.features is not None
    assert backend.control == f"sqlite:///{chdb_folder.resolve() / 't_control_beside.control.sqlite'}"
    assert (chdb_folder / "t_control_beside.control.sqlite").exists()
