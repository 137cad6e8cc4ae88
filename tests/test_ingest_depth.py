"""No nesting depth crashes a load: a value nested 10,000 levels deep (raw JSON, an OTLP AnyValue,
a JSON-lines line or a protobuf AnyValue) is one reported error and every good file, line and
trace beside it is stored."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from server.ingestion.json_text import MAX_DEPTH
from server.ingestion.otlp_values import MAX_ANY_DEPTH
from tests.factory import stored_rows
from tests.test_ingest_bad_values import ingest, otlp, write_lines

TOO_DEEP = f"nested over {MAX_DEPTH} levels deep (the limit is {MAX_DEPTH})"


def nested_any_value(levels: int) -> str:
    return '{"arrayValue":{"values":[' * levels + '{"stringValue":"x"}' + "]}}" * levels


def with_attribute(trace_id: str, any_value_json: str) -> str:
    doc = otlp(trace_id)
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
        {"key": "deep", "value": {"stringValue": "HERE"}})
    return json.dumps(doc).replace('{"stringValue": "HERE"}', any_value_json)


def test_a_folder_with_deep_files_stores_every_good_file_and_names_each_bad_one(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    for i in range(5):
        write_lines(folder / f"good{i}.json", otlp(f"{i + 1:032x}"))
    (folder / "deep_raw.json").write_text("[" * 10_000 + "]" * 10_000)
    (folder / "deep_any.json").write_text(with_attribute("a" * 32, nested_any_value(10_000)))
    (folder / "mixed.jsonl").write_text(json.dumps(otlp("b" * 32)) + "\n" + "{\"a\":" * 5_000 + "1" + "}" * 5_000
                                        + "\n" + json.dumps(otlp("c" * 32)) + "\n")
    report = ingest(tmp_path / "store.duckdb", folder)
    assert report["traces"] == 7 and report["error_count"] == 3
    assert sorted(report["errors"]) == sorted([
        f"{folder / 'deep_any.json'}: not valid JSON: {TOO_DEEP}; no trace format needs that, so the value is likely "
        "corrupt or hostile; fix the file or re-export it as one JSON document or JSON lines.",
        f"{folder / 'deep_raw.json'}: not valid JSON: {TOO_DEEP}; no trace format needs that, so the value is likely "
        "corrupt or hostile; fix the file or re-export it as one JSON document or JSON lines.",
        f"{folder / 'mixed.jsonl'} (line 2): not valid JSON: {TOO_DEEP}; no trace format needs that, so the value is "
        "likely corrupt or hostile; fix or remove this line.",
    ])
    assert len(stored_rows(tmp_path / "store.duckdb", "SELECT trace_id FROM traces")) == 7


def test_a_deep_line_skips_only_itself_and_shallow_nesting_is_stored_as_written(tmp_path: Path) -> None:
    deep = with_attribute("d" * 32, nested_any_value(MAX_ANY_DEPTH + 1))
    path = tmp_path / "two.jsonl"
    path.write_text(deep + "\n" + json.dumps(otlp("e" * 32)) + "\n")
    report = ingest(tmp_path / "store.duckdb", path)
    assert report["traces"] == 1 and report["error_count"] == 1
    assert TOO_DEEP in report["errors"][0]  # 41 AnyValue levels are 123+ JSON levels: the JSON bound comes first
    shallow = with_attribute("f" * 32, nested_any_value(3))
    (tmp_path / "ok.json").write_text(shallow)
    assert ingest(tmp_path / "store.duckdb", tmp_path / "ok.json")["traces"] == 1
    attrs = stored_rows(tmp_path / "store.duckdb", f"SELECT attributes FROM spans WHERE trace_id = '{'f' * 32}'")
    assert json.loads(attrs[0][0])["deep"] == [[["x"]]]


def test_a_protobuf_anyvalue_past_the_limit_skips_only_its_trace(tmp_path: Path) -> None:
    good, deep = otlp("1" * 32), json.loads(with_attribute("2" * 32, nested_any_value(MAX_ANY_DEPTH + 2)))
    doc = {"resourceSpans": good["resourceSpans"] + deep["resourceSpans"]}
    for resource_spans in doc["resourceSpans"]:
        for span in resource_spans["scopeSpans"][0]["spans"]:
            span["traceId"] = base64.b64encode(bytes.fromhex(span["traceId"])).decode()
            span["spanId"] = base64.b64encode(bytes.fromhex(span["spanId"])).decode()
    path = tmp_path / "both.pb"
    path.write_bytes(ParseDict(doc, ExportTraceServiceRequest()).SerializeToString())
    report = ingest(tmp_path / "store.duckdb", path)
    assert report["traces"] == 1 and report["error_count"] == 1, report
    assert f"nested over {MAX_ANY_DEPTH} levels deep" in report["errors"][0]
    assert stored_rows(tmp_path / "store.duckdb", "SELECT trace_id FROM traces") == [("1" * 32,)]
