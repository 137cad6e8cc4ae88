"""One bad value costs at most its own trace: integers beyond 64 bits and lone UTF-16 surrogates.

Each file here is written the way exporters write them (``json.dumps`` escapes a lone surrogate as
``\\ud800``, as JavaScript's ``JSON.stringify`` does) and loaded by ``tracesieve ingest`` into a
real store. Before the fix either value stopped the whole ingest inside the Arrow conversion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from server.cli.main import cli
from tests.factory import stored_rows

LIMITS = "outside the 64-bit integer range the store holds (-9223372036854775808 to 9223372036854775807)"
FIX_VALUE = "fix or remove that value in the export and ingest the file again."
FIX_TIME = ("check the value and its unit in the export (64-bit epoch nanoseconds end in the year 2262), "
            "fix it and ingest the file again.")
TOO_BIG = 99999999999999999999  # 20 digits: more than 2**63 - 1
LONE = "\ud800"  # half of a surrogate pair; json.dumps writes it as the escape \ud800


# --- running the real CLI into a real store ---------------------------------------------------------

def ingest(db: Path, *paths: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["ingest", *map(str, paths), "--db", str(db)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.output[result.output.index("{"):])


def write_lines(path: Path, *docs: Any) -> Path:
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    return path


# --- minimal documents in each format ---------------------------------------------------------------

def otlp(trace_id: str, *, name: str = "chat", input_tokens: Any = 12, start: str = "1746093600000000000",
         attributes: dict[str, Any] | None = None) -> dict:
    attrs = [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
             {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(input_tokens)}}]
    attrs += [{"key": key, "value": {"stringValue": value}} for key, value in (attributes or {}).items()]
    span = {"traceId": trace_id, "spanId": "a1a1a1a1a1a1a1a1", "name": name, "kind": 3,
            "startTimeUnixNano": start, "endTimeUnixNano": "1746093601000000000", "attributes": attrs}
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}


def mlflow(trace_id: str, *, input_tokens: int = 12, question: str = "Weather in Paris?", tags: dict | None = None,
           duration_ms: int = 1000, metadata: dict | None = None) -> dict:
    attributes = {  # MLflow JSON-encodes every attribute value a second time
        "mlflow.spanType": json.dumps("CHAT_MODEL"),
        "mlflow.spanInputs": json.dumps({"question": question}),
        "mlflow.chat.tokenUsage": json.dumps({"input_tokens": input_tokens, "output_tokens": 8}),
    }
    span = {"trace_id": trace_id, "span_id": "AAAAAAAAAAE=", "parent_span_id": None, "name": "chat",
            "start_time_unix_nano": 1746093600000000000, "end_time_unix_nano": 1746093601000000000,
            "status": {"code": "STATUS_CODE_OK", "message": ""}, "attributes": attributes, "events": []}
    info = {"trace_id": trace_id, "request_time": "2025-05-01T10:00:00Z", "execution_duration_ms": duration_ms,
            "state": "OK", "trace_metadata": metadata or {}, "tags": tags or {}}
    return {"info": info, "data": {"spans": [span]}}


def langfuse(trace_id: str, *, usage: dict | None = None, start: Any = "2025-05-01T10:00:00Z",
             name: str = "chat", question: str = "Can I get a refund?", tags: list[str] | None = None,
             scores: list[dict] | None = None) -> dict:
    observation = {"id": f"{trace_id}-gen", "type": "GENERATION", "name": name, "startTime": start,
                   "endTime": "2025-05-01T10:00:01Z", "model": "gpt-4o",
                   "usageDetails": usage or {"input": 10, "output": 5}}
    trace = {"id": trace_id, "timestamp": "2025-05-01T10:00:00Z", "name": "support", "input": question,
             "tags": tags or [], "scores": scores or []}
    return {"trace": trace, "observations": [observation]}


# --- integers beyond 64 bits ----------------------------------------------------------------------

def test_an_otlp_token_count_beyond_64_bits_skips_only_its_trace_and_says_what_to_fix(tmp_path: Path) -> None:
    bad = write_lines(tmp_path / "a.jsonl", otlp("1" * 32), otlp("2" * 32, input_tokens=TOO_BIG), otlp("3" * 32))
    other = write_lines(tmp_path / "b.jsonl", otlp("4" * 32))  # same ingest, same batch
    db = tmp_path / "s.duckdb"
    report = ingest(db, bad, other)
    assert report["errors"] == [
        f"{bad} (trace {'2' * 32}): span 'chat' (a1a1a1a1a1a1a1a1) has input_tokens 99999999999999999999, "
        f"{LIMITS}; {FIX_VALUE}"]
    assert (report["traces"], report["error_count"]) == (3, 1)
    assert stored_rows(db, "SELECT trace_id, input_tokens FROM traces ORDER BY 1") == [
        ("1" * 32, 12), ("3" * 32, 12), ("4" * 32, 12)]
    assert stored_rows(db, "SELECT count(*) FROM spans WHERE trace_id = '" + "2" * 32 + "'") == [(0,)]  # nothing half-written


def test_an_otlp_start_time_beyond_64_bits_points_at_the_unit(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "a.jsonl", otlp("1" * 32, start="17460936000000000000000"), otlp("3" * 32))
    db = tmp_path / "s.duckdb"
    report = ingest(db, path)
    assert report["errors"] == [
        f"{path} (trace {'1' * 32}): span 'chat' (a1a1a1a1a1a1a1a1) has start_time_ns 17460936000000000000000, "
        f"{LIMITS}; {FIX_TIME}"]
    assert stored_rows(db, "SELECT trace_id FROM traces") == [("3" * 32,)]


def test_token_counts_that_fit_alone_but_not_summed_are_reported_on_the_trace(tmp_path: Path) -> None:
    half = 2**62 + 1  # each fits in 64 bits; the trace's total (LLM spans summed) does not
    doc = otlp("1" * 32, input_tokens=half)
    second = dict(doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0], spanId="b2b2b2b2b2b2b2b2")
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].append(second)
    path = write_lines(tmp_path / "a.jsonl", doc, otlp("3" * 32))
    db = tmp_path / "s.duckdb"
    report = ingest(db, path)
    assert report["errors"] == [
        f"{path} (trace {'1' * 32}): the trace has input_tokens {2 * half} (the sum over its LLM spans), "
        f"{LIMITS}; {FIX_VALUE}"]
    assert stored_rows(db, "SELECT trace_id FROM traces") == [("3" * 32,)]


def test_an_mlflow_token_count_or_duration_beyond_64_bits_skips_only_its_trace(tmp_path: Path) -> None:
    stated = {"mlflow.trace.tokenUsage": json.dumps({"input_tokens": 12, "output_tokens": TOO_BIG})}
    path = tmp_path / "traces.json"
    path.write_text(json.dumps([mlflow("tr-good"), mlflow("tr-tokens", input_tokens=TOO_BIG),
                                mlflow("tr-duration", duration_ms=-TOO_BIG), mlflow("tr-stated", metadata=stated),
                                mlflow("tr-also-good")]))
    db = tmp_path / "s.duckdb"
    report = ingest(db, path)
    assert report["errors"] == [
        f"{path} (item 2, trace tr-tokens): span 'chat' (0000000000000001) has input_tokens 99999999999999999999, "
        f"{LIMITS}; {FIX_VALUE}",
        f"{path} (item 3, trace tr-duration): the trace has execution_time_ms -99999999999999999999, "
        f"{LIMITS}; {FIX_VALUE}",
        # stated by the source, so no "(the sum over its LLM spans)"
        f"{path} (item 4, trace tr-stated): the trace has output_tokens 99999999999999999999, {LIMITS}; {FIX_VALUE}"]
    assert stored_rows(db, "SELECT trace_id, input_tokens FROM traces ORDER BY 1") == [("tr-also-good", 12), ("tr-good", 12)]


def test_a_langfuse_token_count_or_time_beyond_64_bits_skips_only_its_trace(tmp_path: Path) -> None:
    score = {"name": "rating", "source": "ANNOTATION", "value": 4, "timestamp": TOO_BIG}
    path = write_lines(tmp_path / "export.jsonl", langfuse("lf-good"),
                       langfuse("lf-tokens", usage={"input": 10, "output": TOO_BIG}),
                       langfuse("lf-time", start=10**13),  # epoch ms in the year 2286: 10**19 ns
                       langfuse("lf-score", scores=[score]),
                       langfuse("lf-huge", start=10**400))
    db = tmp_path / "s.duckdb"
    report = ingest(db, path)
    assert report["errors"] == [
        f"{path} (line 2, trace lf-tokens): span 'chat' (lf-tokens-gen) has output_tokens 99999999999999999999, "
        f"{LIMITS}; {FIX_VALUE}",
        f"{path} (line 3, trace lf-time): span 'chat' (lf-time-gen) has start_time_ns 10000000000000000000, "
        f"{LIMITS}; {FIX_TIME}",
        f"{path} (line 4, trace lf-score): label 'rating' has created_at_ms 99999999999999999999, {LIMITS}; {FIX_TIME}",
        f"{path} (line 5, trace lf-huge): span 'chat' (lf-huge-gen) has start_time_ns <a number of about 407 digits>, "
        f"{LIMITS}; {FIX_TIME}"]
    assert stored_rows(db, "SELECT trace_id, input_tokens, output_tokens FROM traces") == [("lf-good", 10, 5)]


def test_an_integer_literal_too_long_for_python_is_one_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(langfuse("lf-good")) + "\n"
                    + json.dumps(langfuse("lf-huge")).replace('"input": 10', '"input": ' + "9" * 5000) + "\n")
    db = tmp_path / "s.duckdb"
    report = ingest(db, path)
    assert report["errors"] == [
        f"{path} (line 2): not valid JSON: an integer literal is too long to read (over 4300 digits; no count, "
        "time or id is that long); fix or remove this line."]
    assert stored_rows(db, "SELECT trace_id FROM traces") == [("lf-good",)]


def test_infinite_numbers_never_stop_an_ingest(tmp_path: Path) -> None:
    # Python's json reads Infinity; a count that is not a finite number is no count (like text),
    # a start time that is not one is a bad trace
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(langfuse("lf-inf-tokens", usage={"input": float("inf"), "output": 5})) + "\n"
                    + json.dumps(langfuse("lf-inf-time", start=float("inf"))) + "\n")
    db = tmp_path / "s.duckdb"
    report = ingest(db, path)
    assert report["errors"] == [
        f"{path} (line 2, trace lf-inf-time): 'inf' is not a timestamp; use ISO-8601 (2025-01-31T12:00:00Z) "
        "or epoch ms."]
    assert stored_rows(db, "SELECT trace_id, input_tokens, output_tokens FROM traces") == [("lf-inf-tokens", None, 5)]


# --- lone surrogates ------------------------------------------------------------------------------

def test_otlp_lone_surrogates_are_stored_as_replacement_characters_and_pairs_are_kept(tmp_path: Path) -> None:
    doc = otlp("1" * 32, name=f"cut {LONE}", attributes={"input.value": f"emoji \U0001F600 cut \udc00{LONE}",
                                                        f"key{LONE}": "v"})
    path = write_lines(tmp_path / "a.jsonl", doc, otlp("3" * 32))
    assert "\\ud800" in path.read_text() and "\\ud83d\\ude00" in path.read_text()  # as JavaScript writes them
    db = tmp_path / "s.duckdb"
    report = ingest(db, path)
    assert (report["traces"], report["errors"]) == (2, [])
    [(name, inputs, attributes)] = stored_rows(db, f"SELECT name, inputs, attributes FROM spans WHERE trace_id = '{'1' * 32}'")
    assert name == "cut \ufffd"
    assert inputs == "emoji \U0001F600 cut \ufffd\ufffd"
    assert json.loads(attributes)["key\ufffd"] == "v"
    assert stored_rows(db, f"SELECT name, request FROM traces WHERE trace_id = '{'1' * 32}'") == [
        ("cut \ufffd", "emoji \U0001F600 cut \ufffd\ufffd")]


def test_mlflow_lone_surrogates_in_tags_and_double_encoded_attributes_become_replacement_characters(
        tmp_path: Path) -> None:
    # the span inputs are JSON inside JSON: there the surrogate is written "\\ud800" and only
    # becomes one on the reader's second decode
    doc = mlflow("tr-cut", question=f"Weather in Par{LONE}", tags={"note": f"half {LONE}", "environment": "prod"})
    path = tmp_path / "traces.json"
    path.write_text(json.dumps([doc, mlflow("tr-good")]))
    assert "\\\\ud800" in path.read_text() and "half \\ud800" in path.read_text()
    db = tmp_path / "s.duckdb"
    report = ingest(db, path)
    assert (report["traces"], report["errors"]) == (2, [])
    assert stored_rows(db, "SELECT request FROM traces WHERE trace_id = 'tr-cut'") == [
        ('{"question": "Weather in Par\ufffd"}',)]
    assert stored_rows(db, "SELECT key, value FROM tags WHERE trace_id = 'tr-cut' ORDER BY 1") == [
        ("environment", "prod"), ("note", "half \ufffd")]
    [(attributes,)] = stored_rows(db, "SELECT attributes FROM spans WHERE trace_id = 'tr-cut'")
    assert json.loads(attributes)["mlflow.spanInputs"] == {"question": "Weather in Par\ufffd"}


def test_langfuse_lone_surrogates_in_input_tags_and_names_become_replacement_characters(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "export.jsonl",
                       langfuse("lf-cut", name=f"gen{LONE}", question=f"refund{LONE}?", tags=[f"vip{LONE}"]),
                       langfuse("lf-good"))
    db = tmp_path / "s.duckdb"
    report = ingest(db, path)
    assert (report["traces"], report["errors"]) == (2, [])
    assert stored_rows(db, "SELECT request FROM traces WHERE trace_id = 'lf-cut'") == [("refund\ufffd?",)]
    assert stored_rows(db, "SELECT name FROM spans WHERE trace_id = 'lf-cut'") == [("gen\ufffd",)]
    assert stored_rows(db, "SELECT key FROM tags WHERE trace_id = 'lf-cut'") == [("vip\ufffd",)]


def test_an_escaped_backslash_before_ud800_is_text_not_a_surrogate(tmp_path: Path) -> None:
    # "\\ud800" in JSON is the six characters \ud800 (a Windows path, a regex): kept as written
    path = write_lines(tmp_path / "export.jsonl", langfuse("lf-path", question="C:\\ud800\\file"))
    db = tmp_path / "s.duckdb"
    assert ingest(db, path)["errors"] == []
    assert stored_rows(db, "SELECT request FROM traces") == [("C:\\ud800\\file",)]
