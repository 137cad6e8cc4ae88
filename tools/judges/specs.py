"""What a judge is, as data: one pydantic model per rule type, the LLM judge and the classifier.

A spec is the whole definition of a judge version (its hash is the version), so everything that
changes a verdict lives here and nothing else does. The field descriptions are written for the
model that fills them in through ``define_judge``; ``parse_spec`` turns a bad spec into an error
that names the field and shows the expected shape.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from tools.errors import InvalidInputError

JudgeKind = Literal["rule", "llm", "classifier"]
#: Text an item offers to rule judges. Only input/output can be checked inside the store (SQL).
TextField = Literal["input", "output", "retrieved_context", "tool_arguments"]
LlmField = Literal["input", "output", "retrieved_context", "tool_calls", "expectations"]
DEFAULT_CITATION = r"\[([A-Za-z0-9][A-Za-z0-9_.:/-]*)\]"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_regex(pattern: str, what: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{what} {pattern!r} is not a valid regular expression ({error})") from error


def _check_schema(schema: dict[str, Any], what: str) -> None:
    import jsonschema  # pure computation; imported here so specs load without it

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        raise ValueError(f"{what} is not a valid JSON Schema: {error.message}") from error


class RegexRule(_Spec):
    type: Literal["regex"] = Field(description="Regex must (not) match a text field.")
    field: TextField = Field("output", description="Which text to search: output (the answer), input "
                                                   "(the user request), retrieved_context, tool_arguments.")
    pattern: str = Field(min_length=1, description=r"Regular expression, e.g. '(?i)as an ai' or '\d{3}-\d{2}-\d{4}'.")
    must: Literal["match", "not_match"] = Field("match", description="'match': pass when found; "
                                                                     "'not_match': fail when found.")
    ignore_case: bool = Field(False, description="Case-insensitive matching.")

    @model_validator(mode="after")
    def _valid(self) -> RegexRule:
        _check_regex(self.pattern, "pattern")
        return self


class JsonSchemaRule(_Spec):
    type: Literal["json_schema"] = Field(description="Output or tool arguments must be JSON valid against a schema.")
    target: Literal["output", "tool_arguments"] = Field("output", description="Validate the answer text, or the "
                                                                            "arguments of tool calls.")
    tool: str | None = Field(None, description="With target=tool_arguments: only calls of this tool (default all).")
    json_schema: dict[str, Any] = Field(description='A JSON Schema, e.g. {"type": "object", "required": ["order_id"]}.')

    @model_validator(mode="after")
    def _valid(self) -> JsonSchemaRule:
        _check_schema(self.json_schema, "json_schema")
        return self


class LengthRule(_Spec):
    type: Literal["length"] = Field(description="Text length must stay within bounds.")
    field: TextField = Field("output", description="Which text to measure.")
    unit: Literal["chars", "words"] = Field("chars", description="Count characters or whitespace-separated words.")
    min: int | None = Field(None, ge=0, description="Fail below this length (optional).")
    max: int | None = Field(None, ge=1, description="Fail above this length (optional), e.g. 2000.")

    @model_validator(mode="after")
    def _bounds(self) -> LengthRule:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class TokenBudgetRule(_Spec):
    type: Literal["token_budget"] = Field(description="The trace's recorded token usage must stay within budget.")
    max_input_tokens: int | None = Field(None, ge=1, description="Budget for prompt tokens.")
    max_output_tokens: int | None = Field(None, ge=1, description="Budget for completion tokens.")
    max_total_tokens: int | None = Field(None, ge=1, description="Budget for prompt + completion tokens.")

    @model_validator(mode="after")
    def _some(self) -> TokenBudgetRule:
        if not (self.max_input_tokens or self.max_output_tokens or self.max_total_tokens):
            raise ValueError("give at least one of max_input_tokens, max_output_tokens, max_total_tokens")
        return self


class PhrasesRule(_Spec):
    type: Literal["phrases"] = Field(description="Required phrases must appear, banned phrases must not.")
    field: TextField = Field("output", description="Which text to search.")
    required: list[str] = Field(default_factory=list, description="Each must appear, e.g. ['order number'].")
    banned: list[str] = Field(default_factory=list, description="None may appear, e.g. ['as an AI', 'I cannot'].")
    ignore_case: bool = Field(True, description="Compare case-insensitively (default true).")

    @model_validator(mode="after")
    def _some(self) -> PhrasesRule:
        if not self.required and not self.banned:
            raise ValueError("give at least one phrase in required or banned")
        if any(not p for p in [*self.required, *self.banned]):
            raise ValueError("phrases must not be empty strings")
        return self


class ToolCallRule(_Spec):
    type: Literal["tool_call"] = Field(description="Expected tools are called (or not), with valid arguments.")
    must_call: list[str] = Field(default_factory=list, description="Tools that must be called, e.g. ['lookup_order'].")
    must_not_call: list[str] = Field(default_factory=list, description="Tools that must not be called.")
    expected_by_metadata: str | None = Field(
        None, description="A trace metadata key (e.g. 'intent') whose value selects the expected tools from "
                          "expected_tools; traces whose value is not listed pass this check.")
    expected_tools: dict[str, list[str]] = Field(
        default_factory=dict, description="With expected_by_metadata: value -> tools that must be called, and "
                                          "no other tool may be, e.g. {'order_status': ['lookup_order']}.")
    argument_schemas: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Tool name -> JSON Schema its arguments must satisfy.")

    @model_validator(mode="after")
    def _some(self) -> ToolCallRule:
        if not (self.must_call or self.must_not_call or self.expected_by_metadata or self.argument_schemas):
            raise ValueError("give must_call, must_not_call, expected_by_metadata (+ expected_tools) or "
                             "argument_schemas")
        if self.expected_by_metadata and not self.expected_tools:
            raise ValueError("expected_by_metadata needs expected_tools, e.g. {'order_status': ['lookup_order']}")
        for tool, schema in self.argument_schemas.items():
            _check_schema(schema, f"argument_schemas[{tool!r}]")
        return self


class CitationRule(_Spec):
    type: Literal["citation_grounding"] = Field(
        description="Every citation in the output must appear in what the trace's retriever spans returned.")
    citation_pattern: str = Field(DEFAULT_CITATION, description="Regex whose group 1 is a cited id; default "
                                                                "matches [kb-returns-001].")
    retriever: str | None = Field(None, description="Only RETRIEVER spans with this name (default: all).")
    require_citation: bool = Field(False, description="Fail answers that cite nothing (default: they pass).")

    @model_validator(mode="after")
    def _valid(self) -> CitationRule:
        _check_regex(self.citation_pattern, "citation_pattern")
        if re.compile(self.citation_pattern).groups < 1:
            raise ValueError("citation_pattern needs a capture group around the id, e.g. '\\[(kb-[\\w-]+)\\]'")
        return self


class LatencyRule(_Spec):
    type: Literal["latency"] = Field(description="The trace must finish within max_ms.")
    max_ms: int = Field(ge=1, description="Fail traces slower than this, e.g. 8000.")


class StatusRule(_Spec):
    type: Literal["status"] = Field(description="The trace (and optionally spans of some types) must not be ERROR.")
    trace_ok: bool = Field(True, description="Fail when the trace status is ERROR.")
    span_types: list[str] = Field(default_factory=list, description="Also fail when any span of these types is "
                                                                    "ERROR, e.g. ['TOOL'].")

    @model_validator(mode="after")
    def _some(self) -> StatusRule:
        if not self.trace_ok and not self.span_types:
            raise ValueError("with trace_ok=false give span_types, e.g. ['TOOL']")
        return self


RuleSpec = Annotated[Union[RegexRule, JsonSchemaRule, LengthRule, TokenBudgetRule, PhrasesRule, ToolCallRule,
                           CitationRule, LatencyRule, StatusRule], Field(discriminator="type")]
RULE_TYPES: tuple[str, ...] = ("regex", "json_schema", "length", "token_budget", "phrases", "tool_call",
                               "citation_grounding", "latency", "status")


class LlmSpec(_Spec):
    type: Literal["llm"] = Field("llm", description="An LLM grades each item against a rubric.")
    rubric: str = Field(min_length=20, description="What a passing answer does, in plain words; the judge "
                                                    "scores 0-1 against it. E.g. 'The answer only states facts "
                                                    "found in the retrieved context ...'.")
    fields: list[LlmField] = Field(default_factory=lambda: ["input", "output"], min_length=1,
                                   description="What the judge sees: input, output, retrieved_context, "
                                               "tool_calls, expectations.")
    pass_threshold: float = Field(0.5, ge=0, le=1, description="score >= this is 'pass'.")
    max_chars_per_field: int = Field(4000, ge=200, le=50_000, description="Longer fields are cut (with a marker).")
    max_output_tokens: int = Field(300, ge=50, le=4000, description="Cap on the judge's answer length.")


class ClassifierModel(_Spec):
    """A fitted TF-IDF + logistic regression, as plain numbers (no pickle)."""

    ngram_max: int = 2
    sublinear_tf: bool = True
    vocabulary: list[str] = Field(description="Terms in feature order.")
    idf: list[float]
    coef: list[float]
    intercept: float


class ClassifierTraining(_Spec):
    labels: int = Field(description="Human labels used (latest per trace).")
    passes: int
    fails: int
    folds: int
    cv_mcc: float = Field(description="Cross-validated Matthews correlation with the human labels.")
    cv_accuracy: float
    trained_at_ms: int


class ClassifierSpec(_Spec):
    type: Literal["classifier"] = Field("classifier", description="Trained by train_classifier_judge.")
    fields: list[LlmField] = Field(default_factory=lambda: ["input", "output", "tool_calls"],
                                   description="Text the features are built from.")
    pass_threshold: float = Field(0.5, ge=0, le=1, description="P(pass) >= this is 'pass'.")
    model: ClassifierModel
    training: ClassifierTraining


JudgeSpec = Annotated[Union[RegexRule, JsonSchemaRule, LengthRule, TokenBudgetRule, PhrasesRule, ToolCallRule,
                            CitationRule, LatencyRule, StatusRule, LlmSpec, ClassifierSpec],
                      Field(discriminator="type")]
_SPEC = TypeAdapter(JudgeSpec)

EXAMPLES: dict[str, dict[str, Any]] = {
    "regex": {"type": "regex", "field": "output", "pattern": "(?i)as an ai", "must": "not_match"},
    "json_schema": {"type": "json_schema", "target": "tool_arguments", "tool": "issue_refund",
                    "json_schema": {"type": "object", "required": ["order_id", "amount"]}},
    "length": {"type": "length", "field": "output", "unit": "chars", "max": 2000},
    "token_budget": {"type": "token_budget", "max_total_tokens": 8000},
    "phrases": {"type": "phrases", "banned": ["as an AI"], "required": []},
    "tool_call": {"type": "tool_call", "must_call": ["lookup_order"]},
    "citation_grounding": {"type": "citation_grounding"},
    "latency": {"type": "latency", "max_ms": 8000},
    "status": {"type": "status", "trace_ok": True, "span_types": ["TOOL"]},
    "llm": {"type": "llm", "rubric": "Pass if the answer is fully supported by the retrieved context.",
            "fields": ["input", "output", "retrieved_context"], "pass_threshold": 0.5},
}


def spec_kind(spec: BaseModel) -> JudgeKind:
    t = getattr(spec, "type")
    return "llm" if t == "llm" else "classifier" if t == "classifier" else "rule"


def canonical_json(spec: BaseModel) -> str:
    """The spec as canonical JSON (sorted keys, defaults included): the input of the version hash."""
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def parse_spec(kind: str, spec: dict[str, Any] | str) -> BaseModel:
    """Validate ``spec`` for ``kind``; errors name the field and show an example of the shape."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError as error:
            raise InvalidInputError(f"spec is not valid JSON ({error}). Pass an object such as "
                                    f"{json.dumps(EXAMPLES['regex'])}.") from error
    if not isinstance(spec, dict):
        raise InvalidInputError("spec must be a JSON object with a 'type', e.g. "
                                f"{json.dumps(EXAMPLES['length'])}.")
    spec = dict(spec)
    if kind == "llm":
        spec.setdefault("type", "llm")
    if kind == "classifier":
        raise InvalidInputError("Classifier judges are trained from human labels, not written by hand: call "
                                "train_classifier_judge(name=..., criterion=...) instead.")
    if kind not in ("rule", "llm"):
        raise InvalidInputError(f"kind {kind!r} is not one of: rule, llm (classifier judges come from "
                                "train_classifier_judge).")
    t = spec.get("type")
    allowed = RULE_TYPES if kind == "rule" else ("llm",)
    if t not in allowed:
        raise InvalidInputError(
            f"spec.type {t!r} is not a {kind} judge type. Use one of: {', '.join(allowed)}. "
            f"Example: {json.dumps(EXAMPLES[allowed[0] if t not in EXAMPLES else t])}.")
    try:
        return _SPEC.validate_python(spec)
    except ValidationError as error:
        lines = []
        for problem in error.errors(include_url=False):
            path = ".".join(str(p) for p in problem["loc"][1:])
            lines.append(f"{'spec.' + path if path else 'spec'}: {problem['msg'].removeprefix('Value error, ')}")
        raise InvalidInputError(f"Invalid {t} judge spec:\n" + "\n".join(lines) +
                                f"\nExample of a valid {t} spec: {json.dumps(EXAMPLES[t])}") from error
