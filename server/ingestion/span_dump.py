"""What the per-span dump readers share: spans found one by one, grouped into traces by trace id.

The OpenTelemetry SDKs (Python ``ConsoleSpanExporter`` / ``ReadableSpan.to_json()``, JS
``ReadableSpan``) and Phoenix write one JSON object per *span*, not per trace, and a trace's spans
may be spread over a file in any order. Each shape's reader turns one raw object into a
``DumpSpan``; this module finds the objects (a lone span, a JSON array of them, ``{"spans": [...]}``
or Phoenix's ``{"data": [...]}``), groups them by trace id across the whole file, and builds each
trace once all of the file is read. One bad span costs only its own trace, with an error that
names it.

Times and ids arrive in every encoding the SDKs use, so ``epoch_ns`` and ``span_id`` normalise
them: ids as hex, ``0x`` hex, decimal integers or base64 (to lower-case hex), times as ISO-8601,
``[seconds, nanos]`` hrtime pairs, or epoch numbers whose unit (s, ms, µs, ns) is read from
their size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from server.ingestion.assemble import TraceProblem, build_trace, normalise_id, root_span, time_ns, trace_or_error
from server.ingestion.detect import Document
from tools.errors import IngestError
from tools.models import Span, Trace

__all__ = ["DumpSpan", "epoch_ns", "flatten_attributes", "read_span_dump", "span_items", "span_id"]

_ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")
#: Keys under which a dump holds its list of spans (``{"spans": [...]}``, Phoenix's REST ``{"data": [...]}``).
LIST_KEYS = ("spans", "data")


@dataclass(frozen=True)
class DumpSpan:
    """One span as a shape reader read it: its trace id (lower-case hex), the Span, and its resource."""

    trace_id: str
    span: Span
    resource: Mapping[str, Any] = field(default_factory=dict)


def span_id(value: Any, *, nbytes: int = 8) -> str | None:
    """An id in any of the four encodings (hex, ``0x`` hex, integer, base64) as lower-case hex."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) not in (nbytes * 2,):
        return normalise_id(int(value.strip()), nbytes=nbytes)  # "1234": a decimal integer, not hex
    return normalise_id(value, nbytes=nbytes)


#: Epoch numbers below each bound are in that unit: a second count reaches 1e11 in the year 5138,
#: a millisecond count 1e14 then, and so on; the ranges never overlap for dates after 1973.
_UNIT_BOUNDS = ((1e11, 1_000_000_000), (1e14, 1_000_000), (1e17, 1_000))


def epoch_ns(value: Any) -> int | None:
    """A timestamp in ns: ISO-8601 text, an hrtime ``[seconds, nanos]`` pair, or an epoch number
    in s, ms, µs or ns (told apart by size; floats keep their fraction)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return int(value[0]) * 1_000_000_000 + int(value[1])
    number: float | int | None = None
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        text = value.strip()
        number = float(text) if "." in text else int(text)
    if number is None:
        return time_ns(value)
    for bound, scale in _UNIT_BOUNDS:
        if abs(number) < bound:
            return int(round(number * scale)) if isinstance(number, float) else number * scale
    return int(number)


def flatten_attributes(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested attribute dicts (``{"llm": {"model_name": …}}``, as Phoenix writes them) -> dotted keys;
    lists of objects get index keys (``llm.input_messages.0.message.role``), as OpenInference flattens."""
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            out.update(flatten_attributes(item, name))
        elif isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
            for index, element in enumerate(item):
                out.update(flatten_attributes(element, f"{name}.{index}"))
        else:
            out[name] = item
    return out


def span_items(docs: Iterable[Document | IngestError]) -> Iterator[tuple[Any, str] | IngestError]:
    """Each span object in the documents, with where it sits: a lone span, an array of spans, or
    an object holding them under ``spans`` / ``data``."""
    for doc in docs:
        if isinstance(doc, IngestError):
            yield doc
            continue
        value = doc.value
        if isinstance(value, dict):
            held = next((value[key] for key in LIST_KEYS if isinstance(value.get(key), list)), None)
            value = held if held is not None else value
        if isinstance(value, list):
            for index, item in enumerate(value, start=1):
                yield item, ", ".join(part for part in (doc.location, f"span {index}") if part)
        else:
            yield value, doc.location


@dataclass
class _Group:
    spans: list[Span] = field(default_factory=list)
    resources: dict[str, Mapping[str, Any]] = field(default_factory=dict)


def read_span_dump(docs: Iterable[Document | IngestError], path: Path, *, read_span: Callable[[Any], DumpSpan],
                   source: str, fmt: str, shape: str) -> Iterator[Trace | IngestError]:
    """Read every span with ``read_span`` (which raises TraceProblem for a span it cannot read),
    group them by trace id, and yield one Trace (or one IngestError) per trace."""
    where = str(path)
    groups: dict[str, _Group] = {}
    for entry in span_items(docs):
        if isinstance(entry, IngestError):
            yield entry
            continue
        item, location = entry
        if not isinstance(item, dict):
            yield IngestError(f"not a span object ({type(item).__name__}); a {shape} holds one JSON object per span.",
                              source=where, location=location)
            continue
        try:
            found = read_span(item)
        except TraceProblem as exc:
            yield IngestError(f"{exc}; this span was skipped, the rest of the file still loads.",
                              source=where, location=location)
            continue
        group = groups.setdefault(found.trace_id, _Group())
        group.spans.append(found.span)
        group.resources[found.span.span_id] = found.resource
    for trace_id, group in groups.items():
        yield trace_or_error(where, f"trace {trace_id}", lambda t=trace_id, g=group: _trace(t, g, source), fmt=fmt)


def _trace(trace_id: str, group: _Group, source: str) -> Trace:
    root = root_span(group.spans)
    resource = dict(group.resources.get(root.span_id, {}) if root else {})
    environment = next((str(resource[key]) for key in _ENVIRONMENT_KEYS if resource.get(key)), None)
    return build_trace(trace_id, group.spans, source=source, environment=environment,
                       metadata={"resource": resource} if resource else {})


def require(value: Any, what: str, name: str) -> Any:
    """``value``, or a TraceProblem saying which span lacks ``what``."""
    if value is None or value == "":
        raise TraceProblem(f"span '{name}' has no {what}; every span in the dump needs one")
    return value
