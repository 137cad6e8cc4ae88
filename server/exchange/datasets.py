"""Dataset export (JSONL, Parquet, MLflow evaluation dataset) and JSONL import.

Where files may go: the CLI writes wherever its user says. The MCP tools, which a model drives,
only write and read inside ``<store folder>/exports/`` (file names derived from the dataset
name and version, which are validated), so a prompt-injected trace cannot make the server
overwrite or read arbitrary files. The MLflow export from MCP likewise uses a fixed local
SQLite tracking store in that folder; the CLI accepts any tracking URI.

JSONL is one record per line with the fields of ``DatasetRecord``; importing an exported file
recreates the same records (and so the same content hash).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from server.exchange.folder import confined_to
from tools.datasets import versions as dv
from tools.datasets.merge import import_records
from tools.datasets.models import DatasetRecord, DatasetStore, DatasetVersion
from tools.datasets.builder import DatasetWriteResult
from tools.errors import ConflictError, InvalidInputError, NotFoundError
from tools.privacy.outputs import redact_records

Format = Literal["jsonl", "parquet", "mlflow"]
_EXT = {"jsonl": "jsonl", "parquet": "parquet", "mlflow": "db"}
_MLFLOW_LOCK = threading.Lock()  # mlflow's tracking URI is process-global
MLFLOW_EXPERIMENT = "tracesieve-datasets"


class ExportingStore(DatasetStore, Protocol):
    """A dataset store with the one folder MCP exports and imports may use (each engine says where)."""

    @property
    def exports_dir(self) -> Path: ...


class ExportResult(BaseModel):
    name: str
    version: int
    format: str
    record_count: int
    path: str | None = Field(None, description="The file written (jsonl/parquet), or the MLflow SQLite file.")
    bytes: int | None = None
    tracking_uri: str | None = Field(None, description="MLflow tracking URI holding the dataset (format 'mlflow').")
    mlflow_dataset_id: str | None = Field(None, description="Use with mlflow.genai.datasets.get_dataset(dataset_id=…).")
    mlflow_dataset_name: str | None = None
    mlflow_record_count: int | None = Field(None, description="Records MLflow holds after the merge (read back).")
    notes: list[str] = Field(default_factory=list)


def record_dict(r: DatasetRecord) -> dict[str, Any]:
    return r.model_dump()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_jsonl(records: list[DatasetRecord], path: Path) -> int:
    data = "".join(json.dumps(record_dict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode()
    _atomic_write(path, data)
    return len(data)


def write_parquet(records: list[DatasetRecord], path: Path) -> int:
    """JSON-valued columns are stored as JSON text: Parquet needs one type per column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"record_id": r.record_id, "trace_id": r.trace_id, "inputs": dv.canonical(r.inputs),
             "outputs": dv.canonical(r.outputs), "expectations": dv.canonical(r.expectations),
             "strata": dv.canonical(r.strata), "selection_probability": r.selection_probability,
             "redaction": dv.canonical(r.redaction)} for r in records]
    schema = pa.schema([("record_id", pa.string()), ("trace_id", pa.string()), ("inputs", pa.string()),
                        ("outputs", pa.string()), ("expectations", pa.string()), ("strata", pa.string()),
                        ("selection_probability", pa.float64()), ("redaction", pa.string())])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    os.replace(tmp, path)
    return path.stat().st_size


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise NotFoundError(f"No file '{path}'. Give the path of a JSONL file written by export_dataset.")
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as error:
                raise InvalidInputError(f"{path.name} line {number} is not valid JSON ({error.msg}). Each line must "
                                        "be one record object. Nothing was written.") from error
    return rows


def mlflow_records(records: list[DatasetRecord]) -> list[dict[str, Any]]:
    """Records in the shape ``EvaluationDataset.merge_records`` takes, with their trace as the source."""
    out = []
    for r in records:
        tags = {"tracesieve.record_id": r.record_id, **{f"tracesieve.strata.{k}": v for k, v in r.strata.items()}}
        if r.trace_id:
            tags["tracesieve.trace_id"] = r.trace_id
        if r.selection_probability is not None:
            tags["tracesieve.selection_probability"] = repr(r.selection_probability)
        source = ({"source_type": "TRACE", "source_data": {"trace_id": r.trace_id}} if r.trace_id
                  else {"source_type": "HUMAN", "source_data": {}})
        out.append({"inputs": r.inputs, "outputs": r.outputs, "expectations": r.expectations or None,
                    "tags": tags, "source": source})
    return out


def export_mlflow(header: DatasetVersion, records: list[DatasetRecord], tracking_uri: str) -> ExportResult:
    """Create (or find) the MLflow evaluation dataset ``<name>_v<version>`` and merge the records."""
    from mlflow import MlflowClient
    from mlflow.genai import datasets as genai_datasets
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    ds_name = f"{header.name}_v{header.version}"
    notes: list[str] = []
    with _MLFLOW_LOCK, _use_tracking_uri(tracking_uri):
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(MLFLOW_EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(MLFLOW_EXPERIMENT)
        found = genai_datasets.search_datasets(experiment_ids=[experiment_id], filter_string=f'name = "{ds_name}"',
                                               max_results=5)
        if found:
            dataset = found[0]
            if (dataset.tags or {}).get("tracesieve.content_hash") != header.content_hash:
                raise ConflictError(
                    f"MLflow at '{tracking_uri}' already has a dataset '{ds_name}' with other content. Export to "
                    "another tracking store, or delete that MLflow dataset first.")
            notes.append(f"'{ds_name}' already existed in MLflow with the same content; nothing was re-sent.")
        else:
            dataset = genai_datasets.create_dataset(
                name=ds_name, experiment_id=experiment_id,
                tags={"tracesieve.name": header.name, "tracesieve.version": str(header.version),
                      "tracesieve.content_hash": header.content_hash})
            dataset.merge_records(mlflow_records(records))
        read_back = len(genai_datasets.get_dataset(dataset_id=dataset.dataset_id).to_df())
    if read_back < len(records):
        notes.append(f"MLflow holds {read_back} records for our {len(records)}: it keys records by their inputs, so "
                     "records with identical inputs were merged. Build with collapse_near_duplicates=true to avoid this.")
    return ExportResult(name=header.name, version=header.version, format="mlflow", record_count=len(records),
                        tracking_uri=tracking_uri, mlflow_dataset_id=dataset.dataset_id, mlflow_dataset_name=ds_name,
                        mlflow_record_count=read_back, notes=notes)


def default_export_path(store: ExportingStore, header: DatasetVersion, fmt: Format) -> Path:
    if fmt == "mlflow":
        return store.exports_dir / "mlflow.db"
    return store.exports_dir / f"{header.name}@v{header.version}.{_EXT[fmt]}"


def export_dataset(store: ExportingStore, name: str, version: int | None, fmt: Format, *,
                   path: Path | None = None, tracking_uri: str | None = None) -> ExportResult:
    """Export ``name@version``; without ``path``/``tracking_uri`` everything goes under the exports folder."""
    header = dv.resolve(store, name, version)
    records, notes = _redacted_for_export(header, store.records(header.name, header.version))
    if fmt == "mlflow":
        if tracking_uri is None:
            db = path or default_export_path(store, header, fmt)
            db.parent.mkdir(parents=True, exist_ok=True)
            tracking_uri = f"sqlite:///{db.resolve()}"
        result = export_mlflow(header, records, tracking_uri)
        if tracking_uri.startswith("sqlite:///"):
            result.path = tracking_uri.removeprefix("sqlite:///")
        result.notes += notes
        return result
    target = path or default_export_path(store, header, fmt)
    size = write_jsonl(records, target) if fmt == "jsonl" else write_parquet(records, target)
    return ExportResult(name=header.name, version=header.version, format=fmt, record_count=len(records),
                        path=str(target), bytes=size, notes=notes)


def _redacted_for_export(header: DatasetVersion, records: list[DatasetRecord]) -> tuple[list[DatasetRecord], list[str]]:
    """A version built with redact=false still leaves the store redacted; a redacted one is as stored
    (so an exported file re-imports to the same content hash)."""
    if header.spec.get("redact", True):
        return records, []
    clean, counts = redact_records([r.model_dump() for r in records])
    out = [r.model_copy(update={k: c[k] for k in ("inputs", "outputs", "expectations")}) for r, c in zip(records, clean)]
    said = ", ".join(f"{n} {t}" for t, n in counts.items()) or "nothing found"
    return out, [f"This version was built with redact=false; its records were PII-redacted on export ({said})."]


def confined_path(store: ExportingStore, file: str) -> Path:
    """``file`` inside the exports folder, or an error: the MCP import may read nothing else."""
    return confined_to(store.exports_dir, file, example="golden@v1.jsonl",
                       cli_alternative="tracesieve dataset import NAME PATH")


def import_dataset(store: ExportingStore, name: str, path: Path, *, redact: bool, new_version: bool,
                   description: str | None, now_ms: int) -> DatasetWriteResult:
    rows = read_jsonl(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return import_records(store, name=name, rows=rows, source={"format": "jsonl", "file": path.name, "sha256": digest},
                          redact=redact, new_version=new_version, description=description, now_ms=now_ms)
