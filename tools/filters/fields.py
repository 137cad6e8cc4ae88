"""The filter language's vocabulary as data: fields, their kinds, and the operators each accepts.

Everything the parser validates, every English phrase ``explain()`` prints, every column name a
store compiles, and the grammar text the LLM reads come from the tables below, so a new field or
operator is one row (datasette's ``TemplatedFilter`` idea). Field names follow MLflow's
``search_traces`` so MLflow users' filters work verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from tools.models import SPAN_TYPES

__all__ = [
    "Family", "FieldSpec", "Kind", "OPERATORS", "Operator", "ResolvedField", "FIELDS",
    "describe_grammar", "documented_fields", "field_names", "lookup",
]


class Kind(str, Enum):
    """What values a field holds, which decides its operators and how literals are coerced."""

    TEXT = "text"
    NUMBER = "number"
    TIMESTAMP = "timestamp"
    ENUM = "enum"
    LIST = "list"            # VARCHAR[]: = / IN mean "contains"
    JSON_KEY = "json-key"    # a value looked up by key: text, or numeric when the literal is a number
    SCORE = "score"          # a judge's verdict ('pass'/'fail'/'unknown') or numeric score
    SEARCH = "search"        # case-insensitive search over request OR response
    PROMPT = "prompt"        # a prompt version linked to the trace, written 'name/version'


class Family(str, Enum):
    """Where a field's value lives; the store compiler switches on this."""

    ATTRIBUTE = "attribute"          # a column of traces
    SEARCH = "search"                # request or response
    TAG = "tag"
    METADATA = "metadata"            # traces.metadata JSON
    LABEL = "label"                  # latest human label per criterion
    SCORE = "score"                  # latest score per judge
    FEEDBACK = "feedback"            # MLflow feedback: the current human label or judge score of a name
    EXPECTATION = "expectation"      # MLflow expectation: the current ``expectation:<name>`` label
    PROMPT = "prompt"                # MLflow's linked prompt versions
    SPAN = "span"                    # a column of spans (exists-semantics)
    SPAN_ATTRIBUTE = "span_attribute"  # spans.attributes JSON


@dataclass(frozen=True)
class Operator:
    """One comparison operator: its canonical spelling, operand shape and English template."""

    symbol: str
    operand: str   # "value" | "list" | "none"
    english: str   # "{s}" is the subject, "{v}" the rendered value


OPERATORS: dict[str, Operator] = {op.symbol: op for op in (
    Operator("=", "value", "{s} is {v}"),
    Operator("!=", "value", "{s} is not {v}"),
    Operator("<", "value", "{s} is less than {v}"),
    Operator("<=", "value", "{s} is at most {v}"),
    Operator(">", "value", "{s} is greater than {v}"),
    Operator(">=", "value", "{s} is at least {v}"),
    Operator("IN", "list", "{s} is one of {v}"),
    Operator("NOT IN", "list", "{s} is not one of {v}"),
    Operator("LIKE", "value", "{s} matches {v}"),
    Operator("NOT LIKE", "value", "{s} does not match {v}"),
    Operator("ILIKE", "value", "{s} matches {v} ignoring case"),
    Operator("NOT ILIKE", "value", "{s} does not match {v} ignoring case"),
    Operator("RLIKE", "value", "{s} matches the regular expression {v}"),
    Operator("CONTAINS", "value", "{s} contains {v}"),
    Operator("IS NULL", "none", "{s} is not set"),
    Operator("IS NOT NULL", "none", "{s} is set"),
)}

#: English overrides where a kind reads differently ("timestamp after …", "tool_names contains …").
ENGLISH_BY_KIND: dict[tuple[Kind, str], str] = {
    (Kind.TIMESTAMP, "<"): "{s} before {v}",
    (Kind.TIMESTAMP, "<="): "{s} at or before {v}",
    (Kind.TIMESTAMP, ">"): "{s} after {v}",
    (Kind.TIMESTAMP, ">="): "{s} at or after {v}",
    (Kind.LIST, "="): "{s} contains {v}",
    (Kind.LIST, "!="): "{s} does not contain {v}",
    (Kind.LIST, "IN"): "{s} contains any of {v}",
    (Kind.LIST, "NOT IN"): "{s} contains none of {v}",
    (Kind.LIST, "IS NULL"): "{s} is empty",
    (Kind.LIST, "IS NOT NULL"): "{s} is not empty",
    (Kind.SEARCH, "="): "{s} contains {v}",
}

_NULLS = ("IS NULL", "IS NOT NULL")
_TEXT_OPS = ("=", "!=", "IN", "NOT IN", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE", "RLIKE", "CONTAINS", *_NULLS)
_ORDER_OPS = ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", *_NULLS)

#: (operators a kind accepts, the short list an error suggests).
KIND_OPERATORS: dict[Kind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Kind.TEXT: (_TEXT_OPS, ("=", "!=", "IN", "LIKE", "ILIKE")),
    Kind.NUMBER: (_ORDER_OPS, ("=", "!=", "<", "<=", ">", ">=", "IN")),
    Kind.TIMESTAMP: (_ORDER_OPS, ("=", "<", "<=", ">", ">=")),
    Kind.ENUM: (("=", "!=", "IN", "NOT IN", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE", "RLIKE", *_NULLS),
                ("=", "!=", "IN", "NOT IN")),
    Kind.LIST: (("=", "!=", "IN", "NOT IN", "CONTAINS", *_NULLS), ("=", "!=", "IN", "NOT IN", "IS NULL")),
    Kind.JSON_KEY: (tuple(dict.fromkeys(_TEXT_OPS + _ORDER_OPS)), ("=", "!=", "<", ">", "IN", "LIKE", "IS NULL")),
    Kind.SCORE: (_ORDER_OPS, ("=", "!=", "<", ">", "IN", "IS NULL")),
    Kind.SEARCH: (("CONTAINS", "=", "LIKE", "ILIKE"), ("CONTAINS", "=", "LIKE", "ILIKE")),
    Kind.PROMPT: (("=", *_NULLS), ("=", "IS NULL", "IS NOT NULL")),
}

KIND_WORDS: dict[Kind, str] = {
    Kind.TEXT: "text", Kind.NUMBER: "number", Kind.TIMESTAMP: "timestamp", Kind.ENUM: "enum",
    Kind.LIST: "list", Kind.JSON_KEY: "JSON", Kind.SCORE: "score", Kind.SEARCH: "search",
    Kind.PROMPT: "prompt",
}

VERDICTS: tuple[str, ...] = ("pass", "fail", "unknown")


@dataclass(frozen=True)
class FieldSpec:
    """One row of the registry.

    ``name`` is canonical (``attributes.status``; keyed families end in ``<key>``-style
    placeholders). ``column`` is the store column for direct fields; computed ones leave it None
    and each store supplies the expression.
    """

    name: str
    kind: Kind
    family: Family
    description: str
    example: str
    label: str                       # the English subject in explain(), e.g. "timestamp"
    aliases: tuple[str, ...] = ()    # other spellings of the last name segment
    column: str | None = None
    values: tuple[str, ...] = ()     # enum values, in their natural order
    sortable: bool = False

    @property
    def keyed(self) -> bool:
        return "<" in self.name

    @property
    def prefix(self) -> str:
        """``tags`` for ``tags.<key>``; the field name itself otherwise."""
        return self.name.split(".<", 1)[0]

    @property
    def operators(self) -> tuple[str, ...]:
        return KIND_OPERATORS[self.kind][0]

    @property
    def suggested_operators(self) -> tuple[str, ...]:
        return KIND_OPERATORS[self.kind][1]


def _attr(name: str, kind: Kind, description: str, example: str, *, aliases: tuple[str, ...] = (),
          column: str | None = "", values: tuple[str, ...] = (), sortable: bool = False,
          label: str = "") -> FieldSpec:
    return FieldSpec(f"attributes.{name}", kind, Family.ATTRIBUTE, description, example, label or name,
                     aliases, name if column == "" else column, values, sortable)


def _span(name: str, kind: Kind, description: str, example: str, *, aliases: tuple[str, ...] = (),
          column: str | None = "", values: tuple[str, ...] = ()) -> FieldSpec:
    return FieldSpec(f"span.{name}", kind, Family.SPAN, description, example, name, aliases,
                     name if column == "" else column, values)


T, N, TS, E = Kind.TEXT, Kind.NUMBER, Kind.TIMESTAMP, Kind.ENUM

FIELDS: tuple[FieldSpec, ...] = (
    _attr("trace_id", T, "Trace id.", "attributes.trace_id = 'tr-abc123'", aliases=("request_id",)),
    _attr("timestamp_ms", TS, "Start time: epoch ms, an ISO date in quotes (UTC), or now() - 7d.",
          "attributes.timestamp_ms > now() - 7d", aliases=("timestamp", "request_time"), sortable=True,
          label="timestamp"),
    _attr("execution_time_ms", N, "End-to-end latency in milliseconds.",
          "attributes.execution_time_ms > 2000",
          aliases=("execution_duration_ms", "duration_ms", "execution_time", "execution_duration"),
          sortable=True),
    _attr("end_time_ms", TS, "End time: timestamp_ms + execution_time_ms, same forms as timestamp_ms.",
          "attributes.end_time_ms < now() - 1h", column=None, label="end time"),
    _attr("status", E, "Trace outcome.", "attributes.status = 'ERROR'", aliases=("state",),
          values=("OK", "ERROR", "IN_PROGRESS"), sortable=True),
    _attr("name", T, "Trace (root span) name.", "attributes.name = 'chat'", sortable=True),
    _attr("request", T, "The trace's input, JSON or text.", "attributes.request LIKE '%refund%'"),
    _attr("response", T, "The trace's output, JSON or text.", "attributes.response ILIKE '%sorry%'"),
    _attr("session_id", T, "Conversation/session id.", "attributes.session_id = 's-42'"),
    _attr("user_id", T, "End user id.", "attributes.user_id = 'u-7'"),
    _attr("model", T, "Main model used.", "attributes.model = 'gpt-4o'"),
    _attr("prompt_version", T, "Prompt version.", "attributes.prompt_version = 'v3'"),
    _attr("environment", T, "Deployment environment.", "attributes.environment = 'production'"),
    _attr("input_tokens", N, "Prompt tokens.", "attributes.input_tokens > 1000", sortable=True),
    _attr("output_tokens", N, "Completion tokens.", "attributes.output_tokens > 500", sortable=True),
    _attr("total_tokens", N, "input_tokens + output_tokens (missing counts as 0).",
          "attributes.total_tokens > 4000", column=None, sortable=True),
    _attr("span_count", N, "Number of spans.", "attributes.span_count > 20", sortable=True),
    _attr("error_count", N, "Number of spans with status ERROR.", "attributes.error_count > 0",
          sortable=True),
    _attr("source", T, "Reader that ingested it (otlp, mlflow, openinference, ...).",
          "attributes.source = 'mlflow'"),
    _attr("tool_names", Kind.LIST, "Tools called; = and IN mean 'contains'.",
          "attributes.tool_names = 'web_search'"),
    FieldSpec("text", Kind.SEARCH, Family.SEARCH, "Case-insensitive search in request or response.",
              "text CONTAINS 'refund'", "request or response"),
    FieldSpec("tags.<key>", T, Family.TAG, "A tag's value; dotted keys in backticks.",
              "tags.environment = 'production'", "tag", aliases=("tag",)),
    FieldSpec("metadata.<key>", Kind.JSON_KEY, Family.METADATA,
              "A metadata value (numeric comparison when the literal is a number).",
              "metadata.customer_tier = 'gold'", "metadata", aliases=("request_metadata",)),
    FieldSpec("labels.<criterion>", Kind.JSON_KEY, Family.LABEL,
              "The latest human label for a criterion.", "labels.correctness = 'fail'", "label",
              aliases=("label",)),
    FieldSpec("scores.<judge>", Kind.SCORE, Family.SCORE,
              "The latest score of a judge: 'pass'/'fail'/'unknown' or a number.",
              "scores.safety = 'fail'", "judge", aliases=("score",)),
    FieldSpec("feedback.<name>", Kind.JSON_KEY, Family.FEEDBACK,
              "MLflow feedback: the current human label or judge score of that name (yes/true/pass are one "
              "verdict); session-level feedback covers the session's traces.",
              "feedback.correctness = 'yes'", "feedback"),
    FieldSpec("expectation.<name>", Kind.JSON_KEY, Family.EXPECTATION,
              "MLflow expectation: the current expected value of that name (JSON text; a string also "
              "matches unquoted).", "expectation.response_length = '150'", "expectation"),
    FieldSpec("prompt", Kind.PROMPT, Family.PROMPT, "A prompt version linked to the trace, as 'name/version'.",
              "prompt = 'qa-prompt/2'", "linked prompt"),
    _span("type", E, "Span type (case-insensitive; synonyms such as CHAT_MODEL or GENERATION for LLM accepted; "
          "any other name matches the type the source declared, e.g. a custom MLflow span type).",
          "span.type = 'TOOL'", aliases=("span_type",),
          column="span_type", values=SPAN_TYPES),
    _span("name", T, "Span name.", "span.name = 'retrieve_docs'"),
    _span("status", E, "Span status.", "span.status = 'ERROR'", values=("OK", "ERROR", "UNSET")),
    _span("status_message", T, "Span error message.", "span.status_message ILIKE '%timeout%'"),
    _span("model", T, "Model called by the span.", "span.model = 'gpt-4o-mini'"),
    _span("tool_name", T, "Tool called by the span.", "span.tool_name = 'web_search'", aliases=("tool",)),
    _span("duration_ms", N, "Span duration in milliseconds.", "span.duration_ms > 1000", column=None),
    _span("input_tokens", N, "Span prompt tokens.", "span.input_tokens > 1000"),
    _span("output_tokens", N, "Span completion tokens.", "span.output_tokens > 500"),
    _span("content", T, "A span's name, inputs, outputs and attributes as text (MLflow's span.content; "
          "trace.text means any span's content).", "span.content ILIKE '%refund%'", column=None),
    _span("inputs", T, "Span inputs, JSON or text.", "span.inputs CONTAINS 'invoice'"),
    _span("outputs", T, "Span outputs, JSON or text.", "span.outputs CONTAINS 'error'"),
    FieldSpec("span.attributes.<key>", Kind.JSON_KEY, Family.SPAN_ATTRIBUTE, "A raw span attribute.",
              "span.attributes.`gen_ai.system` = 'openai'", "attribute",
              aliases=("attribute", "attr")),
)

BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}

#: First name segments that mean "trace attribute" (MLflow accepts all of these).
ATTRIBUTE_PREFIXES = ("attributes", "attribute", "attr", "trace")
#: Tag keys that are really the trace id (MLflow users filter by id this way).
TRACE_ID_TAGS = frozenset({"mlflow.traceId"})
#: MLflow tag and metadata keys that every dialect stores as a trace column: a filter on them reads
#: the column, so ``tags.`mlflow.traceName``` finds Langfuse and OTLP traces too, not only MLflow's.
KEY_FIELDS: dict[tuple[Family, str], str] = {
    (Family.TAG, "mlflow.traceId"): "attributes.trace_id",
    (Family.TAG, "mlflow.traceName"): "attributes.name",
    (Family.METADATA, "mlflow.traceName"): "attributes.name",
    (Family.METADATA, "mlflow.trace.session"): "attributes.session_id",
    (Family.METADATA, "mlflow.trace.user"): "attributes.user_id",
}
#: Short metadata keys MLflow accepts for its long ones (``metadata.run_id`` is the run a trace
#: was logged under, stored as ``mlflow.sourceRun``).
METADATA_KEYS: dict[str, str] = {"run_id": "mlflow.sourceRun", "client_request_id": "mlflow.clientRequestId"}
#: Trace attribute names MLflow has that live in metadata here.
ATTRIBUTE_METADATA: dict[str, str] = {"run_id": "mlflow.sourceRun", "client_request_id": "mlflow.clientRequestId"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class ResolvedField:
    """A field as used in one filter: the registry row plus the key for keyed families."""

    spec: FieldSpec
    key: str | None = None

    @property
    def kind(self) -> Kind:
        return self.spec.kind

    @property
    def family(self) -> Family:
        return self.spec.family

    @property
    def is_span(self) -> bool:
        return self.spec.family in (Family.SPAN, Family.SPAN_ATTRIBUTE)

    @property
    def name(self) -> str:
        """Canonical spelling, e.g. ``attributes.status`` or ``tags.`mlflow.user```."""
        if self.key is None:
            return self.spec.name
        key = self.key if _IDENT.match(self.key) else "`" + self.key.replace("`", "``") + "`"
        return f"{self.spec.prefix}.{key}"


def _spellings() -> dict[str, tuple[FieldSpec, bool]]:
    """Lower-cased spelling of a non-keyed field -> (spec, needs_key=False); prefixes -> True."""
    out: dict[str, tuple[FieldSpec, bool]] = {}
    for f in FIELDS:
        if f.keyed:
            for p in (f.prefix, *(f.prefix.rsplit(".", 1)[0] + "." + a if "." in f.prefix else a
                                  for a in f.aliases)):
                out[p] = (f, True)
            continue
        head, _, last = f.name.rpartition(".")
        for n in (last, *f.aliases):
            if f.family is Family.ATTRIBUTE:
                out[n] = (f, False)
                for p in ATTRIBUTE_PREFIXES:
                    out[f"{p}.{n}"] = (f, False)
            else:
                out[f"{head}.{n}" if head else n] = (f, False)
    return out


#: A stand-in spec marking spellings (``attributes.run_id``, ``trace.client_request_id``) that
#: resolve to a metadata key (``ATTRIBUTE_METADATA``).
_RUN_ID_ALIAS = FieldSpec("attributes.run_id", Kind.TEXT, Family.METADATA, "MLflow run the trace was logged under.",
                          "attributes.run_id = '<run id>'", "run id")


def _with_metadata_attributes(spellings: dict[str, tuple[FieldSpec, bool]]) -> dict[str, tuple[FieldSpec, bool]]:
    for prefix in ATTRIBUTE_PREFIXES:  # MLflow's trace.prompt: a linked prompt version
        spellings.setdefault(f"{prefix}.prompt", (BY_NAME["prompt"], False))
    for prefix in ATTRIBUTE_PREFIXES:  # MLflow's trace.text: any span's content (the root's holds request/response)
        spellings.setdefault(f"{prefix}.text", (BY_NAME["span.content"], False))
    for name in ATTRIBUTE_METADATA:
        for prefix in ("", *(p + "." for p in ATTRIBUTE_PREFIXES)):
            spellings.setdefault(prefix + name, (_RUN_ID_ALIAS, False))
    return spellings


SPELLINGS = _with_metadata_attributes(_spellings())


def lookup(segments: list[str]) -> ResolvedField | FieldSpec | None:
    """Resolve name segments (``['tags', 'mlflow.user']`` after lexing) to a field.

    Returns a ``ResolvedField``; the bare ``FieldSpec`` of a keyed family when its key is missing
    (``tags``); or None when nothing matches. Prefixes and names match case-insensitively, keys
    exactly; a key may span several segments (``tags.mlflow.user`` == ``tags.`mlflow.user```).
    """
    low = [s.lower() for s in segments]
    for cut in range(len(segments), 0, -1):   # longest known prefix wins
        hit = SPELLINGS.get(".".join(low[:cut]))
        if hit is None:
            continue
        spec, needs_key = hit
        if spec is _RUN_ID_ALIAS:
            return ResolvedField(BY_NAME["metadata.<key>"], ATTRIBUTE_METADATA[low[cut - 1]]) \
                if cut == len(segments) else None
        if not needs_key:
            return ResolvedField(spec) if cut == len(segments) else None
        if cut == len(segments):
            return spec
        key = ".".join(segments[cut:])
        if (spec.family, key) in KEY_FIELDS:
            return ResolvedField(BY_NAME[KEY_FIELDS[spec.family, key]])
        if spec.family is Family.METADATA:
            key = METADATA_KEYS.get(key, key)
        return ResolvedField(spec, key)
    return None


def documented_fields() -> tuple[FieldSpec, ...]:
    """Every field with its description and example, for describe_store and the docs."""
    return FIELDS


def field_names() -> list[str]:
    """Every canonical field name, as listed in errors (``tags.<key>`` for keyed families)."""
    return [f.name for f in FIELDS]


def describe_grammar() -> str:
    """The filter language in under ~1200 characters, written for an LLM choosing a filter.

    Built from the registry so it cannot drift from what the parser accepts.
    """
    def short(f: FieldSpec) -> str:
        last = f.name.rsplit(".", 1)[-1] if not f.keyed else f.name
        return f"{last} ({'|'.join(f.values)})" if f.values and len(f.values) <= 3 else last

    attrs = ", ".join(short(f) for f in FIELDS if f.family is Family.ATTRIBUTE)
    spans = ", ".join(short(f) for f in FIELDS if f.family is Family.SPAN)
    return (
        "Empty = all traces; MLflow filters work as-is.\n"
        f"attributes.<name> (or bare): {attrs}. "
        "text (request or response), tags.<key>, metadata.<key>, labels.<criterion>, "
        "scores.<judge> ('pass'|'fail'|'unknown' or number). "
        f"span.<name>: {spans}, attributes.<key>; AND-ed span tests hold on one span.\n"
        "Ops: = != < <= > >= IN (..) NOT IN LIKE ILIKE RLIKE CONTAINS IS [NOT] NULL; AND OR NOT ( ). "
        "Quote text; dotted keys in backticks: tags.`mlflow.user`. "
        "Time: epoch ms, '2026-11-16T10:00Z', now() - 7d (ms s m h d w).\n"
        "Examples:\n"
        "attributes.status = 'ERROR' AND attributes.timestamp_ms > now() - 1d\n"
        "tags.environment = 'production' AND execution_time_ms > 2000\n"
        "span.type = 'TOOL' AND span.status = 'ERROR'\n"
        "tags.eval_candidate IS NOT NULL\n"
        "text CONTAINS 'refund' OR metadata.tier = 'gold'\n"
        "scores.safety = 'fail' AND labels.correctness IS NULL"
    )
