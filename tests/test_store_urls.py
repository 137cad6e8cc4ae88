"""Store URLs (--store / TRACESIEVE_STORE), the factory's errors, and the ClickHouse read rewrite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.main import cli
from server.storage.clickhouse import migrations
from server.storage.clickhouse.client import REPLACING_TABLES, check_one_shard, cluster_settings, with_final
from server.storage.factory import StoreUrl, parse_store_url, resolve_store
from tools.errors import InvalidInputError


@pytest.mark.parametrize("text, expected", [
    ("duckdb:///data/traces.duckdb", StoreUrl("duckdb", path=Path("/data/traces.duckdb"))),
    ("duckdb://rel/traces.duckdb", StoreUrl("duckdb", path=Path("rel/traces.duckdb"))),
    ("chdb:///data/ch", StoreUrl("chdb", path=Path("/data/ch"))),
    ("chdb:///data/ch?database=team_a", StoreUrl("chdb", path=Path("/data/ch"), database="team_a")),
    ("clickhouse://ana:s%40cret@ch.internal:8123/traces",
     StoreUrl("clickhouse", database="traces", host="ch.internal", port=8123, username="ana", password="s@cret")),
    ("clickhouse://ana:pw@ch:8123/traces?cluster=main",
     StoreUrl("clickhouse", database="traces", host="ch", port=8123, username="ana", password="pw", cluster="main")),
    ("clickhouse+https://ana:pw@abc.clickhouse.cloud/prod",
     StoreUrl("clickhouse", database="prod", host="abc.clickhouse.cloud", port=8443, username="ana", password="pw",
              secure=True)),
])
def test_store_urls_parse_to_an_engine_and_its_place(text: str, expected: StoreUrl) -> None:
    assert parse_store_url(text) == expected


def test_a_displayed_url_never_shows_the_password() -> None:
    assert parse_store_url("clickhouse://ana:pw@h:8123/db").display() == "clickhouse://ana@h:8123/db"


@pytest.mark.parametrize("text, why", [
    ("postgres://h/db", "'postgres' is not a store engine"),
    ("/data/traces.duckdb", "it has no scheme"),
    ("clickhouse://ana:pw@h:8123/bad-name", "database 'bad-name' is not a plain identifier"),
    ("chdb:///x?database=a;DROP", "database 'a;DROP' is not a plain identifier"),
])
def test_a_bad_url_says_why_and_lists_the_forms_without_the_password(text: str, why: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        parse_store_url(text)
    assert why in str(error.value) and "duckdb:///PATH, chdb:///FOLDER" in str(error.value)
    assert ":pw@" not in str(error.value)


def test_db_is_the_duckdb_shorthand() -> None:
    assert resolve_store(None, Path("x.duckdb")) == StoreUrl("duckdb", path=Path("x.duckdb"))
    assert resolve_store("chdb:///c", Path("x.duckdb")).engine == "chdb"


def test_store_and_db_on_one_command_line_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["search", "--db", str(tmp_path / "a.duckdb"), "--store",
                                      f"duckdb://{tmp_path / 'b.duckdb'}"])
    assert result.exit_code == 2 and "Give --store or --db, not both" in result.output


def test_a_db_on_the_command_line_beats_a_store_in_the_environment(tmp_path: Path) -> None:
    result = CliRunner(env={"TRACESIEVE_STORE": "postgres://nowhere"}).invoke(
        cli, ["describe", "--db", str(tmp_path / "a.duckdb")])
    assert result.exit_code == 0, result.output
    assert '"trace_count": 0' in result.output


def test_every_read_of_a_replacing_table_is_final_and_nothing_else_is_touched() -> None:
    sql = ("SELECT t.trace_id FROM traces AS t WHERE t.trace_id IN (SELECT s.trace_id FROM spans AS s) "
           "AND t.trace_id IN (SELECT trace_id FROM tags WHERE key = {k:String}) "
           "AND t.trace_id NOT IN (SELECT trace_id FROM tag_history) LEFT JOIN labels AS l ON 1 "
           "JOIN scores ON 1 FROM traces FINAL JOIN spans AS s FINAL")
    assert with_final(sql) == (
        "SELECT t.trace_id FROM traces AS t FINAL WHERE t.trace_id IN (SELECT s.trace_id FROM spans AS s FINAL) "
        "AND t.trace_id IN (SELECT trace_id FROM tags FINAL WHERE key = {k:String}) "
        "AND t.trace_id NOT IN (SELECT trace_id FROM tag_history) LEFT JOIN labels AS l FINAL ON 1 "
        "JOIN scores FINAL ON 1 FROM traces FINAL JOIN spans AS s FINAL")


def test_the_clustered_migrations_replicate_every_table_on_the_cluster() -> None:
    single = [getattr(s, "sql", s) for v in range(migrations.SCHEMA_VERSION + 1) for s in migrations.statements(v)]
    clustered = [getattr(s, "sql", s) for v in range(migrations.SCHEMA_VERSION + 1)
                 for s in migrations.statements(v, cluster="main")]
    assert len(single) == len(clustered)
    for plain, replicated in zip(single, clustered):
        if plain.startswith("INSERT"):  # data is copied on the node that migrates; replication carries it
            assert plain == replicated
            continue
        assert " ON CLUSTER main" in replicated and " ON CLUSTER" not in plain
        if "ENGINE" in plain:
            assert "ENGINE = Replicated" in replicated and "Replicated" not in plain
    replacing = {re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", s).group(1) for s in clustered  # type: ignore[union-attr]
                 if "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', " in s}
    assert replacing == set(REPLACING_TABLES)


def test_a_clustered_store_writes_with_a_majority_quorum_and_one_node_does_not() -> None:
    assert cluster_settings(parse_store_url("clickhouse://u:p@ch:8123/team?cluster=main")) == {"insert_quorum": "auto"}
    assert cluster_settings(parse_store_url("clickhouse://u:p@ch:8123/team")) == {}


def test_a_cluster_of_several_shards_or_none_is_refused_with_what_to_name_instead() -> None:
    check_one_shard("main", 1)  # one shard, any number of replicas
    with pytest.raises(InvalidInputError, match="Cluster 'main' has 3 shards.*one shard with several replicas"):
        check_one_shard("main", 3)
    with pytest.raises(InvalidInputError, match="no cluster named 'mian'.*drop \\?cluster= for a single node"):
        check_one_shard("mian", 0)
