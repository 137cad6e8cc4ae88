"""Versioned eval datasets from tagged traces: build, list, read, diff.

``build_dataset_from_tags`` selects traces by tags and/or a filter, removes duplicates, samples
(stratified, seeded, with selection probabilities), redacts PII, attaches expectations from human
labels and writes an immutable version. The rule for names (explained to agents in the tool
description):

* new name -> version 1;
* same name, same definition (selection + sampling + redaction options):
  same content -> the existing version is returned (idempotent), changed content -> version N+1;
* same name, different definition -> ConflictError unless ``new_version=True``.

A rebuild carries forward what people added on top of a build: expectations on traces that are
still selected, and hand-written records without a trace. Edits live in ``dataset_merge``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.datasets import selection as sel
from tools.datasets import versions as dv
from tools.filters import parser
from tools.datasets.models import (BASE_DIMENSIONS, CollapseNear, DatasetFilter, DatasetName, DatasetRecord,
                                  DatasetStore, DatasetSummary, DatasetVersion, Description, FromLabels, MaxChars,
                                  IncludeInProgress, NewVersion, Offset, PageLimit, Redact, SampleArg, TagSelectors, Version,
                                  VersionA, VersionB)
from tools.errors import ConflictError, InvalidInputError
from tools.previews import cut
from tools.datasets.empty_records import SkipEmpty, empty_warnings, split_empty
from tools.privacy.redaction import (RedactionReport, Redactor, names_description, not_covered, prime,
                                     redact_record)
from tools.datasets.sampling import StratumCount, stratified_sample

MAX_RECORDS = 50_000


class BuildDatasetInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: DatasetName
    tags: TagSelectors = None
    filter: DatasetFilter = None
    sample: SampleArg = None
    redact: Redact = True
    description: Description = None
    new_version: NewVersion = False
    collapse_near_duplicates: CollapseNear = False
    expectations_from_labels: FromLabels = True
    skip_empty: SkipEmpty = False
    include_in_progress: IncludeInProgress = False

    @model_validator(mode="after")
    def _something_selected(self) -> BuildDatasetInput:
        if not self.tags and not (self.filter and self.filter.strip()):
            raise ValueError("give tags (e.g. ['eval_candidate']) or a filter (e.g. \"attributes.status = 'ERROR'\"), "
                             "or both")
        return self


class DatasetWriteResult(BaseModel):
    """The version a write produced (or found already identical)."""

    name: str
    version: int
    created: bool = Field(description="False when the content equalled the latest version, which is returned.")
    record_count: int
    content_hash: str
    strata: list[StratumCount] = Field(description="Records per stratum, with population and selection probability.")
    redaction: RedactionReport
    selected: int | None = Field(None, description="Traces the selection matched, after removing duplicates.")
    duplicates_collapsed: int = Field(0, description="Near-identical requests folded into another record.")
    expectations_carried_forward: int = Field(0, description="Records that kept expectations from the previous version.")
    filter_explained: str | None = None
    skipped_in_progress: int = Field(0, description="Selected traces left out because their root span has not "
                                                    "arrived yet (status IN_PROGRESS).")
    warnings: list[str] = Field(default_factory=list)
    next: str = Field(description="A suggested next call.")


def check_clash(name: str, latest: DatasetVersion | None, spec: dict[str, Any], new_version: bool) -> None:
    if latest is None or new_version:
        return
    old, new = dv.definition(latest.spec), dv.definition(spec)
    if old != new:
        changed = ", ".join(k for k in sorted(set(old) | set(new)) if dv.canonical(old.get(k)) != dv.canonical(new.get(k)))
        raise ConflictError(
            f"Dataset '{name}' already exists (latest version {latest.version}) with a different definition "
            f"({changed} differ; it was built with {dv.canonical(old)}). Pass new_version=true to record the new "
            f"definition as version {latest.version + 1}, or choose another name. Nothing was written.")


def strata_summary(records: list[DatasetRecord], known: list[StratumCount]) -> list[StratumCount]:
    """Records per stratum label; population/probability come from sampling where it is known."""
    by_label = {s.stratum: s for s in known}
    counts = Counter(r.strata.get("stratum", "(unstratified)") for r in records)
    out = []
    for label in sorted(counts):
        base = by_label.get(label)
        out.append(StratumCount(stratum=label, population=base.population if base else None, sampled=counts[label],
                                selection_probability=base.selection_probability if base else None))
    return out


def redaction_summary(records: list[DatasetRecord], enabled: bool) -> RedactionReport:
    report = RedactionReport(enabled=enabled, person_names=names_description() if enabled else "redaction off",
                             not_covered=not_covered() if enabled else [])
    for r in records:
        report.add(r.redaction)
    return report


def commit(store: DatasetStore, *, name: str, latest: DatasetVersion | None, spec: dict[str, Any],
           records: list[DatasetRecord], strata: list[StratumCount], description: str | None, now_ms: int,
           **extra: Any) -> DatasetWriteResult:
    """Write ``records`` as the next version unless they equal the latest version's (then return it)."""
    digest = dv.content_hash(records)
    report = redaction_summary(records, bool(spec.get("redact", True)))
    same_definition = latest is not None and dv.definition(latest.spec) == dv.definition(spec)
    if latest is not None and same_definition and latest.content_hash == digest:
        return DatasetWriteResult(
            name=name, version=latest.version, created=False, record_count=latest.record_count,
            content_hash=digest, strata=latest.strata, redaction=latest.redaction,
            next=f"Unchanged: version {latest.version} already holds exactly these records. "
                 f"get_dataset(name='{name}', version={latest.version})", **extra)
    version = (latest.version + 1) if latest else 1
    header = DatasetVersion(name=name, version=version, created_at_ms=now_ms,
                            description=description if description is not None else (latest.description if latest else None),
                            spec=spec, content_hash=digest, record_count=len(records), strata=strata,
                            redaction=report, parent_version=latest.version if latest else None)
    store.write_version(header, records)
    return DatasetWriteResult(name=name, version=version, created=True, record_count=len(records),
                              content_hash=digest, strata=strata, redaction=report,
                              next=f"get_dataset(name='{name}', version={version}) to read it; "
                                   f"export_dataset(name='{name}', version={version}, format='jsonl') to export.",
                              **extra)


def build_dataset_from_tags(store: DatasetStore, inp: BuildDatasetInput, *, now_ms: int) -> DatasetWriteResult:
    """Select, deduplicate, sample, redact and write a version. Every check runs before the write."""
    name = dv.check_name(inp.name)
    selectors = sel.parse_selectors(inp.tags or [])
    catalog = store.tag_values()
    sel.check_tags(selectors, catalog)
    dims = list(inp.sample.stratify_by) if inp.sample else []
    sel.check_dimensions(dims, catalog)
    expr = sel.selection_expr(selectors, inp.filter)
    spec = {"origin": "build",
            "selection": {"tags": [k if v is None else f"{k}={v}" for k, v in selectors],
                          "filter": (inp.filter or "").strip() or None},
            "sample": inp.sample.model_dump() if inp.sample else None, "redact": inp.redact,
            "collapse_near_duplicates": inp.collapse_near_duplicates,
            "expectations_from_labels": inp.expectations_from_labels}
    # options join the definition only when set, so definitions built before they existed stay equal
    if inp.skip_empty:
        spec["skip_empty"] = True
    if inp.include_in_progress:
        spec["include_in_progress"] = True
    versions = store.versions(name)
    latest = versions[-1] if versions else None
    check_clash(name, latest, spec, inp.new_version)

    explained = parser.explain(expr) if expr is not None else "all traces"
    candidates = store.candidates(expr, now_ms=now_ms, with_request=inp.collapse_near_duplicates)
    skipped = 0
    if not inp.include_in_progress:
        complete = [c for c in candidates if c.status != "IN_PROGRESS"]
        skipped, candidates = len(candidates) - len(complete), complete
    if not candidates:
        more = (f" except {skipped} still IN_PROGRESS (pass include_in_progress=true to take them)"
                if skipped else "")
        raise InvalidInputError(
            f"The selection matched no traces{more} ({explained}). Check it with search_traces, or tag traces first "
            "with tag_trace. Nothing was written.")
    collapsed = 0
    if inp.collapse_near_duplicates:
        keep: dict[str, Any] = {}
        rest = []
        for c in sorted(candidates, key=lambda c: (-c.timestamp_ms, c.trace_id)):
            key = sel.near_duplicate_key(c.request_head)
            if key is None:
                rest.append(c)
            elif key not in keep:
                keep[key] = c
        collapsed = len(candidates) - len(keep) - len(rest)
        candidates = list(keep.values()) + rest
    tiers = sel.latency_thresholds(candidates)
    values = {c.trace_id: {d: sel.dimension_value(c, d, tiers) for d in dict.fromkeys([*BASE_DIMENSIONS, *dims])}
              for c in candidates}
    units = [(c.trace_id, sel.stratum_label(values[c.trace_id], dims)) for c in candidates]
    sample = inp.sample
    outcome = stratified_sample(units, n=sample.n if sample else None, seed=sample.seed if sample else 0,
                                allocation=sample.allocation if sample else "proportional")
    if len(outcome.selected) > MAX_RECORDS:
        raise InvalidInputError(
            f"The selection matched {len(outcome.selected)} traces; a dataset holds at most {MAX_RECORDS}. "
            f"Pass sample={{'n': 1000}} (optionally with stratify_by) or narrow the filter. Nothing was written.")

    warnings: list[str] = []
    if skipped:
        warnings.append(f"Skipped {skipped} selected trace(s) still IN_PROGRESS (their root span has not arrived); "
                        "build again later, or pass include_in_progress=true to take them as they are.")
    if sample and sample.n > len(candidates):
        warnings.append(f"sample.n={sample.n} exceeds the {len(candidates)} selected traces; all were kept "
                        "(selection probability 1).")
    empty = [s.stratum for s in outcome.strata if s.sampled == 0]
    if empty:
        warnings.append(f"{len(empty)} strata got no records ({', '.join(empty[:5])}); estimates cannot cover them. "
                        "Raise sample.n or use allocation='equal'.")

    by_id = {c.trace_id: c for c in candidates}
    chosen = sorted(outcome.selected, key=lambda s: (-by_id[s[0]].timestamp_ms, s[0]))
    ids = [s[0] for s in chosen]
    bodies = store.payloads(ids)
    labels = store.label_expectations(ids) if inp.expectations_from_labels else {}
    previous = store.records(name, latest.version) if latest else []
    carried = {r.trace_id: r.expectations for r in previous if r.trace_id and r.expectations}
    if inp.redact:
        prime(sel.payload(v) for request, response in bodies.values() for v in (request, response) if v)
    records, kept_expectations = [], 0
    for trace_id, stratum, probability in chosen:
        request, response = bodies.get(trace_id, (None, None))
        expectations = {**carried.get(trace_id, {}), **labels.get(trace_id, {})}
        kept_expectations += trace_id in carried
        raw = {"inputs": sel.as_inputs(request), "outputs": sel.payload(response), "expectations": expectations}
        clean, counts = redact_record(raw) if inp.redact else (raw, {})
        records.append(DatasetRecord(record_id=trace_id, trace_id=trace_id, inputs=clean["inputs"],
                                     outputs=clean["outputs"], expectations=clean["expectations"],
                                     strata={**values[trace_id], "stratum": stratum},
                                     selection_probability=probability, redaction=counts))
    full, no_inputs, no_outputs = split_empty(records)
    warnings += empty_warnings(no_inputs, no_outputs, skipped=inp.skip_empty)
    if inp.skip_empty:
        records = full
        if not records and not any(r.trace_id is None for r in previous):
            raise InvalidInputError(f"All {len(chosen)} selected traces have empty inputs or outputs, so skip_empty "
                                    "left no records. Build without skip_empty, or check the traces with get_trace. "
                                    "Nothing was written.")
    records += [r for r in previous if r.trace_id is None]  # hand-written cases survive a rebuild
    if inp.redact and not names_description().startswith("spaCy"):
        warnings.append("Person names were not redacted: " + names_description())
    return commit(store, name=name, latest=latest, spec=spec, records=records,
                  strata=strata_summary(records, outcome.strata), description=inp.description, now_ms=now_ms,
                  selected=len(candidates), duplicates_collapsed=collapsed,
                  expectations_carried_forward=kept_expectations, filter_explained=explained, warnings=warnings,
                  skipped_in_progress=skipped)


# -- reading ------------------------------------------------------------------------------------------
class ListDatasetsResult(BaseModel):
    datasets: list[DatasetSummary] = Field(description="Every dataset, by name, with its latest version.")


def list_datasets(store: DatasetStore) -> ListDatasetsResult:
    return ListDatasetsResult(datasets=store.summaries())


class GetDatasetInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: DatasetName
    version: Version = None
    offset: Offset = 0
    limit: PageLimit = 20
    max_chars: MaxChars = 12_000


class RecordView(BaseModel):
    """A record as get_dataset shows it: JSON text, cut to the page budget with explicit markers."""

    position: int
    record_id: str
    trace_id: str | None
    inputs: str = Field(description="JSON text of the inputs (cut with '…[truncated: …]' if long).")
    outputs: str = Field(description="JSON text of the outputs the agent produced.")
    expectations: str = Field(description="JSON text of the expectations.")
    strata: dict[str, str]
    selection_probability: float | None
    redaction: dict[str, int]
    truncated: bool = Field(description="True if any field was cut; the marker names the call that reads more.")


class GetDatasetResult(BaseModel):
    dataset: DatasetVersion
    records: list[RecordView]
    offset: int
    next_offset: int | None = Field(description="Pass as `offset` for the next page; null when done.")


def get_dataset(store: DatasetStore, inp: GetDatasetInput) -> GetDatasetResult:
    header = dv.resolve(store, inp.name, inp.version)
    page = store.records(header.name, header.version, offset=inp.offset, limit=inp.limit)
    per_field = max(200, inp.max_chars // max(1, len(page)) // 3)
    views = []
    for i, r in enumerate(page):
        position = inp.offset + i
        full = {f: dv.canonical(getattr(r, f)) for f in ("inputs", "outputs", "expectations")}
        whole = min(200_000, max(inp.max_chars, 3 * max(len(t) for t in full.values()) + 30))
        hint = (f"call get_dataset(name='{header.name}', version={header.version}, offset={position}, limit=1, "
                f"max_chars={whole})" + ("" if whole < 200_000 else " or export_dataset for the full text"))
        texts = {}
        cut_any = False
        for field, text in full.items():
            texts[field], was_cut = cut(text, per_field, hint=hint)
            cut_any = cut_any or was_cut
        views.append(RecordView(position=position, record_id=r.record_id, trace_id=r.trace_id, **texts,
                                strata=r.strata, selection_probability=r.selection_probability,
                                redaction=r.redaction, truncated=cut_any))
    end = inp.offset + len(page)
    return GetDatasetResult(dataset=header, records=views, offset=inp.offset,
                            next_offset=end if end < header.record_count else None)


class DiffDatasetsInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: DatasetName
    a: VersionA = None
    b: VersionB = None


def diff_datasets(store: DatasetStore, inp: DiffDatasetsInput) -> dv.DiffDatasetsResult:
    base, _ = dv.parse_ref(inp.name)
    vb = dv.resolve(store, base, inp.b)
    if inp.a is None and vb.version == 1:
        raise InvalidInputError(f"Dataset '{base}' has only version 1; there is nothing to compare it with. "
                                "Give a and b explicitly once more versions exist.")
    va = dv.resolve(store, base, inp.a if inp.a is not None else vb.version - 1)
    return dv.diff(base, va, vb, store.records(base, va.version), store.records(base, vb.version))


def redactor_for(record: DatasetRecord | None) -> Redactor:
    """A redactor whose numbering continues after the placeholders already in ``record``."""
    if record is None:
        return Redactor()
    texts = [dv.canonical(record.inputs), dv.canonical(record.outputs), dv.canonical(record.expectations)]
    return Redactor(existing=texts)
