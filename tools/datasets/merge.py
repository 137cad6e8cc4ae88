"""Editing datasets by writing new versions: merge_records, set_expectations, import.

``merge_records`` follows MLflow's ``EvaluationDataset.merge_records``: records are upserted
(here by record id / trace id, MLflow keys by inputs), ``outputs`` and ``inputs`` are replaced
when given, and ``expectations`` are merged key by key, so adding ground truth never drops a
record or another expectation. Unlike MLflow, the result is a NEW immutable version (the previous
one stays readable); a merge that changes nothing returns the latest version unchanged.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from tools.datasets import selection as sel
from tools.datasets import versions as dv
from tools.datasets.models import (BASE_DIMENSIONS, CreateIfMissing, DatasetName, DatasetRecord, DatasetStore,
                                  Description, Expectations, FromLabels, RecordIds, RecordsArg, Redact)
from tools.datasets.builder import DatasetWriteResult, check_clash, commit, redactor_for, strata_summary
from tools.errors import InvalidInputError, NotFoundError
from tools.privacy.redaction import Redactor

_RECORD_KEYS = {"record_id", "trace_id", "inputs", "outputs", "expectations"}
_IMPORT_KEYS = _RECORD_KEYS | {"strata", "selection_probability", "redaction"}


class MergeRecordsInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: DatasetName
    records: RecordsArg
    redact: Redact = True
    create_if_missing: CreateIfMissing = False
    description: Description = None


class SetExpectationsInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: DatasetName
    record_ids: RecordIds = None
    expectations: Expectations = None
    from_labels: FromLabels = False
    redact: Redact = True

    @model_validator(mode="after")
    def _what(self) -> SetExpectationsInput:
        if not self.expectations and not self.from_labels:
            raise ValueError("give expectations (e.g. {'expected_response': '...'}) or from_labels=true, or both")
        if self.expectations and not self.record_ids:
            raise ValueError("expectations need record_ids (which records get them); see get_dataset for the ids")
        return self


def input_hash_id(inputs: Any) -> str:
    """Hand-written records are keyed by their inputs, as MLflow does."""
    return "r-" + hashlib.sha256(dv.canonical(inputs).encode()).hexdigest()[:16]


def _check_expectations(where: str, expectations: Any) -> dict[str, Any]:
    if not isinstance(expectations, dict):
        raise InvalidInputError(f"{where}: expectations must be a JSON object such as "
                                "{'expected_response': '...'}; got " + type(expectations).__name__ + ".")
    facts = expectations.get("expected_facts")
    if facts is not None and not (isinstance(facts, list) and all(isinstance(f, str) for f in facts)):
        raise InvalidInputError(f"{where}: expected_facts must be a list of strings, e.g. ['30-day returns'].")
    response = expectations.get("expected_response")
    if response is not None and not isinstance(response, str):
        raise InvalidInputError(f"{where}: expected_response must be a string.")
    return expectations


def _unknown_ids_error(name: str, missing: list[str], known: list[str]) -> NotFoundError:
    guess = difflib.get_close_matches(missing[0], known, n=1, cutoff=0.6)
    hint = f" Did you mean '{guess[0]}'?" if guess else ""
    return NotFoundError(f"Dataset '{name}' has no record(s) {', '.join(repr(m) for m in missing[:10])}.{hint} "
                         "List record ids with get_dataset. Nothing was written.")


def _new_trace_strata(store: DatasetStore, trace_ids: list[str], now_ms: int) -> dict[str, dict[str, str]]:
    found = store.candidates(None, now_ms=now_ms, trace_ids=trace_ids)
    return {c.trace_id: {**{d: sel.dimension_value(c, d, None) for d in BASE_DIMENSIONS if d != "latency_tier"},
                         "stratum": "(added)"} for c in found}


def merge_records(store: DatasetStore, inp: MergeRecordsInput, *, now_ms: int) -> DatasetWriteResult:
    """Upsert records into a new version; every record is validated before anything is written."""
    name, version = dv.parse_ref(inp.name)
    if version is not None:
        raise InvalidInputError(f"merge_records always builds on the latest version; pass name='{name}' without '@'.")
    versions = store.versions(name)
    latest = versions[-1] if versions else None
    if latest is None and not inp.create_if_missing:
        error = dv.unknown_name_error(name, [s.name for s in store.summaries()])
        raise NotFoundError(f"{error} Pass create_if_missing=true to start '{name}' from these records.")
    previous = store.records(name, latest.version) if latest else []
    by_id = {r.record_id: r for r in previous}
    by_trace = {r.trace_id: r.record_id for r in previous if r.trace_id}

    keyed: list[tuple[str, dict[str, Any]]] = []
    for i, raw in enumerate(inp.records):
        where = f"records[{i}]"
        extra = sorted(set(raw) - _RECORD_KEYS)
        if extra:
            raise InvalidInputError(f"{where} has unknown field(s) {', '.join(repr(e) for e in extra)}. Use "
                                    "record_id, trace_id, inputs, outputs, expectations.")
        if "expectations" in raw and raw["expectations"] is not None:
            _check_expectations(where, raw["expectations"])
        if "inputs" in raw and not isinstance(raw["inputs"], dict):
            raise InvalidInputError(f"{where}: inputs must be a JSON object such as {{'question': '...'}}.")
        if raw.get("record_id"):
            key = str(raw["record_id"])
        elif raw.get("trace_id"):
            key = by_trace.get(str(raw["trace_id"]), str(raw["trace_id"]))
        elif raw.get("inputs"):
            key = input_hash_id(raw["inputs"])
        else:
            raise InvalidInputError(f"{where} has none of record_id, trace_id or inputs, so it cannot be matched "
                                    "or added. Give trace_id to add a trace, or inputs for a hand-written case.")
        keyed.append((key, raw))

    unknown = [k for k, raw in keyed if k not in by_id and raw.get("record_id") and not raw.get("inputs")
               and not raw.get("trace_id")]
    if unknown:
        raise _unknown_ids_error(name, unknown, list(by_id))
    new_traces = list(dict.fromkeys(str(raw["trace_id"]) for k, raw in keyed
                                    if k not in by_id and raw.get("trace_id")))
    strata = _new_trace_strata(store, new_traces, now_ms) if new_traces else {}
    needs_payload = [t for t in new_traces if t in strata]
    missing = [t for t in new_traces if t not in strata and not any(
        raw.get("trace_id") == t and raw.get("inputs") for _, raw in keyed)]
    if missing:
        raise NotFoundError(f"No trace with id {', '.join(repr(m) for m in missing[:10])} in the store. Give inputs "
                            "for hand-written records, or use trace ids from search_traces. Nothing was written.")
    bodies = store.payloads(needs_payload) if needs_payload else {}

    records = dict(by_id)
    for key, raw in keyed:
        old = records.get(key)
        redactor = redactor_for(old) if inp.redact else None
        change: dict[str, Any] = {}
        trace_id = raw.get("trace_id") or (old.trace_id if old else None)
        if old is None and trace_id and "inputs" not in raw and trace_id in bodies:
            request, response = bodies[trace_id]
            change["inputs"] = sel.as_inputs(request)
            change["outputs"] = sel.payload(response)
        for field in ("inputs", "outputs"):
            if field in raw:
                change[field] = raw[field]
        for field in list(change):
            change[field] = redactor.value(change[field]) if redactor else change[field]
        expectations = dict(old.expectations) if old else {}
        for k, v in (raw.get("expectations") or {}).items():
            if v is None:
                expectations.pop(k, None)  # an explicit null removes one expectation
            else:
                expectations[k] = redactor.value(v) if redactor else v
        redaction = dict(old.redaction) if old else {}
        for t, n in (redactor.counts if redactor else {}).items():
            redaction[t] = redaction.get(t, 0) + n
        base = old.model_dump() if old else {"record_id": key, "trace_id": trace_id, "outputs": None,
                                             "strata": strata.get(str(trace_id), {"stratum": "(added)"}),
                                             "selection_probability": None}
        if "inputs" not in base and "inputs" not in change:
            raise InvalidInputError(f"Record '{key}' is new but has no inputs; give inputs or a known trace_id.")
        records[key] = DatasetRecord(**{**base, **change, "expectations": expectations,
                                        "redaction": dict(sorted(redaction.items()))})

    spec = dict(latest.spec) if latest else {"redact": inp.redact}
    spec["origin"] = "merge_records"
    ordered = list(records.values())
    known_strata = latest.strata if latest else []
    return commit(store, name=name, latest=latest, spec=spec, records=ordered,
                  strata=strata_summary(ordered, known_strata), description=inp.description, now_ms=now_ms)


def set_expectations(store: DatasetStore, inp: SetExpectationsInput, *, now_ms: int) -> DatasetWriteResult:
    """Attach ground truth (given, or the human labels of each record's trace) as a new version."""
    header = dv.resolve(store, inp.name)
    previous = store.records(header.name, header.version)
    by_id = {r.record_id: r for r in previous}
    ids = list(dict.fromkeys(inp.record_ids)) if inp.record_ids else list(by_id)
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise _unknown_ids_error(header.name, unknown, list(by_id))
    if inp.expectations:
        _check_expectations("expectations", inp.expectations)
    labels = store.label_expectations([t for i in ids if (t := by_id[i].trace_id)]) if inp.from_labels else {}
    if inp.from_labels and not labels and not inp.expectations:
        raise InvalidInputError(f"None of the {len(ids)} records' traces has a human label, so from_labels has "
                                "nothing to copy. Label traces first, or pass expectations. Nothing was written.")
    updates = []
    for i in ids:
        merged = {**labels.get(by_id[i].trace_id or "", {}), **(inp.expectations or {})}
        if merged:
            updates.append({"record_id": i, "expectations": merged})
    return merge_records(store, MergeRecordsInput(name=header.name, records=updates, redact=inp.redact), now_ms=now_ms)


def import_records(store: DatasetStore, *, name: str, rows: list[dict[str, Any]], source: dict[str, Any],
                   redact: bool, new_version: bool, description: str | None, now_ms: int) -> DatasetWriteResult:
    """Create a version holding exactly ``rows`` (e.g. read from an exported JSONL file)."""
    name = dv.check_name(name)
    if not rows:
        raise InvalidInputError("The file holds no records. Nothing was written.")
    records: dict[str, DatasetRecord] = {}
    for i, raw in enumerate(rows):
        where = f"record {i + 1}"
        if not isinstance(raw, dict):
            raise InvalidInputError(f"{where} is not a JSON object.")
        extra = sorted(set(raw) - _IMPORT_KEYS)
        if extra:
            raise InvalidInputError(f"{where} has unknown field(s) {', '.join(repr(e) for e in extra)}. Expected "
                                    f"{', '.join(sorted(_IMPORT_KEYS))}.")
        if not isinstance(raw.get("inputs"), dict):
            raise InvalidInputError(f"{where} needs 'inputs' as a JSON object, e.g. {{'question': '...'}}.")
        _check_expectations(where, raw.get("expectations") or {})
        key = str(raw.get("record_id") or raw.get("trace_id") or input_hash_id(raw["inputs"]))
        if key in records:
            raise InvalidInputError(f"{where} repeats record_id '{key}'. Record ids must be unique in a file.")
        body = {"inputs": raw["inputs"], "outputs": raw.get("outputs"), "expectations": raw.get("expectations") or {}}
        counts: dict[str, int] = {}
        if redact:
            redactor = Redactor()
            body = {k: redactor.value(v) for k, v in body.items()}
            counts = dict(redactor.counts)
        prior = {k: int(v) for k, v in (raw.get("redaction") or {}).items()}
        for t, n in counts.items():
            prior[t] = prior.get(t, 0) + n
        try:
            records[key] = DatasetRecord(record_id=key, trace_id=raw.get("trace_id"), **body,
                                         strata={str(k): str(v) for k, v in (raw.get("strata") or {}).items()},
                                         selection_probability=raw.get("selection_probability"),
                                         redaction=dict(sorted(prior.items())))
        except ValueError as error:
            raise InvalidInputError(f"{where} is not a valid record: {error}") from error
    versions = store.versions(name)
    latest = versions[-1] if versions else None
    spec = {"origin": "import", "import": {"format": source.get("format", "jsonl")}, "redact": redact,
            "source": source}
    check_clash(name, latest, spec, new_version)
    ordered = list(records.values())
    return commit(store, name=name, latest=latest, spec=spec, records=ordered,
                  strata=strata_summary(ordered, []), description=description, now_ms=now_ms)
