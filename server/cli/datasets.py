"""``tracesieve dataset build|list|show|diff|export|import``: the dataset tools as commands.

Each command builds the same input model the MCP tool builds, so validation and errors match.
Unlike the MCP tools, ``export`` and ``import`` take any path (the person at the shell owns it).
"""

from __future__ import annotations

from pathlib import Path

import click

from server.exchange import datasets as datasets_export
from server.cli.common import echo_result, open_backend, store_option
from server.errors import cli_errors
from server.exchange.datasets import ExportingStore
from server.storage.factory import StoreUrl
from tools.datasets import builder
from tools.clock import now_ms
from tools.datasets.models import SampleSpec


def _store(db: StoreUrl) -> ExportingStore:
    """The dataset store of ``--store``/``--db`` (any engine that holds datasets)."""
    return open_backend(db).require_features("Datasets", "datasets").datasets


@click.group("dataset")
def dataset() -> None:
    """Versioned eval datasets built from tagged traces.

    Example:

        tracesieve dataset build error_cases --tag eval_candidate=error_case --n 50 --stratify-by status
        tracesieve dataset show error_cases@1 --limit 5
    """


@dataset.command("build")
@store_option
@click.argument("name")
@click.option("--tag", "tags", multiple=True, help="'key' or 'key=value' (repeatable; a trace with ANY is selected).")
@click.option("--filter", "filter_", default=None, help="Search filter that narrows (or alone selects) traces.")
@click.option("--n", type=click.IntRange(1, 100_000), default=None, help="Sample this many records.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--stratify-by", multiple=True, help="status, model, environment, prompt_version, tool_path, "
                                                   "span_path, latency_tier or tag:<key> (repeatable).")
@click.option("--allocation", type=click.Choice(["proportional", "equal"]), default="proportional", show_default=True)
@click.option("--no-redact", is_flag=True, help="Store text as is (default: PII is replaced by placeholders).")
@click.option("--description", default=None, help="What the dataset is for.")
@click.option("--new-version", is_flag=True, help="Allow a new version with a different definition under NAME.")
@click.option("--collapse-near-duplicates", is_flag=True, help="Fold near-identical requests into one record.")
@click.option("--no-labels", is_flag=True, help="Do not copy human labels into expectations.")
@click.option("--skip-empty", is_flag=True, help="Leave out records whose inputs or outputs are empty.")
def build_cmd(db: StoreUrl, name: str, tags: tuple[str, ...], filter_: str | None, n: int | None, seed: int,
              stratify_by: tuple[str, ...], allocation: str, no_redact: bool, description: str | None,
              new_version: bool, collapse_near_duplicates: bool, no_labels: bool, skip_empty: bool) -> None:
    """Build (or find unchanged) a dataset version from tagged traces.

    Example:

        tracesieve dataset build support_mix --tag eval_candidate --n 100 --seed 7 --stratify-by tool_path
    """
    with cli_errors():
        if (stratify_by or allocation != "proportional") and n is None:
            raise click.UsageError("--stratify-by and --allocation need --n (how many records to sample).")
        sample = SampleSpec(n=n, seed=seed, stratify_by=list(stratify_by), allocation=allocation) if n else None
        inp = builder.BuildDatasetInput(
            name=name, tags=list(tags) or None, filter=filter_, sample=sample, redact=not no_redact,
            description=description, new_version=new_version, collapse_near_duplicates=collapse_near_duplicates,
            expectations_from_labels=not no_labels, skip_empty=skip_empty)
        echo_result(builder.build_dataset_from_tags(_store(db), inp, now_ms=now_ms()))


@dataset.command("list")
@store_option
def list_cmd(db: StoreUrl) -> None:
    """List datasets with their versions.

    Example:

        tracesieve dataset list
    """
    with cli_errors():
        echo_result(builder.list_datasets(_store(db)))


@dataset.command("show")
@store_option
@click.argument("name")
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--max-chars", type=click.IntRange(500, 200_000), default=12_000, show_default=True)
def show_cmd(db: StoreUrl, name: str, offset: int, limit: int, max_chars: int) -> None:
    """Print one version's header and a page of records (NAME or NAME@VERSION).

    Example:

        tracesieve dataset show error_cases@2 --offset 20 --limit 20
    """
    with cli_errors():
        inp = builder.GetDatasetInput(name=name, offset=offset, limit=limit, max_chars=max_chars)
        echo_result(builder.get_dataset(_store(db), inp))


@dataset.command("diff")
@store_option
@click.argument("name")
@click.option("--a", "a", type=click.IntRange(1), default=None, help="Older version (default: the one before b).")
@click.option("--b", "b", type=click.IntRange(1), default=None, help="Newer version (default: latest).")
def diff_cmd(db: StoreUrl, name: str, a: int | None, b: int | None) -> None:
    """Compare two versions of a dataset.

    Example:

        tracesieve dataset diff error_cases --a 1 --b 3
    """
    with cli_errors():
        echo_result(builder.diff_datasets(_store(db), builder.DiffDatasetsInput(name=name, a=a, b=b)))


@dataset.command("export")
@store_option
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet", "mlflow"]), default="jsonl", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: <store folder>/exports/NAME@vN.EXT; for mlflow, the SQLite file).")
@click.option("--tracking-uri", default=None, help="With --format mlflow: any MLflow tracking URI.")
def export_cmd(db: StoreUrl, name: str, fmt: str, out: Path | None, tracking_uri: str | None) -> None:
    """Export NAME[@VERSION] as JSONL, Parquet or an MLflow evaluation dataset.

    Example:

        tracesieve dataset export error_cases@2 --format jsonl --out error_cases.jsonl
        tracesieve dataset export error_cases --format mlflow --tracking-uri sqlite:///mlflow.db
    """
    with cli_errors():
        echo_result(datasets_export.export_dataset(_store(db), name, None, fmt, path=out,  # type: ignore[arg-type]
                                                   tracking_uri=tracking_uri))


@dataset.command("import")
@store_option
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-redact", is_flag=True, help="Store the file's text as is.")
@click.option("--new-version", is_flag=True, help="Allow importing into a name that was built another way.")
@click.option("--description", default=None)
def import_cmd(db: StoreUrl, name: str, path: Path, no_redact: bool, new_version: bool, description: str | None) -> None:
    """Create a dataset version from a JSONL file (one record per line).

    Example:

        tracesieve dataset import golden golden.jsonl
    """
    with cli_errors():
        echo_result(datasets_export.import_dataset(_store(db), name, path, redact=not no_redact,
                                                   new_version=new_version, description=description,
                                                   now_ms=now_ms()))


COMMANDS: list[click.Command] = [dataset]
