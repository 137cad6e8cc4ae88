"""Shared assembly steps every reader needs: ids, times, trace roll-ups, verdicts, errors.

Readers only parse their own container format into ``Span`` objects plus whatever trace-level
facts the source states; ``build_trace`` fills in the rest from the spans (TRACE_FORMATS.md:
tokens sum LLM/CHAT_MODEL spans only) and validates the whole trace, so a reader can never hand
the store a half-built one.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone
from math import isfinite
from typing import Any, Callable, Literal

from pydantic import ValidationError

from server.ingestion.attributes import map_attributes
from server.ingestion.checked_span import checked_span
from server.ingestion.request_text import fill_request
from server.ingestion.rollup import derive_trace_fields, root_span
from tools.errors import IngestError
from tools.models import MODEL_SPAN_TYPES, Span, Trace

__all__ = [
    "INT64_MAX", "INT64_MIN", "TraceProblem", "build_trace", "check_ints", "check_trace_ints", "make_span",
    "normalise_id", "root_span", "span_status", "time_ms", "time_ns", "trace_or_error", "verdict_and_score",
]

_HEX = re.compile(r"[0-9a-fA-F]+")
_LOWER_HEX = "0123456789abcdef"


class TraceProblem(ValueError):
    """One trace cannot be built; the message says what is wrong and how to fix it."""


# --- ids and times ----------------------------------------------------------------------------

def normalise_id(value: Any, *, nbytes: int = 8) -> str | None:
    """Return ``value`` as lowercase hex where its encoding is recognisable, else as written.

    Handles the quirks in TRACE_FORMATS.md: upper-case hex, ``0x`` prefixes (MLflow 2.x), base64
    (protobuf ``MessageToJson``, MLflow 3 ``to_json``), integers and dashed UUIDs.
    """
    if type(value) is str and len(value) in (16, 32) and not value.strip(_LOWER_HEX):
        return value  # already canonical: the common case, and the one every span pays for
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:0{nbytes * 2}x}"
    text = str(value).strip()
    if text[:2].lower() == "0x" and _HEX.fullmatch(text[2:] or "-"):
        return text[2:].lower().rjust(nbytes * 2, "0")
    if _HEX.fullmatch(text) and len(text) in (16, 32):
        return text.lower()
    undashed = text.replace("-", "")
    if len(text) == 36 and len(undashed) == 32 and _HEX.fullmatch(undashed):
        return undashed.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) in (8, 16):
        return raw.hex()
    if text.isdigit():
        return f"{int(text):0{nbytes * 2}x}"
    return text.lower() if _HEX.fullmatch(text) else text


_ISO = re.compile(r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?(?P<tz>Z|[+-]\d\d:?\d\d)?$")


def time_ns(value: Any, *, unit: Literal["ns", "ms"] = "ns") -> int | None:
    """Parse a timestamp: an ISO-8601 string (any fraction length) or a number in ``unit``."""
    if type(value) is str and value.isdigit():  # OTLP/JSON's usual "1700000000000000000"
        return int(value) * (1 if unit == "ns" else 1_000_000)
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if type(value) is float and not isfinite(value):  # isfinite() of a huge int would overflow
            raise TraceProblem(f"'{value}' is not a timestamp; use ISO-8601 (2025-01-31T12:00:00Z) or epoch {unit}")
        return int(value) * (1 if unit == "ns" else 1_000_000)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text) * (1 if unit == "ns" else 1_000_000)
    match = _ISO.match(text.replace(" ", "T", 1))
    if not match:
        raise TraceProblem(f"'{text}' is not a timestamp; use ISO-8601 (2025-01-31T12:00:00Z) or epoch {unit}")
    tz = match["tz"] or "Z"
    base = datetime.fromisoformat(match["base"] + ("+00:00" if tz == "Z" else tz))
    if base.tzinfo is None:
        base = base.replace(tzinfo=timezone.utc)
    frac = (match["frac"] or "0")[:9].ljust(9, "0")
    return int(base.timestamp()) * 1_000_000_000 + int(frac)


def time_ms(value: Any, *, unit: Literal["ns", "ms"] = "ms") -> int | None:
    """Like ``time_ns`` but in milliseconds, numbers taken as ``unit`` (ms by default)."""
    ns = time_ns(value, unit=unit)
    return None if ns is None else ns // 1_000_000


# --- spans -------------------------------------------------------------------------------------

_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR", "UNSET": "UNSET", "OK": "OK", "ERROR": "ERROR"}


def span_status(code: Any) -> str:
    """OTLP status code as int (0/1/2), enum name ("STATUS_CODE_ERROR") or bare name ("ERROR")."""
    if isinstance(code, str):
        code = code.upper().removeprefix("STATUS_CODE_")
        code = int(code) if code.isdigit() else code
    return _STATUS.get(code, "UNSET")


def make_span(*, span_id: str, parent_span_id: str | None, name: str, start: int, end: int, status: str,
              status_message: str | None, attributes: dict, events: list, declared_type: str | None = None,
              **stated: Any) -> Span:
    """A Span from OTel-shaped parts; the attribute tables fill in type, model, tokens and I/O.

    ``stated`` holds fields the container format gives directly (a Langfuse observation's
    ``model`` or ``usageDetails``): when not ``None`` they beat what the attributes say.
    Raises TraceProblem for a time or token count the store cannot hold (see "integer ranges").
    Values of the wrong type are left to ``Span`` validation (``checked_span``), which names them.
    """
    span_type, model, tokens_in, tokens_out, inputs, outputs, tool_name, _, _, _, error_type = map_attributes(
        attributes, declared_type=declared_type)
    if error_type:
        status = "ERROR"
    if status == "ERROR" and not status_message:
        status_message = next((str(event["attributes"]["exception.message"]) for event in events
                               if event.get("name") == "exception"
                               and (event.get("attributes") or {}).get("exception.message")), error_type)
    if stated:
        values: dict[str, Any] = dict(
            span_type=span_type, inputs=inputs, outputs=outputs, model=model, input_tokens=tokens_in,
            output_tokens=tokens_out, tool_name=tool_name)
        values.update({key: value for key, value in stated.items() if value is not None})
        if len(values) > 7:  # a key that is not one of those fields: validation names it
            if values["span_type"] == "TOOL" and not values["tool_name"]:
                values["tool_name"] = name or None
            _check_span_ints(name, span_id, start, end, values["input_tokens"], values["output_tokens"])
            return Span(span_id=span_id, parent_span_id=parent_span_id, name=name, start_time_ns=start,
                        end_time_ns=end, status=status, status_message=status_message, attributes=attributes,
                        events=events, **values)
        span_type, inputs, outputs, model = values["span_type"], values["inputs"], values["outputs"], values["model"]
        tokens_in, tokens_out, tool_name = values["input_tokens"], values["output_tokens"], values["tool_name"]
    if span_type == "TOOL" and not tool_name:
        tool_name = name or None  # MLflow/Langfuse tool spans are named after the tool
    _check_span_ints(name, span_id, start, end, tokens_in, tokens_out)
    return checked_span(span_id, parent_span_id, name, span_type, start, end, status, status_message, inputs,
                        outputs, model, tokens_in, tokens_out, tool_name, attributes, events)


def _check_span_ints(name: str, span_id: str, start: int, end: int, tokens_in: int | None,
                     tokens_out: int | None) -> None:
    if not (INT64_MIN <= start <= INT64_MAX and INT64_MIN <= end <= INT64_MAX
            and INT64_MIN <= (tokens_in or 0) <= INT64_MAX and INT64_MIN <= (tokens_out or 0) <= INT64_MAX):
        check_ints(f"span '{name}' ({span_id})", start_time_ns=start, end_time_ns=end, input_tokens=tokens_in,
                   output_tokens=tokens_out)


# --- trace roll-ups ---------------------------------------------------------------------------

def build_trace(trace_id: str, spans: list[Span], *, source: str, **given: Any) -> Trace:
    """Validate a trace from its spans plus the trace-level facts the source stated.

    A non-``None`` value in ``given`` always beats the one derived from the spans (by
    ``rollup.derive_trace_fields``, the one place that says how). Raises TraceProblem if a
    trace-level integer does not fit the store (see "integer ranges").
    """
    if not trace_id:
        raise TraceProblem("the trace has no id; every trace needs a trace id")
    # exporters retry, so the same span can arrive twice; the later copy is the more complete one
    spans = list({span.span_id: span for span in spans}.values())
    stated = {key: value for key, value in given.items() if value is not None}
    derived = derive_trace_fields(spans, skip=frozenset(stated))
    fields = {**{key: value for key, value in derived.items() if value is not None}, **stated}
    fill_request(fields, spans)  # the user's words when neither the source nor the root states them
    if fields.get("timestamp_ms") is None:
        raise TraceProblem(f"trace '{trace_id}' has no spans and no start time; export it with its spans")
    trace = Trace(trace_id=trace_id, spans=spans, source=source, **fields)
    check_trace_ints(trace)
    return trace


def _sum_or_none(values: Any) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


# --- integer ranges ---------------------------------------------------------------------------
#
# Why a bad integer costs its trace, not just the value: readers drop token counts that are not
# numbers (``as_int``), but a count beyond 2**63 is a number the source did state and that cannot
# be true; writing None would hide an exporter bug and change the trace's totals, and a start time
# has no None to fall back to. So the trace is reported (which trace, which field, the value, the
# fix) and skipped, and the rest of the file still loads. Values are Python ints of any size up to
# here, so the check sees the value as the source wrote it, even a sum over spans.

#: The store keeps every integer field as BIGINT (int64 in Arrow): the range a value must fit.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_TIMES = frozenset({"start_time_ns", "end_time_ns", "timestamp_ms", "created_at_ms"})


def check_ints(owner: str, **values: int | None) -> None:
    """Raise TraceProblem naming ``owner`` and the first of ``values`` (field -> value) beyond 64 bits.

    ``make_span`` calls this only when its inline comparisons fail, which keeps the per-span
    cost of the check to a few integer comparisons.
    """
    for field, value in values.items():
        if value is not None and not INT64_MIN <= value <= INT64_MAX:
            raise _out_of_range(owner, field, value)


def check_trace_ints(trace: Trace) -> None:
    """Raise TraceProblem for the first trace-level integer (or label/score time) beyond 64 bits."""
    if not (INT64_MIN <= trace.timestamp_ms <= INT64_MAX and INT64_MIN <= (trace.execution_time_ms or 0) <= INT64_MAX
            and INT64_MIN <= (trace.input_tokens or 0) <= INT64_MAX
            and INT64_MIN <= (trace.output_tokens or 0) <= INT64_MAX):
        for field in ("timestamp_ms", "execution_time_ms", "input_tokens", "output_tokens"):
            value = getattr(trace, field)
            if value is not None and not INT64_MIN <= value <= INT64_MAX:
                raise _out_of_range("the trace", field, value, _how_derived(trace, field, value))
    for label in trace.labels:
        check_ints(f"label '{label.criterion}'", created_at_ms=label.created_at_ms)
    for score in trace.scores:
        check_ints(f"score '{score.judge}'", created_at_ms=score.created_at_ms)


def _how_derived(trace: Trace, field: str, value: int) -> str:
    """Say so when a trace total is the sum of in-range span counts, not a value the source stated."""
    if field not in ("input_tokens", "output_tokens"):
        return ""
    summed = _sum_or_none(getattr(span, field) for span in trace.spans if span.span_type in MODEL_SPAN_TYPES)
    return " (the sum over its LLM spans)" if summed == value else ""


def _out_of_range(owner: str, field: str, value: int, note: str = "") -> TraceProblem:
    if field in _TIMES:
        fix = ("check the value and its unit in the export (64-bit epoch nanoseconds end in the year 2262), "
               "fix it and ingest the file again")
    else:
        fix = "fix or remove that value in the export and ingest the file again"
    return TraceProblem(f"{owner} has {field} {_show(value)}{note}, outside the 64-bit integer range the store "
                        f"holds ({INT64_MIN} to {INT64_MAX}); {fix}")


def _show(value: int) -> str:
    """The number itself, unless it is too long to read (or, past 4300 digits, to ``str`` at all)."""
    if value.bit_length() <= 128:
        return str(value)
    return f"{'-' if value < 0 else ''}<a number of about {int(value.bit_length() * 0.30103) + 1} digits>"


# --- feedback values ----------------------------------------------------------------------------

_PASS = frozenset({"pass", "passed", "yes", "y", "true", "correct"})
_FAIL = frozenset({"fail", "failed", "no", "n", "false", "incorrect"})


def verdict_and_score(value: Any) -> tuple[Literal["pass", "fail", "unknown"], float | None]:
    """Read a judge's raw value: booleans and yes/no/pass/fail words give a verdict, numbers in
    [0, 1] give a score. Numbers never imply a verdict: 0.2 hallucination is not a 'fail'."""
    if isinstance(value, bool):
        return ("pass" if value else "fail"), None
    if isinstance(value, (int, float)):
        return "unknown", (float(value) if 0.0 <= value <= 1.0 else None)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _PASS:
            return "pass", None
        if word in _FAIL:
            return "fail", None
    return "unknown", None


# --- errors -----------------------------------------------------------------------------------

def describe_validation(error: ValidationError) -> str:
    """A one-line summary of pydantic errors (field path + message), without reprs."""
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item["loc"]) or "value"
        parts.append(f"{where}: {item['msg']}")
    more = len(error.errors()) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def trace_or_error(source: str, location: str, build: Callable[[], Trace], *, fmt: str) -> Trace | IngestError:
    """Run ``build``; turn any data problem into an IngestError at ``location`` (which names the
    trace), never a partial Trace."""
    try:
        return build()
    except TraceProblem as exc:
        return IngestError(f"{exc}.", source=source, location=location)
    except ValidationError as exc:
        return IngestError(f"invalid trace ({describe_validation(exc)}); fix these fields in the {fmt} export.",
                           source=source, location=location)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        return IngestError(f"malformed {fmt} trace ({detail}); check it has the {fmt} export shape.",
                           source=source, location=location)
    except OverflowError as exc:  # a number too large for float(): one bad trace, not a failed ingest
        return IngestError(f"a number in this trace is out of range ({exc}); fix or remove it in the {fmt} "
                           "export and ingest the file again.", source=source, location=location)
