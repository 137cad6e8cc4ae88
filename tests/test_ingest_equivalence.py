"""Every stored row stays what the original reader and writer produced.

The corpus below is deterministic OTLP/JSON lines full of the quirks ingestion must treat the
same on every code path: each attribute convention in ``server/ingestion/attributes.py`` (GenAI,
its deprecated names, OpenInference, MLflow, Langfuse over OTel), every AnyValue shape, id and
time encodings, floats, unicode and control characters, duplicate spans, traces split over lines,
bad lines and bad traces. It is ingested together with the checked-in fixtures, and each trace's
rows (traces, spans, tags, labels, scores) are compared with digests recorded from the code before
the ingest fast path existed (``tests/data/ingest/equivalence_golden.json``). A change that alters
any stored value fails here, naming the traces that differ.

Regenerate the digests only for an intended change of stored values:
``TRACESIEVE_REGEN_GOLDEN=1 pytest tests/test_ingest_equivalence.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import duckdb

from server.ingestion.pipeline import IngestReport, ingest
from server.ingestion import list_files, read_path
from server.ingestion.parallel import ingest_files
from server.storage.duckdb.store import DuckDBTraceStore
from tests.conftest import FIXTURES

DATA = Path(__file__).parent / "data" / "ingest"
GOLDEN = DATA / "equivalence_golden.json"
#: Attribute maps take their time from the file's mtime, so every input file gets this one.
MTIME_NS = 1_762_000_000_123_456_789

SEED = 20251123

_MESSAGES = ['{"messages": [{"role": "user", "content": "hi"}]}', "plain text input", "",
             '[{"role":"user","parts":[{"type":"text","content":"Wetter in Köln? ☔ \\u2028 end"}]}]',
             '"double encoded"', "tab\there\nnewline \x01 ctrl \x7f del ü 𝄞", "{not json", "[1, 2.5, 1e16]"]
_MODELS = ["gpt-4o", "claude-3-5-sonnet", "", "GPT-4O-MINI", '"quoted-model"']
_FLOATS = [0.1, 2.5, 1e16, 1.5e-7, -0.0, 1e300, 123456789.125, 3.0, 1e22, 5e-324]


def _any(rng: random.Random, value: Any) -> dict[str, Any]:
    """``value`` as an OTLP AnyValue, in one of the encodings exporters use for its type."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return rng.choice([{"intValue": str(value)}, {"intValue": value}])
    if isinstance(value, float):
        return rng.choice([{"doubleValue": value}, {"doubleValue": repr(value)}])
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any(rng, item) for item in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _any(rng, v)} for k, v in value.items()]}}
    return {"stringValue": value}


def _odd_value(rng: random.Random) -> Any:
    """AnyValues (and non-AnyValues) that only lenient decoding copes with."""
    return rng.choice([
        {}, None, {"bytesValue": "AAEC"}, {"doubleValue": "not a number"}, {"intValue": "12.7"},
        {"intValue": "abc"}, {"arrayValue": None}, {"kvlistValue": {}}, {"arrayValue": {"values": [{}, 1, "x"]}},
        {"unknownValue": 1}, 7, "bare string", [1, {"a": 2}], 2.75,
        {"doubleValue": 1e16}, {"boolValue": 0}, {"stringValue": None},
    ])


def _genai(rng: random.Random) -> dict[str, Any]:
    op = rng.choice(["chat", "text_completion", "generate_content", "execute_tool", "retrieval", "embeddings",
                     "invoke_agent", "create_agent", "invoke_workflow", "CHAT", "unknown_op", ""])
    attrs: dict[str, Any] = {"gen_ai.operation.name": op}
    if rng.random() < 0.7:
        attrs["gen_ai.request.model"] = rng.choice(_MODELS)
    if rng.random() < 0.5:
        attrs["gen_ai.response.model"] = rng.choice(_MODELS)
    if rng.random() < 0.7:
        attrs["gen_ai.usage.input_tokens"] = rng.choice([rng.randint(0, 5000), "42", 7.9, "x", True])
        attrs["gen_ai.usage.output_tokens"] = rng.randint(0, 900)
    if rng.random() < 0.7:
        attrs["gen_ai.input.messages"] = rng.choice(_MESSAGES)
        attrs["gen_ai.output.messages"] = rng.choice(_MESSAGES)
    if op == "execute_tool" or rng.random() < 0.1:
        attrs["gen_ai.tool.name"] = rng.choice(["get_weather", "", "search_kb"])
        attrs["gen_ai.tool.call.arguments"] = rng.choice(['{"city": "Paris"}', "", "raw"])
        attrs["gen_ai.tool.call.result"] = rng.choice(['{"ok": true}', "done"])
    if rng.random() < 0.3:
        attrs["gen_ai.conversation.id"] = rng.choice(["conv-1", "conv-2", "", '"conv-quoted"'])
    if rng.random() < 0.2:
        attrs["gen_ai.request.temperature"] = rng.choice(_FLOATS)
    return attrs


def _genai_deprecated(rng: random.Random) -> dict[str, Any]:
    attrs: dict[str, Any] = {"gen_ai.system": "openai", "gen_ai.request.model": rng.choice(_MODELS)}
    attrs["gen_ai.usage.prompt_tokens"] = rng.randint(1, 999)
    attrs["gen_ai.usage.completion_tokens"] = rng.choice([rng.randint(1, 99), "13"])
    if rng.random() < 0.5:
        attrs["gen_ai.prompt"] = rng.choice(_MESSAGES)
        attrs["gen_ai.completion"] = rng.choice(_MESSAGES)
    else:  # index-flattened messages, sometimes with a gap or out of order
        for i in rng.sample(range(4), rng.randint(1, 3)):
            attrs[f"gen_ai.prompt.{i}.role"] = rng.choice(["user", "system"])
            attrs[f"gen_ai.prompt.{i}.content"] = rng.choice(_MESSAGES)
        attrs["gen_ai.completion.0.role"] = "assistant"
        attrs["gen_ai.completion.0.content"] = "ok"
        if rng.random() < 0.3:
            attrs["gen_ai.completion.0.tool_calls.0.name"] = "get_weather"
    return attrs


def _openinference(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["LLM", "llm", "CHAIN", "TOOL", "RETRIEVER", "EMBEDDING", "AGENT", "RERANKER", "GUARDRAIL",
                       "EVALUATOR", "UNKNOWN", "bogus"])
    attrs: dict[str, Any] = {"openinference.span.kind": kind}
    if rng.random() < 0.6:
        attrs["llm.model_name"] = rng.choice(_MODELS)
        attrs["llm.token_count.prompt"] = rng.randint(0, 3000)
        attrs["llm.token_count.completion"] = rng.choice([rng.randint(0, 300), "9", ""])
    if rng.random() < 0.5:
        attrs["input.value"] = rng.choice(_MESSAGES)
        attrs["output.value"] = rng.choice(_MESSAGES)
    else:
        for i in range(rng.randint(1, 3)):
            attrs[f"llm.input_messages.{i}.message.role"] = "user"
            attrs[f"llm.input_messages.{i}.message.content"] = rng.choice(_MESSAGES)
        attrs["llm.output_messages.0.message.content"] = "answer"
    if kind == "TOOL":
        attrs["tool.name"] = rng.choice(["lookup_order", ""])
    if rng.random() < 0.4:
        attrs["session.id"] = rng.choice(["s-1", "s-2"])
        attrs["user.id"] = rng.choice(["u-1", "u-2", 17])
        attrs["llm.prompt_template.version"] = rng.choice(["v1", "v2", 3])
    return attrs


def _mlflow(rng: random.Random) -> dict[str, Any]:
    attrs: dict[str, Any] = {"mlflow.spanType": rng.choice(['"AGENT"', "CHAT_MODEL", '"TOOL"', "LLM", '"PARSER"',
                                                             "SPAN", "", '"UNKNOWN"'])}
    if rng.random() < 0.6:
        attrs["mlflow.spanInputs"] = rng.choice(['{"query": "q"}', '"text"', ""])
        attrs["mlflow.spanOutputs"] = rng.choice(['{"answer": "a"}', "[]"])
    usage = {"input_tokens": rng.randint(1, 50), "output_tokens": rng.randint(1, 50)}
    attrs["mlflow.chat.tokenUsage"] = rng.choice([json.dumps(usage), usage, "{broken", '"str"'])
    if rng.random() < 0.5:
        attrs["mlflow.llm.model"] = rng.choice(_MODELS)
    if rng.random() < 0.4:
        attrs["mlflow.trace.session"] = "ml-sess"
        attrs["mlflow.trace.user"] = "ml-user"
    return attrs


def _langfuse(rng: random.Random) -> dict[str, Any]:
    attrs: dict[str, Any] = {"langfuse.observation.type": rng.choice(["GENERATION", "generation", "SPAN", "EVENT"])}
    if rng.random() < 0.6:
        attrs["langfuse.session.id"] = "lf-sess"
        attrs["langfuse.user.id"] = "lf-user"
        attrs["langfuse.observation.prompt.version"] = rng.choice([4, "5"])
    attrs["input"] = rng.choice(_MESSAGES + [{"nested": [1, 2]}])
    attrs["output"] = rng.choice(_MESSAGES)
    return attrs


_CONVENTIONS = (_genai, _genai_deprecated, _openinference, _mlflow, _langfuse)


def _attributes(rng: random.Random) -> list[Any]:
    attrs: dict[str, Any] = {}
    for convention in rng.sample(_CONVENTIONS, rng.choice([1, 1, 1, 2])):
        attrs.update(convention(rng))
    if rng.random() < 0.15:
        attrs["error.type"] = rng.choice(["TimeoutError", "", "500"])
    if rng.random() < 0.2:
        attrs["prompt_version"] = "pv-plain"
    if rng.random() < 0.2:
        attrs["enduser.id"] = "end-user"
    if rng.random() < 0.15:
        attrs["app.metric"] = rng.choice(_FLOATS)
    pairs: list[Any] = [{"key": key, "value": _any(rng, value)} for key, value in attrs.items()]
    if rng.random() < 0.3:
        pairs.append({"key": rng.choice(["odd.value", "input.value", "gen_ai.usage.input_tokens"]),
                      "value": _odd_value(rng)})
    if rng.random() < 0.05:  # too big for a token column, fine as an attribute
        pairs.append({"key": "app.big", "value": {"intValue": 12345678901234567890123}})
    if rng.random() < 0.05:
        pairs.append({"no_key": True})
    if rng.random() < 0.05:
        pairs.append({"key": 12, "value": {"stringValue": "int key"}})
    if rng.random() < 0.05:
        pairs.append({"key": "otel.span.kind", "value": {"stringValue": "preset"}})
    rng.shuffle(pairs)
    return pairs


def _hex(rng: random.Random, nbytes: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(nbytes * 2))


def _encode_id(rng: random.Random, hex_id: str) -> Any:
    roll = rng.random()
    if roll < 0.7:
        return hex_id
    if roll < 0.8:
        return hex_id.upper()
    if roll < 0.9:
        return base64.b64encode(bytes.fromhex(hex_id)).decode()
    return "0x" + hex_id.lstrip("0") if len(hex_id) == 16 else hex_id


def _time(rng: random.Random, ns: int) -> Any:
    return rng.choice([str(ns), str(ns), ns, "2025-11-02T10:00:00." + str(ns % 10**9).rjust(9, "0") + "Z"])


def _span(rng: random.Random, trace_id: Any, span_hex: str, parent: str | None, start: int) -> dict[str, Any]:
    duration = rng.randint(0, 5_000_000_000)
    span: dict[str, Any] = {"traceId": trace_id, "spanId": _encode_id(rng, span_hex),
                            "name": rng.choice(["agent", "llm call", "tool", "", "ünïcode ☃", "retrieve"]),
                            "startTimeUnixNano": _time(rng, start), "endTimeUnixNano": str(start + duration),
                            "attributes": _attributes(rng)}
    if parent is not None:
        span["parentSpanId"] = _encode_id(rng, parent) if rng.random() < 0.95 else "ffffffffffffffff"
    if rng.random() < 0.8:
        span["kind"] = rng.choice([0, 1, 2, 3, 4, 5, 9, "SPAN_KIND_CLIENT", "SPAN_KIND_SERVER", "2", "internal", ""])
    roll = rng.random()
    if roll < 0.15:
        span["status"] = {"code": rng.choice([2, "STATUS_CODE_ERROR", "ERROR"]),
                          "message": rng.choice(["boom", "", None])}
    elif roll < 0.7:
        span["status"] = {"code": rng.choice([0, 1, "STATUS_CODE_OK", "1", 7])}
    if rng.random() < 0.15:
        span["events"] = [{"name": rng.choice(["exception", "log"]), "timeUnixNano": str(start + 10),
                           "attributes": [{"key": "exception.message", "value": {"stringValue": "it broke"}},
                                          {"key": "exception.type", "value": {"stringValue": "ValueError"}},
                                          {"key": "retry.delay", "value": {"doubleValue": 0.25}}]},
                          {"timeUnixNano": start + 20}]
    if rng.random() < 0.02:
        span["endTimeUnixNano"] = None  # no end: the span ends when it starts
    return span


def _trace_spans(rng: random.Random, number: int) -> tuple[list[dict[str, Any]], str]:
    trace_hex = _hex(rng, 16)
    trace_id = _encode_id(rng, trace_hex)
    start = 1_760_000_000_000_000_000 + number * 7_000_000_003
    count = rng.choice([1, 1, 2, 3, 5, 8, 20])
    ids = [_hex(rng, 8) for _ in range(count)]
    spans = []
    for index, span_hex in enumerate(ids):
        parent = None if index == 0 else ids[rng.randrange(index)]
        spans.append(_span(rng, trace_id, span_hex, parent, start + rng.randint(0, 2) * 1_000_000 * index))
    if rng.random() < 0.1:  # an exporter retry: the same span again, later copy wins
        spans.append(dict(spans[-1], name="retried"))
    if rng.random() < 0.05:
        spans.append(_span(rng, trace_id, _hex(rng, 8), None, start))  # a second root
    return spans, trace_hex


def _envelope(rng: random.Random, spans: list[dict[str, Any]]) -> dict[str, Any]:
    resource: dict[str, Any] = {"service.name": rng.choice(["svc-a", "svc-b"])}
    env_key = rng.choice(["deployment.environment.name", "deployment.environment", None])
    if env_key:
        resource[env_key] = rng.choice(["production", "staging", "", 3])
    return {"resourceSpans": [{"resource": {"attributes": [{"key": k, "value": _any(rng, v)}
                                                           for k, v in resource.items()]},
                               "scopeSpans": [{"scope": rng.choice([{"name": "acme", "version": "1.0"}, {},
                                                                    {"name": "lib"}]),
                                               "spans": spans}]}]}


_BAD_LINES = [
    "{not json at all",
    "[1, 2, 3]",
    '{"hello": "world"}',
    '{"resourceSpans": [{"scopeSpans": [{"spans": [1, 2]}]}]}',
    '{"resourceSpans": "nope"}',
    '"just a string"',
    '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "", "spanId": "aa", '
    '"startTimeUnixNano": "1"}]}]}]}',
    '{"gen_ai.operation.name": "chat", "gen_ai.request.model": "bare-map"}',
]


def _broken_trace(rng: random.Random, number: int) -> list[dict[str, Any]]:
    spans, _ = _trace_spans(rng, number)
    span = spans[-1]
    problem = number % 6
    if problem == 0:
        del span["spanId"]
    elif problem == 1:
        del span["startTimeUnixNano"]
    elif problem == 2:
        span["startTimeUnixNano"] = "yesterday"
    elif problem == 3:
        span["status"] = {"code": 2, "message": 404}  # not a string: pydantic says so
    elif problem == 4:
        span["status"] = "ERROR"
    else:
        span["events"] = [{"name": "exception", "attributes": [{"key": "exception.message",
                                                                "value": {"stringValue": "x"}}], "timeUnixNano": "?"}]
    return spans


def corpus_lines(traces: int = 400) -> list[str]:
    """The corpus as JSON lines (some deliberately broken), the same on every run."""
    rng = random.Random(SEED)
    lines: list[str] = []
    held: list[dict[str, Any]] = []  # spans of split traces, written on a later line
    for number in range(traces):
        spans = _broken_trace(rng, number) if number % 25 == 7 else _trace_spans(rng, number)[0]
        if len(spans) > 1 and rng.random() < 0.15:
            cut = rng.randrange(1, len(spans))
            held.extend(spans[cut:])
            spans = spans[:cut]
        batch = [spans]
        if held and rng.random() < 0.3:
            batch.append(held)
            held = []
        lines.append(json.dumps(_envelope(rng, [s for part in batch for s in part]), ensure_ascii=rng.random() < 0.5))
        if number % 40 == 3:
            lines.append(_BAD_LINES[(number // 40) % len(_BAD_LINES)])
        if number % 50 == 9:
            lines.append("")
    if held:
        lines.append(json.dumps(_envelope(rng, held)))
    # a line with a 30-digit integer literal and NaN: stdlib-only JSON
    lines.append('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"' + "ab" * 16 + '","spanId":"'
                 + "cd" * 8 + '","name":"big","startTimeUnixNano":1700000000000000000,"attributes":['
                 '{"key":"big","value":{"intValue":123456789012345678901234567890}},'
                 '{"key":"raw_big","value":98765432109876543210},{"key":"nan","value":{"doubleValue":NaN}},'
                 '{"key":"inf","value":Infinity}]}]}]}]}')
    return lines


# --- the comparison ---------------------------------------------------------------------------

#: Per table: the columns that identify a row's trace, and the ingest-time clock columns left out.
_TABLES = {
    # traces.tags and spans.trace_timestamp_ms are copies of tags / traces.timestamp_ms, checked
    # by tests/test_denormalized_copies.py; the digests were recorded before they existed.
    "traces": ("trace_id", ("ingested_at_ms", "tags")),
    "spans": ("trace_id", ("trace_timestamp_ms",)),
    "tags": ("trace_id", ("set_at_ms",)),
    "tag_history": ("trace_id", ("at_ms",)),
    "labels": ("trace_id", ()),
    "scores": ("trace_id", ()),
}


def _inputs(root: Path) -> Path:
    """The corpus plus the checked-in fixtures, copied under ``root`` with a fixed mtime."""
    root.mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    shutil.copytree(DATA, root / "ingest", ignore=shutil.ignore_patterns(GOLDEN.name))
    for name in ("otlp", "openinference-genai", "langfuse"):
        if (FIXTURES / name).exists():
            shutil.copytree(FIXTURES / name, root / name)
    for path in root.rglob("*"):
        os.utime(path, ns=(MTIME_NS, MTIME_NS))
    return root


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return value


def stored_digests(db: Path) -> dict[str, str]:
    """trace id -> sha256 over that trace's rows in every table (ingest-time clocks left out)."""
    rows: dict[str, list[Any]] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for table, (key, skipped) in _TABLES.items():
            cursor = con.execute(f"SELECT * EXCLUDE ({', '.join(skipped)}) FROM {table}" if skipped
                                 else f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            for row in sorted(cursor.fetchall(), key=repr):
                record = dict(zip(names, row))
                rows.setdefault(record[key], []).append([table, _canonical(list(record.items()))])
    return {trace_id: hashlib.sha256(json.dumps(found, ensure_ascii=False).encode()).hexdigest()
            for trace_id, found in sorted(rows.items())}


def ingest_everything(tmp_path: Path, *, workers: int | None = None,
                      **options: Any) -> tuple[IngestReport, dict[str, str]]:
    """Ingest the inputs twice into a fresh store (the second time replaces every trace); with
    ``workers``, through ``ingest_files`` reading the files in that many processes."""
    root = _inputs(tmp_path / "in")
    store = DuckDBTraceStore(tmp_path / "store.duckdb")

    def load() -> IngestReport:
        if workers is None:
            return ingest(store, read_path(root), **options)
        return ingest_files(store, list_files(root), workers=workers, min_parallel_bytes=0, **options)

    load()
    report = load()
    store.release()
    report.errors = [error.replace(str(root), "<in>") for error in report.errors]
    return report, stored_digests(tmp_path / "store.duckdb")


def test_every_stored_row_matches_the_original_reader_and_writer(tmp_path: Path) -> None:
    report, digests = ingest_everything(tmp_path)
    found = {"report": report.model_dump(), "digests": digests}
    if os.environ.get("TRACESIEVE_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert found["report"] == expected["report"]
    missing = sorted(expected["digests"].keys() - digests.keys())
    extra = sorted(digests.keys() - expected["digests"].keys())
    changed = sorted(k for k in digests.keys() & expected["digests"].keys() if digests[k] != expected["digests"][k])
    assert (missing, extra, changed) == ([], [], []), "stored rows differ from the original ingest"


def test_reading_the_files_in_worker_processes_stores_the_same_rows_and_report(tmp_path: Path) -> None:
    report, digests = ingest_everything(tmp_path, workers=2)
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert report.model_dump() == expected["report"]
    assert digests == expected["digests"]


def test_worker_processes_with_small_batches_store_the_same_rows(tmp_path: Path) -> None:
    _, digests = ingest_everything(tmp_path, workers=2, batch_size=7)
    assert digests == json.loads(GOLDEN.read_text(encoding="utf-8"))["digests"]


def test_small_batches_store_the_same_rows(tmp_path: Path) -> None:
    """Batch boundaries (and so transactions) must not change what is stored."""
    _, one_batch = ingest_everything(tmp_path / "a", batch_size=100_000)
    _, small = ingest_everything(tmp_path / "b", batch_size=7)
    assert one_batch == small
