"""`tracesieve ingest` end to end: every shared fixture into a real store, idempotent, bad files isolated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
from click.testing import CliRunner

from server.cli.main import cli
from tests.conftest import FIXTURES


def ingest(db: Path, *paths: Path, fmt: str = "auto"):
    return CliRunner().invoke(cli, ["ingest", *map(str, paths), "--db", str(db), "--format", fmt])


def counts(db: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM spans), "
                           "(SELECT count(*) FROM scores)").fetchone()
    finally:
        con.close()


def test_all_shared_fixtures_load_once_and_reingest_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    first = ingest(db, FIXTURES)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output[first.output.index("{"):])
    # 20 Langfuse files (two of them export the same trace id 25f4bdee…, stored once)
    # + 5 attribute-map files + the OTLP example
    assert report["traces"] == 25 and report["error_count"] == 0
    after_first = counts(db)
    again = ingest(db, FIXTURES)
    assert again.exit_code == 0
    assert counts(db) == after_first
    con = duckdb.connect(str(db), read_only=True)
    sources = dict(con.execute("SELECT source, count(*) FROM traces GROUP BY 1").fetchall())
    llm_tokens = con.execute("SELECT input_tokens, output_tokens FROM traces WHERE source = 'otlp' "
                             "AND model = 'gpt-4-0613' LIMIT 1").fetchone()
    tool = con.execute("SELECT span_type FROM spans WHERE tool_name = 'get_weather'").fetchall()
    con.close()
    assert sources == {"langfuse": 19, "otlp": 6}
    assert llm_tokens == (97, 52)
    assert ("TOOL",) in tool


def test_a_bad_file_is_reported_by_name_and_the_good_ones_still_load(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(FIXTURES / "otlp" / "trace.json", folder / "good.json")
    (folder / "broken.json").write_text('{"resourceSpans": [ {"scopeSpans": ')
    lines = (FIXTURES / "otlp" / "trace.json").read_text().replace("\n", "")
    (folder / "lines.jsonl").write_text(lines.replace("5B8EFFF798038103D269B633813FC60C", "A" * 32) + "\n{oops\n")
    db = tmp_path / "s.duckdb"
    result = ingest(db, folder)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["traces"] == 2 and report["error_count"] == 2
    assert any("broken.json" in e for e in report["errors"])
    assert any("lines.jsonl" in e and "line 2" in e for e in report["errors"])
    assert counts(db)[0] == 2


def test_only_bad_input_exits_nonzero_and_stores_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not json at all")
    db = tmp_path / "s.duckdb"
    result = ingest(db, bad)
    assert result.exit_code == 1
    assert counts(db) == (0, 0, 0)


def test_ingest_without_paths_explains_what_to_give(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ingest", "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2 and "Give PATHS to read, or --from-mlflow" in result.output
