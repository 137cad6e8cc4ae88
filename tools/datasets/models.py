"""The nouns of the datasets feature: parameter aliases, records, versions and the store port.

A dataset is a name with immutable, integer-numbered versions (``golden@1``, ``golden@2``; the
bare name means the latest). A record is one eval case: ``inputs`` (the request as the agent got
it), ``outputs`` (the response it already produced, so judges can score without re-running the
agent), ``expectations`` (ground truth), the source ``trace_id``, its strata and the probability
with which sampling selected it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tools.privacy.redaction import RedactionReport
from tools.datasets.sampling import Allocation, StratumCount

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
#: Sampling / strata dimensions; ``tag:<key>`` stratifies by a tag's value.
STRATA_DIMENSIONS = ("status", "model", "environment", "prompt_version", "tool_path", "span_path",
                     "latency_tier", "tag:<key>")
#: Dimensions every record carries in ``strata`` (for slicing results later), sampled or not.
BASE_DIMENSIONS = ("status", "environment", "model", "tool_path", "latency_tier")

DatasetName = Annotated[str, Field(
    min_length=1, max_length=110,
    description="Dataset name: letters, digits, '_', '.', '-' (e.g. 'checkout_errors'). 'name@3' addresses "
                "version 3; the bare name means the latest version.")]
Version = Annotated[int | None, Field(ge=1, description="Version number (1, 2, …); omit for the latest.")]
TagSelectors = Annotated[list[str] | None, Field(
    max_length=50,
    description="Tags that select traces: 'key' (any value) or 'key=value', e.g. ['eval_candidate=error_case', "
                "'eval_candidate=slow']. A trace carrying ANY of them is selected; use filter to narrow further.")]
DatasetFilter = Annotated[str | None, Field(
    description="A search_traces filter that selects traces (alone) or narrows the tag selection (ANDed), e.g. "
                "\"tags.environment = 'production' AND attributes.timestamp_ms > now() - 30d\".")]
Description = Annotated[str | None, Field(max_length=2000, description="What this dataset is for; stored with the version.")]
Redact = Annotated[bool, Field(
    description="Replace PII (emails, phones, card numbers, SSNs, IPs, API keys/secrets, person names) with "
                "placeholders like <EMAIL_1> before storing. Default true; turn off only for non-sensitive data.")]
NewVersion = Annotated[bool, Field(
    description="Allow a new version when the name already exists with a DIFFERENT selection/sampling spec. "
                "Without it such a build is refused so a dataset's meaning never changes by accident.")]
CollapseNear = Annotated[bool, Field(
    description="Collapse near-identical requests (same words after lower-casing and ignoring digits, "
                "punctuation and spacing) into one record, keeping the newest trace.")]
FromLabels = Annotated[bool, Field(
    description="Copy the latest human label of each source trace into expectations (criterion -> value).")]
IncludeInProgress = Annotated[bool, Field(
    description="Also take traces still IN_PROGRESS (root span not yet received); skipped by default.")]
Offset = Annotated[int, Field(ge=0, description="Index of the first record to return (records are in a fixed order).")]
PageLimit = Annotated[int, Field(ge=1, le=200, description="Records per page (1-200).")]
MaxChars = Annotated[int, Field(ge=500, le=200_000,
                                description="Character budget for the page; long inputs/outputs are cut with a marker.")]
RecordIds = Annotated[list[str] | None, Field(
    max_length=10_000, description="Record ids (usually the source trace ids) to change; see get_dataset.")]
Expectations = Annotated[dict[str, Any] | None, Field(
    description="Ground truth to merge key by key, e.g. {'expected_response': 'Go to Settings > Security', "
                "'expected_facts': ['30-day returns', 'original packaging']} or any free-form keys.")]
RecordsArg = Annotated[list[dict[str, Any]], Field(
    min_length=1, max_length=10_000,
    description="Records to upsert. Each has record_id or trace_id (or only inputs for a hand-written case) and "
                "any of inputs, outputs, expectations. A trace_id not yet in the dataset adds that trace "
                "(its request/response are read from the store when inputs/outputs are omitted).")]
CreateIfMissing = Annotated[bool, Field(
    description="Start a new dataset (version 1) from these records when the name does not exist yet.")]
ExportFormat = Annotated[Literal["jsonl", "parquet", "mlflow"], Field(
    description="'jsonl' (one record per line; import_dataset reads it back), 'parquet', or 'mlflow' (an MLflow "
                "evaluation dataset in a local MLflow tracking store, for mlflow.genai.evaluate).")]


class SampleSpec(BaseModel):
    """How to sample the selected traces. Omit ``sample`` entirely to keep every selected trace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(ge=1, le=100_000, description="How many records to keep (all are kept if fewer match).")
    seed: int = Field(0, description="Random seed; the same seed and selection give the same sample.")
    stratify_by: list[str] = Field(
        default_factory=list, max_length=3,
        description="Dimensions to stratify on: status, model, environment, prompt_version, tool_path (the "
                    "sequence of tools called), span_path (span types in order), latency_tier (fast <p50, medium "
                    "<p90, slow), or tag:<key> (a tag's value). Empty = simple random sample.")
    allocation: Allocation = Field("proportional", description="'proportional' (strata keep their population "
                                                               "shares) or 'equal' (same count per stratum).")

    @field_validator("stratify_by")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("stratify_by lists a dimension twice; give each once")
        return value


SampleArg = Annotated[SampleSpec | None, Field(
    description="Sampling: {'n': 50, 'seed': 7, 'stratify_by': ['status', 'tool_path'], 'allocation': 'proportional'}. "
                "Omit to keep every selected trace.")]


class DatasetRecord(BaseModel):
    """One stored eval case."""

    record_id: str = Field(description="Stable key: the trace id for trace records, 'r-<hash>' for hand-written ones.")
    trace_id: str | None = Field(None, description="Source trace, if any.")
    inputs: Any = Field(description="The request (JSON); what predict_fn would receive.")
    outputs: Any = Field(None, description="The response already produced; judges score it without re-running.")
    expectations: dict[str, Any] = Field(default_factory=dict, description="Ground truth, e.g. expected_facts.")
    strata: dict[str, str] = Field(default_factory=dict, description="Dimension -> value, incl. 'stratum'.")
    selection_probability: float | None = Field(
        None, description="Probability sampling selected this record (1.0 = no sampling); null if added by hand.")
    redaction: dict[str, int] = Field(default_factory=dict, description="PII values replaced in it, by type.")


class DatasetVersion(BaseModel):
    """The header of one immutable version."""

    name: str
    version: int
    created_at_ms: int
    description: str | None = None
    spec: dict[str, Any] = Field(description="What produced it: origin, selection, sampling, redaction, …")
    content_hash: str = Field(description="sha256 over the records' content (order-independent).")
    record_count: int
    strata: list[StratumCount] = Field(default_factory=list)
    redaction: RedactionReport
    parent_version: int | None = Field(None, description="The version this one was derived from, if any.")


class DatasetSummary(BaseModel):
    name: str
    latest_version: int
    versions: list[int]
    record_count: int = Field(description="Records in the latest version.")
    created_at_ms: int = Field(description="When the latest version was written.")
    description: str | None = None


class Candidate(BaseModel):
    """A selected trace's stratification columns (payloads are fetched only for sampled traces)."""

    trace_id: str
    timestamp_ms: int
    status: str
    model: str | None = None
    environment: str | None = None
    prompt_version: str | None = None
    execution_time_ms: int | None = None
    tool_names: list[str] = Field(default_factory=list)
    span_types: list[str] = Field(default_factory=list, description="Distinct span types in start order.")
    tags: dict[str, str] = Field(default_factory=dict)
    request_head: str | None = Field(None, description="First ~2000 chars of the request, for near-dup checks.")


class DatasetStore(Protocol):
    """What the datasets feature needs from storage (``server.storage.duckdb.datasets_sql`` implements it)."""

    def tag_values(self) -> dict[str, list[str]]:
        """Every tag key with its distinct values (most frequent first, capped)."""

    def candidates(self, expr: Any, *, now_ms: int, trace_ids: Sequence[str] | None = None,
                   with_request: bool = False) -> list[Candidate]:
        """Traces matching ``expr`` (or exactly ``trace_ids``), one per trace id."""

    def payloads(self, trace_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """trace id -> (request, response) as stored."""

    def label_expectations(self, trace_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """trace id -> {criterion: latest human label value}."""

    def versions(self, name: str) -> list[DatasetVersion]:
        """All versions of ``name``, oldest first (empty if the name is unknown)."""

    def summaries(self) -> list[DatasetSummary]: ...

    def records(self, name: str, version: int, *, offset: int = 0, limit: int | None = None) -> list[DatasetRecord]:
        """Records of one version in their stored order."""

    def write_version(self, header: DatasetVersion, records: Sequence[DatasetRecord]) -> None:
        """Store a new version atomically; ConflictError if that (name, version) already exists."""

VersionA = Annotated[int | None, Field(ge=1, description="The older version to compare; omit for the one before b.")]
VersionB = Annotated[int | None, Field(ge=1, description="The newer version to compare; omit for the latest.")]
