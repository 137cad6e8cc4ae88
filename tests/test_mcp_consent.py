"""Elicitation through a real client: broad tag writes ask the person first, and a label counts as a
person's only when they sign it (otherwise it is the agent's, and calibration can leave it out)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from mcp import Client, types

from server.mcp.app import build_app
from server.storage.duckdb.calibration_sql import PEOPLE_LABELS
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import trace

pytestmark = pytest.mark.anyio


@pytest.fixture
def wide_db(tmp_path: Path) -> Path:
    path = tmp_path / "wide.duckdb"
    DuckDBTraceStore(path).write_traces([trace(f"w{i:03d}", i, status="ERROR" if i % 2 else "OK")
                                         for i in range(240)])
    return path


def answering(action: str, content: dict | None = None):
    asked: list[str] = []

    async def callback(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=action, content=content)

    return callback, asked


async def test_a_broad_tag_filter_asks_first_and_a_refusal_changes_nothing(wide_db: Path) -> None:
    declines, asked = answering("decline")
    async with Client(build_app(DuckDBTraceStore(wide_db)), elicitation_callback=declines) as client:
        refused = await client.call_tool("tag_trace", {"key": "reviewed", "value": "no",
                                                       "filter": "attributes.status = 'ERROR'"})
        narrow = await client.call_tool("tag_trace", {"key": "reviewed", "value": "no", "trace_ids": ["w001"]})
        count = (await client.call_tool("query_sql", {"sql": "SELECT count(*) FROM tags WHERE key = 'reviewed'"}))
    assert asked == ["set tag 'reviewed' on 120 traces (status is 'ERROR')?"]
    assert refused.is_error and refused.content[0].text.endswith(
        "Nothing was changed: the user did not confirm set tag 'reviewed' on 120 traces. Narrow the filter or "
        "pass trace_ids.")
    assert not narrow.is_error and count.structured_content["rows"] == [[1]]

    accepts, _ = answering("accept", {"confirm": True})
    async with Client(build_app(DuckDBTraceStore(wide_db)), elicitation_callback=accepts) as client:
        done = (await client.call_tool("tag_trace", {"key": "reviewed", "value": "no",
                                                     "filter": "attributes.status = 'ERROR'"})).structured_content
    assert (done["matched"], done["changed"]) == (120, 119)


async def test_a_label_is_a_persons_only_when_they_sign_it(db_path: Path) -> None:
    signs, asked = answering("accept", {"reviewer": "ana"})
    async with Client(build_app(DuckDBTraceStore(db_path)), elicitation_callback=signs) as client:
        signed = (await client.call_tool("label_trace", {"trace_id": "t01", "criterion": "grounded", "value": "pass",
                                                         "reviewer": "ana"})).structured_content
    async with Client(build_app(DuckDBTraceStore(db_path))) as client:   # cannot ask anyone
        unsigned = (await client.call_tool("label_trace", {"trace_id": "t01", "criterion": "grounded",
                                                           "value": "fail", "reviewer": "ana"})).structured_content
    assert asked and "as your decision" in asked[0]
    assert signed["label"]["reviewer"] == "ana"
    assert unsigned["label"]["reviewer"].startswith("agent:") and unsigned["superseded"]["reviewer"] == "ana"
    with duckdb.connect(str(db_path), read_only=True) as con:
        current = con.execute("SELECT reviewer, value FROM current_labels").fetchall()
        people = con.execute(f"SELECT reviewer, value FROM {PEOPLE_LABELS}").fetchall()
    assert current == [(unsigned["label"]["reviewer"], "fail")] and people == [("ana", "pass")]
