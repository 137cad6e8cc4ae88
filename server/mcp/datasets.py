"""MCP tools for versioned eval datasets: build, read, diff, edit (new versions), export, import.

Thin wrappers: each builds the typed input from flat parameters (descriptions come from the
``Annotated`` aliases in ``tools.datasets.models``), calls ``tools`` and returns its result.
Files are only written to / read from ``<store folder>/exports/`` (see ``datasets_export``).
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server import MCPServer
from pydantic import Field

from server.exchange import datasets as datasets_export
from server.errors import surface_errors
from server.mcp.annotations import READ_ONLY, VERSIONED_WRITE
from server.storage.backend import Backend
from tools import clock
from tools.datasets import merge as dataset_merge, builder
from tools.datasets import versions as dv
from tools.datasets.empty_records import SkipEmpty
from tools.datasets.models import (CollapseNear, CreateIfMissing, DatasetFilter, DatasetName, Description,
                                  ExportFormat, Expectations, FromLabels, IncludeInProgress, MaxChars, NewVersion,
                                  Offset, PageLimit, RecordIds, RecordsArg, Redact, TagSelectors, Version, VersionA,
                                  VersionB)


# Shorter wordings of the tools' aliases for arguments that recur across these tools: a host pays for
# every repetition on every turn. Validation is unchanged: the tools' input models still apply theirs.
DatasetName = Annotated[str, Field(min_length=1, max_length=110, description=(  # noqa: F811
    "Dataset name, e.g. 'checkout_errors'; 'name@3' is version 3, the bare name the latest."))]
Redact = Annotated[bool, Field(description="Replace PII with placeholders like <EMAIL_1> (default true).")]  # noqa: F811

ImportFile = Annotated[str, Field(
    min_length=1, max_length=255,
    description="File name inside the store's exports folder, e.g. 'golden@v1.jsonl' (as export_dataset wrote "
                "it). Other paths are refused; use the CLI to import from anywhere.")]
ImportNewVersion = Annotated[bool, Field(
    description="Allow importing into a name that was built another way (e.g. from tags); makes a new version.")]


#: ``sample`` is a plain object in the tool's schema, validated into ``SampleSpec`` by the input model:
#: the nested schema cost ~240 tokens of definitions on every turn; this description lists every key.
SampleObject = Annotated[dict[str, Any] | None, Field(description=(
    "Sampling, e.g. {'n': 100, 'seed': 7, 'stratify_by': ['status', 'tool_path'], 'allocation': 'equal'}: n records "
    "(required); seed (same seed, same sample); stratify_by up to 3 of status, model, environment, prompt_version, "
    "tool_path, span_path, latency_tier, tag:<key>; allocation 'proportional' (default) or 'equal'. Omit to keep "
    "every selected trace."))]


def register(mcp: MCPServer, backend: Backend) -> None:
    """Add this feature's tools to ``mcp``."""
    ds = backend.require_features("datasets", "datasets").datasets

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def build_dataset_from_tags(name: DatasetName, tags: TagSelectors = None, filter: DatasetFilter = None,
                                sample: SampleObject = None, redact: Redact = True, description: Description = None,
                                new_version: NewVersion = False, collapse_near_duplicates: CollapseNear = False,
                                expectations_from_labels: FromLabels = True,
                                skip_empty: SkipEmpty = False,
                                include_in_progress: IncludeInProgress = False) -> builder.DatasetWriteResult:
        """Build a versioned eval dataset from tagged traces (and/or a filter): one record per trace with
        inputs (request), outputs (response), expectations (from labels), strata and selection probability.

        A trace with ANY of `tags` is selected; `filter` narrows (or alone selects); `sample` draws n, stratified
        and seeded. PII is redacted by default; IN_PROGRESS traces are skipped and counted. The same definition
        returns the existing version (created=false) or, if the selection changed, version N+1; a different
        definition needs new_version=true.
        Example: build_dataset_from_tags(name='error_cases', tags=['eval_candidate=error_case'])
        """
        return builder.build_dataset_from_tags(ds, builder.BuildDatasetInput(
            name=name, tags=tags, filter=filter, sample=sample, redact=redact, description=description,
            new_version=new_version, collapse_near_duplicates=collapse_near_duplicates,
            expectations_from_labels=expectations_from_labels, skip_empty=skip_empty,
            include_in_progress=include_in_progress), now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_datasets() -> builder.ListDatasetsResult:
        """List every eval dataset: name, latest version, versions, record count, description.

        Address a version as 'name@3' in get_dataset, diff_datasets, export_dataset or run_judges.
        """
        return builder.list_datasets(ds)

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_dataset(name: DatasetName, version: Version = None, offset: Offset = 0, limit: PageLimit = 20,
                    max_chars: MaxChars = 12_000) -> builder.GetDatasetResult:
        """Read one dataset version: header (spec, hash, strata, redaction) and a page of records. Long
        fields are cut to max_chars with a marker naming the call that shows the record whole; continue with
        offset=next_offset. Example: get_dataset(name='error_cases@2', offset=20)
        """
        return builder.get_dataset(ds, builder.GetDatasetInput(name=name, version=version, offset=offset,
                                                                 limit=limit, max_chars=max_chars))

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def diff_datasets(name: DatasetName, a: VersionA = None, b: VersionB = None) -> dv.DiffDatasetsResult:
        """Compare two versions of a dataset: records added, removed and changed (fields, expectation keys),
        spec and per-stratum changes; lists capped at 50 ids. Default: latest vs the one before.
        Example: diff_datasets(name='error_cases', a=1, b=3)
        """
        return builder.diff_datasets(ds, builder.DiffDatasetsInput(name=name, a=a, b=b))

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def merge_records(name: DatasetName, records: RecordsArg, redact: Redact = True,
                      create_if_missing: CreateIfMissing = False,
                      description: Description = None) -> builder.DatasetWriteResult:
        """Upsert records into a dataset as a NEW version, matched by record_id or trace_id (hand-written
        cases by inputs): inputs/outputs replace, expectations merge key by key (null removes a key); a new trace_id
        adds that trace's request and response. Example: merge_records(name='error_cases',
        records=[{'trace_id': 'tr-9', 'expectations': {'expected_facts': ['refund issued']}}])
        """
        return dataset_merge.merge_records(ds, dataset_merge.MergeRecordsInput(
            name=name, records=records, redact=redact, create_if_missing=create_if_missing,
            description=description), now_ms=clock.now_ms())

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def set_expectations(name: DatasetName, record_ids: RecordIds = None, expectations: Expectations = None,
                         from_labels: FromLabels = False, redact: Redact = True) -> builder.DatasetWriteResult:
        """Attach ground truth to records of the latest version, as a new version: expectations on
        record_ids, and/or from_labels=true to copy each trace's latest labels. Unknown record ids: nothing written.
        Example: set_expectations(name='error_cases', record_ids=['tr-1'], expectations={'expected_response': 'Refunded.'})
        """
        return dataset_merge.set_expectations(ds, dataset_merge.SetExpectationsInput(
            name=name, record_ids=record_ids, expectations=expectations, from_labels=from_labels, redact=redact),
            now_ms=clock.now_ms())

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def export_dataset(name: DatasetName, version: Version = None,
                       format: ExportFormat = "jsonl") -> datasets_export.ExportResult:
        """Export a dataset version into the store's exports folder: JSONL (re-importable), Parquet, or
        format='mlflow' (a local MLflow evaluation dataset; returns tracking_uri and mlflow_dataset_id).
        Example: export_dataset(name='error_cases', version=2, format='mlflow')
        """
        return datasets_export.export_dataset(ds, name, version, format)

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def import_dataset(name: DatasetName, file: ImportFile, redact: Redact = True,
                       new_version: ImportNewVersion = False,
                       description: Description = None) -> builder.DatasetWriteResult:
        """Create a dataset version from a JSONL file in the store's exports folder (one record per line:
        inputs, optionally record_id, trace_id, outputs, expectations, strata). Same content returns the existing version.
        Example: import_dataset(name='golden_copy', file='golden@v1.jsonl')
        """
        path = datasets_export.confined_path(ds, file)
        return datasets_export.import_dataset(ds, name, path, redact=redact, new_version=new_version,
                                              description=description, now_ms=clock.now_ms())
