"""No legal call returns more than the result budget: each tool's worst legal arguments, through a
real client, on a store built to overflow (long payloads, many tags, a 400-span trace, 120-record
dataset and run). Where the data exceeds the budget the result says so and names the next call."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from mcp import Client

from server.mcp.app import build_app
from server.mcp.budget import BUDGET_CHARS, size
from server.monitoring.loop import run_pass
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import BASE_MS, span, trace
from tools.traces.tagging import MAX_UNKNOWN_LISTED

pytestmark = pytest.mark.anyio

WORDS = "refund order shipment password invoice account courier warehouse delay damaged".split()
TRACES = 120


def _text(rng: random.Random, chars: int) -> str:
    words, used = [], 0
    while used < chars:
        words.append(rng.choice(WORDS) + str(rng.randrange(10**6)))
        used += len(words[-1]) + 1
    return " ".join(words)


@pytest.fixture(scope="module")
def heavy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long requests/responses, 25 long tags a trace, and one trace of 400 spans x 5 KB."""
    rng = random.Random(18)
    path = tmp_path_factory.mktemp("budget") / "heavy.duckdb"
    traces = []
    for i in range(TRACES):
        t = trace(f"tr-{i:04d}", i, status="ERROR" if i % 4 == 0 else "OK", question=_text(rng, 3000),
                  answer=_text(rng, 3000), tool=f"tool_with_a_long_name_{i % 7}",
                  tags={f"tag_key_number_{k}": _text(rng, 60) for k in range(25)})
        traces.append(t)
    wide = trace("wide", TRACES + 1)
    wide.spans += [span(f"w{i:04d}", "wide-root", "TOOL", BASE_MS + i, 1, name=f"tool_{i}", tool=f"t{i % 40}",
                        inputs=_text(rng, 2500), outputs=_text(rng, 2500)) for i in range(400)]
    traces.append(wide)
    store = DuckDBTraceStore(path)
    store.write_traces(traces)
    store.release()
    return path


async def _call(client: Client, tool: str, args: dict) -> tuple[dict, str]:
    result = await client.call_tool(tool, args)
    text = "\n".join(c.text for c in result.content if c.type == "text")
    assert not result.is_error, text
    structured = result.structured_content
    assert size(structured) + len(text) <= BUDGET_CHARS, (tool, size(structured), len(text))
    assert structured["summary"] and len(text) <= 20_000, tool
    return structured, text


async def test_every_read_tool_stays_within_the_budget_at_its_worst_legal_arguments(heavy: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(heavy))) as client:
        found, _ = await _call(client, "search_traces", {"limit": 200})
        # 200 rows of long previews and 20 tags each do not fit: the page stops early and pages on
        assert 0 < len(found["traces"]) < 200 and found["next_page_token"] and found["total_matches"] == TRACES + 1
        nxt, _ = await _call(client, "search_traces", {"limit": 200, "page_token": found["next_page_token"]})
        assert not {t["trace_id"] for t in nxt["traces"]} & {t["trace_id"] for t in found["traces"]}
        assert found["traces"][1]["more_tags"] == 5   # 25 tags, 20 shown

        whole, _ = await _call(client, "get_trace", {"trace_id": "wide", "max_chars": 40_000,
                                                     "include_attributes": True})
        assert whole["next_span_offset"] and whole["span_total"] == 403
        field, _ = await _call(client, "get_trace", {"trace_id": "wide", "span_id": "w0300", "field": "outputs",
                                                     "max_chars": 40_000})
        assert field["content"]["total_chars"] >= 2500

        rows, _ = await _call(client, "query_sql", {"sql": "SELECT * FROM otel_spans", "limit": 1000})
        assert "query_sql(" in rows["truncated_to_fit"] and "limit=" in rows["truncated_to_fit"]
        assert 0 < len(rows["rows"]) < 1000 and "next_page_token" not in rows
        text_rows, _ = await _call(client, "query_sql", {"sql": "SELECT request, response FROM traces", "limit": 1000})
        assert len(text_rows["rows"]) < TRACES

        described, _ = await _call(client, "describe_store", {})
        assert described["trace_count"] == TRACES + 1
        profile, _ = await _call(client, "profile_traces", {"limit": 50})
        assert profile["trace_count"] == TRACES + 1
        await _call(client, "error_patterns", {"window": "30d", "anchor": "latest", "limit": 50})


async def test_writes_and_their_reads_stay_within_the_budget(heavy: Path, tmp_path: Path) -> None:
    copy = tmp_path / "heavy.duckdb"
    copy.write_bytes(heavy.read_bytes())
    unknown = [f"no-such-trace-{i:05d}" for i in range(9_999)]   # the most a call may pass, with tr-0001
    async with Client(build_app(DuckDBTraceStore(copy))) as client:
        tagged, text = await _call(client, "tag_trace", {"key": "eval_candidate", "value": "x",
                                                         "trace_ids": unknown + ["tr-0001"]})
        assert (tagged["changed"], tagged["unknown_count"], len(tagged["unknown_ids"])) == (1, 9_999, MAX_UNKNOWN_LISTED)
        assert "truncated_to_fit" not in tagged and len(text) < 200
        untagged, _ = await _call(client, "untag_trace", {"key": "eval_candidate", "trace_ids": unknown})
        assert untagged["changed"] == 0
        await _call(client, "tag_trace", {"key": "eval_candidate", "value": "all", "filter": "span_count > 0"})

        built, _ = await _call(client, "build_dataset_from_tags", {"name": "big", "tags": ["eval_candidate=all"],
                                                                   "redact": False})
        assert built["record_count"] == TRACES + 1
        page, _ = await _call(client, "get_dataset", {"name": "big", "limit": 200, "max_chars": 200_000})
        assert page["next_offset"] == len(page["records"]) and 0 < len(page["records"]) <= 200
        await _call(client, "list_datasets", {})

        await _call(client, "define_judge", {"name": "slow", "kind": "rule", "criterion": "latency",
                                             "spec": {"type": "latency", "max_ms": 1000}})
        run, _ = await _call(client, "run_judges", {"judges": ["slow"], "dataset": "big"})
        results, _ = await _call(client, "get_run_results", {"run_id": run["run_id"], "limit": 200})
        assert results["results"]
        await _call(client, "get_run", {"run_id": run["run_id"]})
        await _call(client, "list_runs", {"limit": 100})
        queued, _ = await _call(client, "annotation_queue", {"criterion": "latency", "limit": 200})
        assert queued["items"]

        why = "x" * 5000   # the longest rationale a label may carry
        for i in range(24):
            await _call(client, "label_trace", {"trace_id": f"tr-{i:04d}", "criterion": "latency",
                                                "value": "fail" if i % 2 else "pass", "rationale": why})
        labels, _ = await _call(client, "list_labels", {"limit": 500, "include_history": True})
        assert labels["labels"]
        report, _ = await _call(client, "calibration_report", {"judge": "slow", "criterion": "latency",
                                                               "max_disagreements": 200, "resamples": 100,
                                                               "include_plot": False})
        assert report["n"] == 24
        again, _ = await _call(client, "run_judges", {"judges": ["slow"], "dataset": "big"})
        await _call(client, "compare_runs", {"baseline_run": run["run_id"], "candidate_run": again["run_id"],
                                             "max_flips": 500, "allow_uncalibrated": True, "min_items": 1})
        await _call(client, "train_classifier_judge", {"name": "slow_clf", "criterion": "latency"})
        await _call(client, "list_judges", {})
        await _call(client, "get_judge", {"name": "slow_clf"})

        merged, _ = await _call(client, "merge_records", {"name": "big", "records": [
            {"trace_id": f"tr-{i:04d}", "expectations": {"note": why}} for i in range(50)], "redact": False})
        await _call(client, "set_expectations", {"name": "big", "from_labels": True, "redact": False})
        await _call(client, "diff_datasets", {"name": "big", "a": 1, "b": merged["version"] + 1})
        exported, _ = await _call(client, "export_dataset", {"name": "big"})
        await _call(client, "import_dataset", {"name": "big_copy", "file": Path(exported["path"]).name,
                                               "redact": False})
        (copy.parent / "exports" / "labels.csv").write_text(
            "trace_id,criterion,value,reviewer\n" + "".join(f"tr-{i:04d},tone,pass,ana\n" for i in range(TRACES)))
        await _call(client, "import_labels", {"file": "labels.csv"})

        await _call(client, "define_monitor", {"name": "watch", "judges": ["slow"], "every": "1h", "settle": "1m",
                                               "since": BASE_MS - 3_600_000, "alerts": {"slice_by": ["model"]}})
        await run_pass(DuckDBTraceStore(copy), max_windows=24)
        status, _ = await _call(client, "monitor_status", {"monitor": "watch", "windows": 100, "include_plot": False})
        assert status["windows"]
        await _call(client, "list_monitors", {})
        await _call(client, "list_alerts", {"limit": 200})
        refused = await client.call_tool("ack_alert", {"alert_id": "al-" + "0" * 12, "note": why[:2000]})
        assert refused.is_error and len(refused.content[0].text) < 1_000
        listed = {t.name for t in (await client.list_tools()).tools}
    assert listed <= WORST_CASES, listed - WORST_CASES   # a new tool needs its worst call here


WORST_CASES = {"search_traces", "get_trace", "query_sql", "describe_store", "profile_traces", "error_patterns",
               "tag_trace", "untag_trace", "build_dataset_from_tags", "get_dataset", "list_datasets", "define_judge",
               "run_judges", "get_run_results", "get_run", "list_runs", "annotation_queue", "label_trace",
               "list_labels", "calibration_report", "compare_runs", "train_classifier_judge", "list_judges",
               "get_judge", "merge_records", "set_expectations", "diff_datasets", "export_dataset", "import_dataset",
               "import_labels", "define_monitor", "monitor_status", "list_monitors", "list_alerts", "ack_alert"}
