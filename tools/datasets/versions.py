"""Dataset versions: addressing (``name@3``), content hashing, the clash rule, and diffs.

Versions are immutable. A write that would produce exactly the content of the latest version
returns that version instead of adding one (idempotent); anything else becomes version N+1. The
content hash is order-independent (sha256 over the sorted per-record hashes) so that the same
records written in another order are recognised as the same dataset.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field

from tools.datasets.models import NAME_RE, DatasetRecord, DatasetStore, DatasetVersion
from tools.errors import InvalidInputError, NotFoundError

#: Spec keys that define what a dataset *is*; ``origin`` and friends only say how a version came about.
DEFINITION_KEYS = ("selection", "sample", "redact", "collapse_near_duplicates", "expectations_from_labels", "import")
_MAX_LISTED = 50


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def record_hash(record: DatasetRecord) -> str:
    """Hash of what a record says (not its redaction counts, which are bookkeeping)."""
    body = record.model_dump(exclude={"redaction"})
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def content_hash(records: list[DatasetRecord]) -> str:
    return hashlib.sha256("\n".join(sorted(record_hash(r) for r in records)).encode()).hexdigest()


def definition(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: spec.get(k) for k in DEFINITION_KEYS if spec.get(k) is not None}


def parse_ref(name: str, version: int | None = None) -> tuple[str, int | None]:
    """Split ``'golden@3'`` into ('golden', 3); ``version`` must agree when both are given."""
    base, at, tail = name.strip().partition("@")
    parsed = None
    if at:
        if not tail.isdigit() or int(tail) < 1:
            raise InvalidInputError(
                f"Dataset reference '{name}' has a bad version after '@'. Write 'name@3' (versions are 1, 2, …) "
                "or just the name for the latest version.")
        parsed = int(tail)
    if parsed is not None and version is not None and parsed != version:
        raise InvalidInputError(
            f"Dataset reference '{name}' says version {parsed} but version={version} was also given. Give one.")
    check_name(base)
    return base, parsed if parsed is not None else version


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidInputError(
            f"Dataset name '{name}' is not valid. Use 1-100 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit (e.g. 'checkout_errors'); add '@3' only to address version 3.")
    return name


def unknown_name_error(name: str, existing: list[str]) -> NotFoundError:
    guess = difflib.get_close_matches(name, existing, n=1, cutoff=0.6)
    hint = f" Did you mean '{guess[0]}'?" if guess else ""
    listed = ", ".join(sorted(existing)[:10]) + (f" (and {len(existing) - 10} more)" if len(existing) > 10 else "")
    known = f" Existing: {listed}." if existing else " No datasets exist yet; create one with build_dataset_from_tags."
    return NotFoundError(f"No dataset named '{name}'.{hint}{known}")


def resolve(store: DatasetStore, name: str, version: int | None = None) -> DatasetVersion:
    """The header of ``name@version`` (latest when None); NotFoundError with suggestions otherwise."""
    base, wanted = parse_ref(name, version)
    versions = store.versions(base)
    if not versions:
        raise unknown_name_error(base, [s.name for s in store.summaries()])
    if wanted is None:
        return versions[-1]
    for v in versions:
        if v.version == wanted:
            return v
    numbers = ", ".join(str(v.version) for v in versions)
    raise NotFoundError(f"Dataset '{base}' has no version {wanted}. Versions: {numbers} (latest {versions[-1].version}).")


class RecordChange(BaseModel):
    record_id: str
    fields: list[str] = Field(description="Which parts differ: inputs, outputs, expectations, strata, "
                                          "selection_probability, trace_id.")
    expectation_keys: list[str] = Field(default_factory=list, description="Expectation keys added, removed or changed.")


class DiffDatasetsResult(BaseModel):
    name: str
    a: int
    b: int
    same_content: bool = Field(description="True when both versions hold exactly the same records.")
    added: list[str] = Field(description="Record ids only in b (first 50).")
    removed: list[str] = Field(description="Record ids only in a (first 50).")
    changed: list[RecordChange] = Field(description="Records in both whose content differs (first 50).")
    added_count: int
    removed_count: int
    changed_count: int
    unchanged_count: int
    spec_changes: dict[str, list[Any]] = Field(description="Spec keys whose value differs: key -> [a, b].")
    strata_changes: dict[str, list[int]] = Field(description="Stratum -> [records in a, records in b], where different.")


def diff(name: str, a: DatasetVersion, b: DatasetVersion, ra: list[DatasetRecord],
         rb: list[DatasetRecord]) -> DiffDatasetsResult:
    by_a = {r.record_id: r for r in ra}
    by_b = {r.record_id: r for r in rb}
    added = [k for k in by_b if k not in by_a]
    removed = [k for k in by_a if k not in by_b]
    changed: list[RecordChange] = []
    for key in (k for k in by_b if k in by_a):
        x, y = by_a[key].model_dump(exclude={"redaction"}), by_b[key].model_dump(exclude={"redaction"})
        fields = [f for f in x if canonical(x[f]) != canonical(y[f])]
        if fields:
            ex, ey = x["expectations"], y["expectations"]
            keys = sorted(k for k in set(ex) | set(ey) if canonical(ex.get(k)) != canonical(ey.get(k)))
            changed.append(RecordChange(record_id=key, fields=fields, expectation_keys=keys))
    spec_keys = sorted(set(a.spec) | set(b.spec))
    spec_changes = {k: [a.spec.get(k), b.spec.get(k)] for k in spec_keys
                    if canonical(a.spec.get(k)) != canonical(b.spec.get(k))}
    count_a = {s.stratum: s.sampled for s in a.strata}
    count_b = {s.stratum: s.sampled for s in b.strata}
    strata_changes = {k: [count_a.get(k, 0), count_b.get(k, 0)] for k in sorted(set(count_a) | set(count_b))
                      if count_a.get(k, 0) != count_b.get(k, 0)}
    return DiffDatasetsResult(
        name=name, a=a.version, b=b.version, same_content=a.content_hash == b.content_hash,
        added=added[:_MAX_LISTED], removed=removed[:_MAX_LISTED], changed=changed[:_MAX_LISTED],
        added_count=len(added), removed_count=len(removed), changed_count=len(changed),
        unchanged_count=len(by_b) - len(added) - len(changed), spec_changes=spec_changes,
        strata_changes=strata_changes)
