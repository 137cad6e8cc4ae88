"""The shortcuts ingestion takes for speed agree with the plain code they replace.

Each shortcut is compared with its reference on the values where the two could part: the
writer's orjson-or-stdlib JSON with ``json.dumps``, the id and time fast paths with their general
branches, and the background batch writer with writing inline (order, report, errors).
"""

from __future__ import annotations

import enum
import gc
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import pytest

from server.ingestion.pipeline import IngestReport, gc_paused, ingest
from server.ingestion.assemble import normalise_id, time_ns
from server.ingestion.attributes import FIELD_KEYS, map_attributes, trace_field
from server.storage.duckdb.row_json import row_json as _json
from tools.errors import IngestError
from tools.ports import WriteOutcome
from tools.models import Span, Trace


def _reference_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class _Colour(enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize("value", [
    {}, [], {"a": "b", "n": 1, "t": True, "f": False, "none": None},
    {"text": "quote \" backslash \\ slash / newline \n tab \t nul \x00 del \x7f ü 𝄞 \u2028 \ufeff"},
    {"nested": {"list": [1, "two", [3, {"four": 4}]], "empty": {}}},
    {"float": 1.0}, {"floats": [0.1, 1e16, 1.5e-7, -0.0, 1e300, 5e-324]}, {"nan": float("nan")},
    {"inf": [float("inf"), float("-inf")]}, {"big": 2**64}, {"small": -(2**63) - 1}, {"max": 2**64 - 1},
    {1: "int key"}, {"k": (1, 2)}, {"when": datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)},
    {"enum": _Colour.RED}, {"intenum": _Level.HIGH}, {"set": {1}}, {"bytes": b"x"},
    {"surrogate": "\ud800"}, [[[[[[[[[[[[[["deep"]]]]]]]]]]]]]], "plain", 7, None,
])
def test_the_writer_json_is_byte_for_byte_the_stdlib(value: Any) -> None:
    assert _json(value) == _reference_json(value)


def test_the_writer_json_survives_nesting_deeper_than_orjson_allows() -> None:
    value: Any = "leaf"
    for _ in range(300):
        value = [value]
    assert _json(value) == _reference_json(value)


@pytest.mark.parametrize("value, as_span_id, as_trace_id", [
    # expectations recorded from normalise_id before the canonical-hex shortcut existed
    ("5b8efff798038103d269b633813fc60c", "5b8efff798038103d269b633813fc60c", "5b8efff798038103d269b633813fc60c"),
    ("5B8EFFF798038103D269B633813FC60C", "5b8efff798038103d269b633813fc60c", "5b8efff798038103d269b633813fc60c"),
    ("eee19b7ec3c1b174", "eee19b7ec3c1b174", "eee19b7ec3c1b174"),
    (" eee19b7ec3c1b174", "eee19b7ec3c1b174", "eee19b7ec3c1b174"),
    ("0x00f067aa0ba902b7", "00f067aa0ba902b7", "000000000000000000f067aa0ba902b7"),
    ("0x1234567890abcd", "001234567890abcd", "0000000000000000001234567890abcd"),
    ("W47/95gDgQPSabYzgT/GDA==", "5b8efff798038103d269b633813fc60c", "5b8efff798038103d269b633813fc60c"),
    ("0123456789", "00000000075bcd15", "000000000000000000000000075bcd15"),
    ("1234567890123456", "1234567890123456", "1234567890123456"),
    ("5b8efff7-9803-8103-d269-b633813fc60c", "5b8efff798038103d269b633813fc60c", "5b8efff798038103d269b633813fc60c"),
    ("abcdef", "abcdef", "abcdef"), ("not-an-id", "not-an-id", "not-an-id"),
    (255, "00000000000000ff", "000000000000000000000000000000ff"), ("", None, None), (None, None, None),
])
def test_ids_normalise_as_they_did_before_the_shortcut(value: Any, as_span_id: str | None,
                                                      as_trace_id: str | None) -> None:
    assert normalise_id(value) == as_span_id
    assert normalise_id(value, nbytes=16) == as_trace_id


@pytest.mark.parametrize("value, ns, ms", [
    # expectations recorded from time_ns before the digit-string shortcut existed
    ("1700000000000000000", 1700000000000000000, 1700000000000000000000000), (" 17", 17, 17000000),
    ("17 ", 17, 17000000), ("0017", 17, 17000000), ("-5", -5, -5000000), (12, 12, 12000000), (1.9, 1, 1000000),
    ("2025-01-31T12:00:00Z", 1738324800000000000, 1738324800000000000), ("", None, None), (None, None, None),
])
def test_timestamps_parse_as_they_did_before_the_shortcut(value: Any, ns: int | None, ms: int | None) -> None:
    assert time_ns(value) == ns
    assert time_ns(value, unit="ms") == ms


def test_a_unicode_digit_string_is_still_rejected() -> None:
    with pytest.raises(ValueError):
        time_ns("²")


def test_trace_field_reads_exactly_what_map_attributes_does() -> None:
    attrs = {"gen_ai.conversation.id": "", "session.id": '"quoted"', "user.id": 17, "enduser.id": "e",
             "langfuse.observation.prompt.version": 4}
    mapped = map_attributes(attrs)
    for name in ("session_id", "user_id", "prompt_version"):
        assert trace_field(attrs, name) == getattr(mapped, name)
    assert set(FIELD_KEYS) >= {"session_id", "user_id", "prompt_version"}


def test_falsy_attribute_values_keep_their_precedence() -> None:
    # 0 and False are values ("non-empty"); "", [], {} and None are not
    assert map_attributes({"gen_ai.usage.input_tokens": 0, "llm.token_count.prompt": 9}).input_tokens == 0
    assert map_attributes({"gen_ai.usage.input_tokens": "", "llm.token_count.prompt": 9}).input_tokens == 9
    assert map_attributes({"gen_ai.input.messages": [], "input.value": "x"}).inputs == "x"
    assert map_attributes({"gen_ai.input.messages": {}, "gen_ai.prompt.0.role": "user"}).inputs == '[{"role": "user"}]'
    assert map_attributes({"gen_ai.input.messages": False}).inputs == "false"


# --- the batch writer ---------------------------------------------------------------------------

def _trace(number: int) -> Trace:
    return Trace(trace_id=f"t{number}", timestamp_ms=number,
                 spans=[Span(span_id=f"s{number}", start_time_ns=1, end_time_ns=2)])


class _RecordingStore:
    """Records each batch it is given; fails on the batch holding ``fail_on``."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    def write_traces(self, traces: Sequence[Trace], *, replace_before_ms: int | None = None) -> WriteOutcome:
        ids = [t.trace_id for t in traces]
        if self.fail_on in ids:
            raise RuntimeError(f"disk full at {self.fail_on}")
        self.batches.append(ids)
        return WriteOutcome(traces=len(ids), spans_new=sum(len(t.spans) for t in traces))


def test_batches_are_written_in_order_and_reported_after_each_write() -> None:
    store = _RecordingStore()
    seen: list[tuple[int, int]] = []
    items: list[Trace | IngestError] = [_trace(i) for i in range(7)]
    items.insert(3, IngestError("bad line", source="f.jsonl", location="line 4"))
    report = ingest(store, items, batch_size=3, on_batch=lambda r: seen.append((r.traces, r.spans_new)))  # type: ignore[arg-type]
    assert store.batches == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]
    assert seen == [(3, 3), (6, 6), (7, 7)]
    assert (report.traces, report.spans_new, report.error_count) == (7, 7, 1)
    assert report.errors == ["f.jsonl (line 4): bad line"]


def test_a_failed_write_stops_the_ingest_with_its_error_and_nothing_after_it_is_written() -> None:
    store = _RecordingStore(fail_on="t4")
    report = IngestReport()
    with pytest.raises(RuntimeError, match="disk full at t4"):
        ingest(store, (_trace(i) for i in range(9)), batch_size=3, report=report)  # type: ignore[arg-type]
    assert store.batches == [["t0", "t1", "t2"]]
    assert report.traces == 3


def test_a_reader_error_waits_for_the_write_in_flight() -> None:
    store = _RecordingStore()

    def items():  # type: ignore[no-untyped-def]
        yield from (_trace(i) for i in range(3))
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="went away"):
        ingest(store, items(), batch_size=3)  # type: ignore[arg-type]
    assert store.batches == [["t0", "t1", "t2"]]


def test_the_garbage_collector_is_restored_after_ingest() -> None:
    assert gc.isenabled()
    ingest(_RecordingStore(), [_trace(1)])  # type: ignore[arg-type]
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError), gc_paused():
        assert not gc.isenabled()
        1 / 0  # noqa: B018
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before, so it stays off
    finally:
        gc.enable()
