"""MCP tools for versioned eval datasets: build, read, diff, edit (new versions), export, import.

Thin wrappers: each builds the typed input from flat parameters (descriptions come from the
``Annotated`` aliases in ``tools.datasets.models``), calls ``tools`` and returns its result.
Files are only written to / read from ``<store folder>/exports/`` (see ``datasets_export``).
"""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from server.exchange import datasets as datasets_export
from server.errors import surface_errors
from server.mcp.annotations import READ_ONLY, VERSIONED_WRITE
from server.storage.duckdb.datasets_sql import DuckDBDatasetStore
from server.storage.duckdb.store import DuckDBTraceStore
from tools import clock
from tools.datasets import merge as dataset_merge, builder
from tools.datasets import versions as dv
from tools.datasets.models import (CollapseNear, CreateIfMissing, DatasetFilter, DatasetName, Description,
                                  ExportFormat, Expectations, FromLabels, IncludeInProgress, MaxChars, NewVersion, Offset, PageLimit,
                                  RecordIds, RecordsArg, Redact, SampleArg, TagSelectors, Version, VersionA, VersionB)


ImportFile = Annotated[str, Field(
    min_length=1, max_length=255,
    description="File name inside the store's exports folder, e.g. 'golden@v1.jsonl' (as export_dataset wrote "
                "it). Other paths are refused; use the CLI to import from anywhere.")]
ImportNewVersion = Annotated[bool, Field(
    description="Allow importing into a name that was built another way (e.g. from tags); makes a new version.")]


def register(mcp: MCPServer, store: DuckDBTraceStore) -> None:
    """Add this feature's tools to ``mcp``."""
    ds = DuckDBDatasetStore(store)

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def build_dataset_from_tags(name: DatasetName, tags: TagSelectors = None, filter: DatasetFilter = None,
                                sample: SampleArg = None, redact: Redact = True, description: Description = None,
                                new_version: NewVersion = False, collapse_near_duplicates: CollapseNear = False,
                                expectations_from_labels: FromLabels = True,
                                include_in_progress: IncludeInProgress = False) -> builder.DatasetWriteResult:
        """Build a versioned eval dataset from tagged traces (and/or a search filter): one record per trace with
        inputs (the request), outputs (the response already produced, so judges score without re-running the
        agent), expectations (from human labels), trace_id, strata and selection probability.

        Use after tag_trace has marked candidates. A trace is selected if it has ANY of `tags`; `filter` narrows
        (or alone selects). Each trace appears once. `sample` draws n records, stratified and seeded; the result
        reports records per stratum, and each record keeps its selection probability for reweighting. PII is
        redacted by default (placeholders like <EMAIL_1>; counts by type in `redaction`). Traces still IN_PROGRESS
        (root span not received yet) are skipped and counted in `skipped_in_progress`.
        Versions are immutable. Same name + same definition: unchanged content returns the existing version
        (created=false), changed content (new traces tagged) makes version N+1, keeping expectations added to
        still-selected traces and hand-written records (traces merged in by hand that the selection does not match
        are dropped). Same name + different tags/filter/sample/redact: refused unless new_version=true.
        Examples:
          build_dataset_from_tags(name='error_cases', tags=['eval_candidate=error_case'])
          build_dataset_from_tags(name='support_mix', tags=['eval_candidate'], filter="tags.environment = 'production'",
                                  sample={'n': 100, 'seed': 7, 'stratify_by': ['status', 'tool_path']})
          build_dataset_from_tags(name='slow_errors',
                                  filter="attributes.status = 'ERROR' AND attributes.execution_time_ms > 5000")
        """
        return builder.build_dataset_from_tags(ds, builder.BuildDatasetInput(
            name=name, tags=tags, filter=filter, sample=sample, redact=redact, description=description,
            new_version=new_version, collapse_near_duplicates=collapse_near_duplicates,
            expectations_from_labels=expectations_from_labels, include_in_progress=include_in_progress),
            now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_datasets() -> builder.ListDatasetsResult:
        """List every eval dataset: name, latest version, all versions, record count, description.

        Use it to find dataset names for get_dataset, diff_datasets, export_dataset or run_judges
        (address a version as 'name@3'; the bare name is the latest).
        """
        return builder.list_datasets(ds)

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_dataset(name: DatasetName, version: Version = None, offset: Offset = 0, limit: PageLimit = 20,
                    max_chars: MaxChars = 12_000) -> builder.GetDatasetResult:
        """Read one dataset version: its header (spec, content hash, strata counts, redaction report) and a page
        of records in their fixed order (record_id, trace_id, inputs, outputs, expectations as JSON text, strata,
        selection probability).

        Long fields are cut to fit max_chars with a '…[truncated: N more chars; call get_dataset(...)]' marker
        naming the call that shows that record whole. If `next_offset` is set, call again with offset=next_offset.
        Examples: get_dataset(name='error_cases')  |  get_dataset(name='error_cases@2', offset=20, limit=20)
        """
        return builder.get_dataset(ds, builder.GetDatasetInput(name=name, version=version, offset=offset,
                                                                 limit=limit, max_chars=max_chars))

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def diff_datasets(name: DatasetName, a: VersionA = None, b: VersionB = None) -> dv.DiffDatasetsResult:
        """Compare two versions of a dataset: records added, removed and changed (which fields and which
        expectation keys), spec changes and per-stratum count changes. Lists are capped at 50 ids with totals.

        Defaults compare the latest version with the one before it.
        Examples: diff_datasets(name='error_cases')  |  diff_datasets(name='error_cases', a=1, b=3)
        """
        return builder.diff_datasets(ds, builder.DiffDatasetsInput(name=name, a=a, b=b))

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def merge_records(name: DatasetName, records: RecordsArg, redact: Redact = True,
                      create_if_missing: CreateIfMissing = False,
                      description: Description = None) -> builder.DatasetWriteResult:
        """Upsert records into a dataset as a NEW version (MLflow merge_records semantics): matched by record_id or
        trace_id (hand-written cases by their inputs); given inputs/outputs replace the old ones; expectations
        merge key by key (a null value removes that key). No record is lost; older versions stay readable.

        A trace_id not yet in the dataset adds that trace's request and response. Merging what is already there
        returns the latest version unchanged (created=false). New text is PII-redacted by default.
        Examples:
          merge_records(name='error_cases',
                        records=[{'trace_id': 'tr-9', 'expectations': {'expected_facts': ['refund issued']}}])
          merge_records(name='golden', create_if_missing=true,
                        records=[{'inputs': {'question': 'What is the return window?'},
                                  'expectations': {'expected_response': '30 days'}}])
        """
        return dataset_merge.merge_records(ds, dataset_merge.MergeRecordsInput(
            name=name, records=records, redact=redact, create_if_missing=create_if_missing,
            description=description), now_ms=clock.now_ms())

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def set_expectations(name: DatasetName, record_ids: RecordIds = None, expectations: Expectations = None,
                         from_labels: FromLabels = False, redact: Redact = True) -> builder.DatasetWriteResult:
        """Attach ground truth to records of the latest version, writing a new version: explicit expectations
        (expected_facts, expected_response or free-form keys) on the given record_ids, and/or from_labels=true to
        copy each record's trace's latest human labels (criterion -> value; all records if record_ids is omitted).

        Existing expectation keys not mentioned are kept. Unknown record ids are refused and nothing is written.
        Examples:
          set_expectations(name='error_cases', record_ids=['tr-1'], expectations={'expected_response': 'Refund issued.'})
          set_expectations(name='error_cases', from_labels=true)
        """
        return dataset_merge.set_expectations(ds, dataset_merge.SetExpectationsInput(
            name=name, record_ids=record_ids, expectations=expectations, from_labels=from_labels, redact=redact),
            now_ms=clock.now_ms())

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def export_dataset(name: DatasetName, version: Version = None,
                       format: ExportFormat = "jsonl") -> datasets_export.ExportResult:
        """Export a dataset version to a file in the store's exports folder and return its path: JSONL (re-importable
        with import_dataset), Parquet, or an MLflow evaluation dataset (format='mlflow': written to a local MLflow
        SQLite tracking store there; returns tracking_uri and mlflow_dataset_id for mlflow.genai.evaluate).

        Versions are immutable, so exporting again rewrites the same content. For other destinations use the CLI
        (tracesieve dataset export NAME --out PATH | --tracking-uri URI).
        Examples: export_dataset(name='error_cases')  |  export_dataset(name='error_cases', version=2, format='mlflow')
        """
        return datasets_export.export_dataset(ds, name, version, format)

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def import_dataset(name: DatasetName, file: ImportFile, redact: Redact = True,
                       new_version: ImportNewVersion = False,
                       description: Description = None) -> builder.DatasetWriteResult:
        """Create a dataset version from a JSONL file in the store's exports folder (one record object per line
        with inputs and optionally record_id, trace_id, outputs, expectations, strata, selection_probability).

        Re-importing the same content returns the existing version; a changed file makes a new version. Records
        are PII-redacted unless redact=false. Example: import_dataset(name='golden_copy', file='golden@v1.jsonl')
        """
        path = datasets_export.confined_path(ds, file)
        return datasets_export.import_dataset(ds, name, path, redact=redact, new_version=new_version,
                                              description=description, now_ms=clock.now_ms())
