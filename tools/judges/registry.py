"""The judge registry: define_judge, list_judges, get_judge, and resolving 'name@version' refs.

A judge version is immutable: its id is a hash of the criterion and the canonical spec, so
defining the same spec twice is a no-op and a changed spec is a new version. Old versions stay
runnable (``name@1``), which is what makes a score comparable with last month's.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tools.judges import specs as S
from tools.errors import InvalidInputError, NotFoundError
from tools.judges.ports import JudgeRecord, JudgeStore

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

JudgeName = Annotated[str, Field(min_length=1, max_length=64, description=(
    "Judge name: letters, digits, '_', '-', '.', e.g. 'citations_grounded'. Defining an existing name with a "
    "changed spec adds a new version."))]
Kind = Annotated[str, Field(description="'rule' (deterministic checks) or 'llm' (a model grades with a rubric). "
                                        "Classifier judges come from train_classifier_judge.")]
Criterion = Annotated[str, Field(min_length=1, max_length=100, description=(
    "The failure mode this judge measures, matching human label criteria (e.g. 'citation_grounded'); "
    "calibration compares the judge with labels of this criterion."))]
SpecArg = Annotated[dict[str, Any], Field(description=(
    "The judge definition, an object with a 'type'. Rule types: regex {field, pattern, must: match|not_match}, "
    "json_schema {target: output|tool_arguments, tool, json_schema}, length {field, unit: chars|words, min, max}, "
    "token_budget {max_input_tokens|max_output_tokens|max_total_tokens}, phrases {field, required, banned}, "
    "tool_call {must_call, must_not_call, expected_by_metadata + expected_tools, argument_schemas}, "
    "citation_grounding {citation_pattern, retriever}, latency {max_ms}, status {trace_ok, span_types}. "
    "LLM: {type: 'llm', rubric, fields: [input, output, retrieved_context, tool_calls, expectations], "
    "pass_threshold}. Fields: input, output, retrieved_context, tool_arguments."))]
Description = Annotated[str | None, Field(max_length=2000, description="Optional note for people: why this judge exists.")]
JudgeRef = Annotated[str, Field(min_length=1, description="Judge name (latest version), 'name@2' (version number) "
                                                          "or 'name@<version hash>'.")]


class DefineJudgeInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: JudgeName
    kind: Kind
    criterion: Criterion
    spec: SpecArg
    description: Description = None


class JudgeVersion(BaseModel):
    ref: str = Field(description="'name@seq': pass to run_judges to pin this version.")
    version: str = Field(description="Content hash of criterion + spec.")
    seq: int
    kind: str
    criterion: str
    created_at_ms: int
    explained: str = Field(description="The spec in words.")
    spec: dict[str, Any] = Field(description="The spec (a classifier's weights are summarised, not listed).")
    description: str | None = None


class DefineJudgeResult(BaseModel):
    judge: JudgeVersion
    created: bool = Field(description="False when this exact spec was already a version (nothing changed).")
    previous: str | None = Field(description="The ref of the version that was latest before, if any.")


class JudgeSummary(BaseModel):
    name: str
    latest: str = Field(description="Ref of the latest version.")
    versions: int
    kind: str
    criterion: str
    explained: str


class ListJudgesResult(BaseModel):
    judges: list[JudgeSummary]


class GetJudgeResult(BaseModel):
    name: str
    versions: list[JudgeVersion] = Field(description="Every version, newest first; all stay runnable.")


def version_hash(criterion: str, spec: BaseModel) -> str:
    payload = json.dumps({"criterion": criterion, "spec": json.loads(S.canonical_json(spec))}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def explain(spec: dict[str, Any]) -> str:
    """One line in words, e.g. "fail when output contains regex '(?i)as an ai'"."""
    t = spec.get("type")
    g = spec.get
    if t == "regex":
        return f"{'pass only when' if g('must') == 'match' else 'fail when'} {g('field')} matches regex {g('pattern')!r}"
    if t == "json_schema":
        what = "output" if g("target") == "output" else f"arguments of {g('tool') or 'every tool'} calls"
        return f"{what} must be JSON valid against the given schema"
    if t == "length":
        bounds = " and ".join(x for x in (f">= {g('min')}" if g("min") is not None else "",
                                          f"<= {g('max')}" if g("max") is not None else "") if x)
        return f"{g('field')} length in {g('unit')} must be {bounds}"
    if t == "token_budget":
        return "token usage within " + ", ".join(f"{k.removeprefix('max_')} {v}" for k, v in spec.items()
                                                 if k.startswith("max_") and v)
    if t == "phrases":
        return f"{g('field')} must contain {g('required') or 'nothing required'} and none of {g('banned') or '[]'}"
    if t == "tool_call":
        parts = [f"must call {g('must_call')}" if g("must_call") else "",
                 f"must not call {g('must_not_call')}" if g("must_not_call") else "",
                 f"tools expected by metadata.{g('expected_by_metadata')}" if g("expected_by_metadata") else "",
                 f"argument schemas for {sorted(g('argument_schemas'))}" if g("argument_schemas") else ""]
        return "; ".join(p for p in parts if p)
    if t == "citation_grounding":
        return "every citation in the output must appear in the retrieved documents of the same trace"
    if t == "latency":
        return f"trace must finish within {g('max_ms')} ms"
    if t == "status":
        return " and ".join(x for x in ("trace status must not be ERROR" if g("trace_ok") else "",
                                        f"no {'/'.join(g('span_types'))} span may be ERROR" if g("span_types") else "")
                            if x)
    if t == "llm":
        return f"LLM grades {', '.join(g('fields'))} against a rubric; score >= {g('pass_threshold')} passes"
    if t == "classifier":
        tr = g("training") or {}
        return (f"TF-IDF + logistic regression on {', '.join(g('fields'))}, trained on {tr.get('labels')} labels "
                f"(cross-validated MCC {tr.get('cv_mcc')})")
    return str(t)


def _public_spec(spec: dict[str, Any]) -> dict[str, Any]:
    if spec.get("type") != "classifier":
        return spec
    model = spec.get("model", {})
    return {**spec, "model": {"features": len(model.get("vocabulary", [])), "ngram_max": model.get("ngram_max")}}


def to_version(record: JudgeRecord) -> JudgeVersion:
    return JudgeVersion(ref=record.ref, version=record.version, seq=record.seq, kind=record.kind,
                        criterion=record.criterion, created_at_ms=record.created_at_ms,
                        explained=explain(record.spec), spec=_public_spec(record.spec),
                        description=record.description)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInputError(f"Judge name {name!r} is not allowed. Use letters, digits, '_', '-' or '.', "
                                "starting with a letter or digit (e.g. 'citations_grounded'); '@' separates "
                                "the version in refs.")
    return name


def store_version(store: JudgeStore, *, name: str, criterion: str, spec: BaseModel, description: str | None,
                  now_ms: int) -> DefineJudgeResult:
    """Save ``spec`` as a version of ``name`` unless that exact version exists."""
    check_name(name)
    version = version_hash(criterion, spec)
    existing = store.judge_versions(name)
    previous = existing[0].ref if existing else None
    for record in existing:
        if record.version == version:
            return DefineJudgeResult(judge=to_version(record), created=False, previous=previous)
    record = store.save_judge(JudgeRecord(
        name=name, version=version, seq=(existing[0].seq + 1) if existing else 1, kind=S.spec_kind(spec),
        criterion=criterion, spec=json.loads(S.canonical_json(spec)), description=description,
        created_at_ms=now_ms))
    return DefineJudgeResult(judge=to_version(record), created=True, previous=previous)


def define_judge(store: JudgeStore, inp: DefineJudgeInput, *, now_ms: int) -> DefineJudgeResult:
    """Validate the spec for its kind and store it as a (possibly new) version."""
    spec = S.parse_spec(inp.kind, inp.spec)
    return store_version(store, name=inp.name, criterion=inp.criterion.strip(), spec=spec,
                         description=inp.description, now_ms=now_ms)


def list_judges(store: JudgeStore) -> ListJudgesResult:
    return ListJudgesResult(judges=[
        JudgeSummary(name=r.name, latest=r.ref, versions=n, kind=r.kind, criterion=r.criterion,
                     explained=explain(r.spec)) for r, n in store.latest_judges()])


def _unknown_name(store: JudgeStore, name: str) -> NotFoundError:
    names = [r.name for r, _ in store.latest_judges()]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listing = f" Existing: {', '.join(sorted(names)[:10])}." if names else " No judges exist yet: call define_judge."
    return NotFoundError(f"No judge named {name!r}.{hint}{listing}")


def get_judge(store: JudgeStore, name: str) -> GetJudgeResult:
    versions = store.judge_versions(name.split("@")[0])
    if not versions:
        raise _unknown_name(store, name.split("@")[0])
    return GetJudgeResult(name=versions[0].name, versions=[to_version(r) for r in versions])


def resolve(store: JudgeStore, ref: str) -> JudgeRecord:
    """'name' -> latest version; 'name@3' -> third version; 'name@<hash prefix>' -> that version."""
    name, _, want = ref.strip().partition("@")
    versions = store.judge_versions(name)
    if not versions:
        raise _unknown_name(store, name)
    if not want:
        return versions[0]
    for record in versions:
        if (want.isdigit() and record.seq == int(want)) or (len(want) >= 4 and record.version.startswith(want)):
            return record
    listing = ", ".join(f"{r.ref} ({r.version})" for r in versions[:10])
    raise NotFoundError(f"Judge {name!r} has no version {want!r}. Versions: {listing}.")
