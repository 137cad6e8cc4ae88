"""CLI commands for labels, the annotation queue, calibration, run comparison and the CI gate.

``gate`` is for CI: it prints the comparison as markdown (or JSON) and exits 0 when the
candidate is fine, 1 on a regression and 2 when it cannot decide (too few items, no calibrated
judge, judge errors, or a bad argument such as an unknown run), so a pipeline can tell "blocked
by a regression" from "the check itself needs attention".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import click

from server.cli.common import db_option, echo_result, open_backend, store_option, table_option
from server.errors import cli_errors, describe_validation_error
from server.storage.duckdb.calibration_sql import DuckDBCalibrationStore
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.urls import StoreUrl
from tools.labels import annotation_queue as aq
from tools.calibration import agreement as cal
from tools.labels import labelling as labels
from tools.calibration import regression
from tools.calibration.render import render_calibration, render_compare, render_queue
from tools.clock import now_ms

reviewer_option = click.option("--reviewer", envvar="TRACESIEVE_REVIEWER", default=None,
                               help="Who decided (env TRACESIEVE_REVIEWER), e.g. an email.")


def _labels(url: StoreUrl) -> labels.ImportStore:
    """The store's labels: the DuckDB file's, or a ClickHouse store's (corrections locked in its control plane)."""
    return open_backend(url).require_features("Labels", "labels").labels  # type: ignore[return-value]


@click.command("label")
@store_option
@click.argument("trace_id")
@click.argument("criterion")
@click.argument("value")
@reviewer_option
@click.option("--rationale", default=None, help="Why, in a sentence.")
def label_cmd(db: StoreUrl, trace_id: str, criterion: str, value: str, reviewer: str | None,
              rationale: str | None) -> None:
    """Record a human label VALUE (pass/fail or a number) for TRACE_ID on CRITERION.

    Labels are append-only: labelling again supersedes the earlier label, which stays in the history.

    Example:

        tracesieve label tr-9f2c citation_grounded fail --reviewer ana --rationale "cites a doc it never retrieved"
    """
    with cli_errors():
        if not reviewer:
            raise click.UsageError("Give --reviewer (or set TRACESIEVE_REVIEWER): labels are attributed.")
        inp = labels.LabelTraceInput(trace_id=trace_id, criterion=criterion, value=value, reviewer=reviewer,
                                     rationale=rationale)
        echo_result(labels.label_trace(_labels(db), inp, source="cli", now_ms=now_ms()))


@click.group("labels")
def labels_group() -> None:
    """List human labels or import them from CSV, JSONL, Langfuse or MLflow files.

    Example:

    \b
        tracesieve labels list --criterion citation_grounded
        tracesieve labels import labels.csv --reviewer ana
    """


@labels_group.command("list")
@store_option
@click.option("--criterion", default=None, help="Only this criterion.")
@click.option("--trace-id", "trace_ids", multiple=True, help="Only these traces (repeatable).")
@click.option("--reviewer", default=None, help="Only this reviewer.")
@click.option("--history", is_flag=True, help="Include superseded labels.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--page-token", default=None, help="next_page_token of the previous page.")
def labels_list_cmd(db: StoreUrl, criterion: str | None, trace_ids: tuple[str, ...], reviewer: str | None, history: bool,
                    limit: int, page_token: str | None) -> None:
    """Current labels newest first (all rows with --history), with per-criterion counts.

    Example:

        tracesieve labels list --criterion citation_grounded --history
    """
    with cli_errors():
        inp = labels.ListLabelsInput(criterion=criterion, trace_ids=list(trace_ids) or None, reviewer=reviewer,
                                     include_history=history, limit=limit, page_token=page_token)
        echo_result(labels.list_labels(_labels(db), inp))


@labels_group.command("import")
@store_option
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "jsonl", "langfuse", "mlflow"]), default="auto",
              show_default=True, help="auto: .csv/.jsonl by extension, otherwise a Langfuse/MLflow trace export.")
@reviewer_option
def labels_import_cmd(db: StoreUrl, file: Path, fmt: str, reviewer: str | None) -> None:
    """Import labels from FILE; a bad row means nothing is written. Re-importing skips identical rows.

    CSV/JSONL columns: trace_id, criterion, value, reviewer, rationale, created_at (ms or ISO 8601).

    Example:

        tracesieve labels import week46.csv --reviewer ana
    """
    from server.exchange.labels import read_label_file

    with cli_errors():
        rows, source, strict = read_label_file(file, fmt)  # type: ignore[arg-type]
        echo_result(labels.import_labels(_labels(db), rows, source=source,
                                         default_reviewer=reviewer, strict_values=strict, now_ms=now_ms()))


@click.command("queue")
@store_option
@click.argument("criterion")
@click.option("--filter", "filter_", default="", help="search_traces filter restricting candidates.")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--random-share", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="Share drawn uniformly at random (keeps estimates unbiased).")
@click.option("--signal", "signals", multiple=True, type=click.Choice(aq.SIGNALS), help="Only these signals.")
@click.option("--seed", type=int, default=None, help="Seed of the random share.")
@table_option
def queue_cmd(db: StoreUrl, criterion: str, filter_: str, limit: int, random_share: float, signals: tuple[str, ...],
              seed: int | None, as_table: bool) -> None:
    """Which unlabelled traces to label next for CRITERION, with the anomaly reasons.

    Example:

        tracesieve queue citation_grounded --limit 20 --filter "tags.environment = 'production'" --table
    """
    with cli_errors():
        inp = aq.AnnotationQueueInput(criterion=criterion, filter=filter_, limit=limit, random_share=random_share,
                                      signals=list(signals) or None, seed=seed)
        result = aq.annotation_queue(
            open_backend(db).require_features("The annotation queue", "queue").queue, inp, now_ms=now_ms())
    click.echo(render_queue(result)) if as_table else echo_result(result)


@click.command("calibrate")
@db_option
@click.argument("judge")
@click.option("--criterion", default=None, help="Label criterion (default: the judge's own).")
@click.option("--run", "run_id", default=None, help="Use this run's verdicts.")
@click.option("--judge-version", default=None, help="Only this judge version.")
@click.option("--gate", "gate_threshold", type=float, default=0.6, show_default=True, help="MCC to gate.")
@click.option("--signal", "signal_threshold", type=float, default=0.4, show_default=True, help="MCC for 'signal'.")
@click.option("--min-labels", type=int, default=10, show_default=True)
@click.option("--min-per-class", type=int, default=5, show_default=True, help="Human labels of each class needed.")
@click.option("--gate-on", type=click.Choice(["point", "lower_bound"]), default="point", show_default=True,
              help="Judge by the MCC point estimate or by the lower bound of its 95% interval.")
@click.option("--resamples", type=int, default=2000, show_default=True)
@click.option("--window", type=click.Choice(["day", "week", "month", "none"]), default="week", show_default=True)
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the plot here.")
@table_option
def calibrate_cmd(db: Path, judge: str, criterion: str | None, run_id: str | None, judge_version: str | None,
                  gate_threshold: float, signal_threshold: float, min_labels: int, min_per_class: int, gate_on: str,
                  resamples: int, window: str, png: Path | None, as_table: bool) -> None:
    """How well JUDGE agrees with human labels (MCC, kappa, CIs) and whether it may gate releases.

    Example:

        tracesieve calibrate grounded_citations --table --png calibration.png
    """
    with cli_errors():
        calib = DuckDBCalibrationStore(DuckDBTraceStore(db))
        inp = cal.CalibrationReportInput(judge=judge, criterion=criterion, run_id=run_id, judge_version=judge_version,
                                         gate_threshold=gate_threshold, signal_threshold=signal_threshold,
                                         min_labels=min_labels, min_per_class=min_per_class, gate_on=gate_on,
                                         resamples=resamples, window=window)  # type: ignore
        with calib.session():
            result = cal.calibration_report(calib, inp, now_ms=now_ms())
        if png is not None:
            from server.plots import calibration_png

            png.write_bytes(calibration_png(result))
    click.echo(render_calibration(result)) if as_table else echo_result(result)


def _compare_options(fn):  # type: ignore[no-untyped-def]
    for option in reversed((
        click.option("--alpha", type=float, default=0.05, show_default=True, help="Significance after Holm."),
        click.option("--min-delta", type=float, default=0.0, show_default=True,
                     help="Smallest pass-rate drop that counts (0.02 = two points)."),
        click.option("--judge", "--judges", "judges", multiple=True,
                     help="Only these judges (repeatable or comma-separated); for dataset sides, the judges to run."),
        click.option("--slice-by", multiple=True, help="model, environment, prompt_version, tag:<key>, … "
                                                       "(repeatable; default model, environment)."),
        click.option("--allow-uncalibrated", is_flag=True, help="Let uncalibrated judges gate too."),
        click.option("--min-items", type=int, default=20, show_default=True, help="Items a judge needs to decide."),
    )):
        fn = option(fn)
    return fn


def _compare_input(baseline: str, candidate: str, alpha: float, min_delta: float, judges: tuple[str, ...],
                   slice_by: tuple[str, ...], allow_uncalibrated: bool, min_items: int) -> regression.CompareRunsInput:
    names = [n.strip() for j in judges for n in j.split(",") if n.strip()]
    return regression.CompareRunsInput(baseline_run=baseline, candidate_run=candidate, alpha=alpha,
                                       min_delta=min_delta, judges=names or None,
                                       slice_by=list(slice_by) or None, allow_uncalibrated=allow_uncalibrated,
                                       min_items=min_items)


@click.command("compare")
@db_option
@click.argument("baseline_run")
@click.argument("candidate_run")
@_compare_options
@table_option
def compare_cmd(db: Path, baseline_run: str, candidate_run: str, alpha: float, min_delta: float,
                judges: tuple[str, ...], slice_by: tuple[str, ...], allow_uncalibrated: bool, min_items: int,
                as_table: bool) -> None:
    """Compare two judge runs (compare_runs): deltas, McNemar, Holm, slices, flipped items.

    Example:

        tracesieve compare run-a1b2 run-c3d4 --min-delta 0.02 --table
    """
    with cli_errors():
        inp = _compare_input(baseline_run, candidate_run, alpha, min_delta, judges, slice_by, allow_uncalibrated,
                             min_items)
        result = regression.compare_runs(DuckDBCalibrationStore(DuckDBTraceStore(db)), inp)
    click.echo(render_compare(result)) if as_table else echo_result(result)


def _run_side(db: Path, dataset: str, judges: list[str]) -> str:
    """Run ``judges`` over a dataset version with the judges feature's ``run_judges``; the run id."""
    from server.providers import NO_ENDPOINT_HINT, EndpointConfig
    from server.storage.duckdb.judges_sql import DuckDBJudgeStore
    from tools.judges import runs
    from tools.errors import TracesieveError

    if not judges:
        raise click.UsageError("Give --judges to run on the dataset(s), e.g. --judges grounded_citations,tool_failures.")
    store = DuckDBJudgeStore(DuckDBTraceStore(db))
    inp = runs.RunJudgesInput(judges=judges, dataset=dataset)

    async def main() -> str:
        config = EndpointConfig.from_env()
        model = config.build() if config else None
        try:
            report = await runs.run_judges(store, store, inp, model=model, now_ms=now_ms(),
                                           no_model_hint=NO_ENDPOINT_HINT)
        finally:
            if model is not None:
                await model.aclose()
        if report.status != "completed":
            raise TracesieveError(f"The run on {dataset} ended '{report.status}': {report.error or report.next}")
        click.echo(f"ran {', '.join(judges)} on {dataset}: {report.run_id} ({report.items} items)", err=True)
        return report.run_id

    return anyio.run(main)


@click.command("gate")
@db_option
@click.option("--baseline", "baseline_run", default=None, help="Baseline run id (e.g. the last release's run).")
@click.option("--candidate", "candidate_run", default=None, help="Candidate run id.")
@click.option("--baseline-dataset", default=None, help="Instead of --baseline: run --judges on this dataset version "
                                                       "('name@version') first.")
@click.option("--candidate-dataset", "--dataset", "candidate_dataset", default=None,
              help="Instead of --candidate: run --judges on this dataset version first.")
@_compare_options
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON instead of markdown.")
def gate_cmd(db: Path, baseline_run: str | None, candidate_run: str | None, baseline_dataset: str | None,
             candidate_dataset: str | None, alpha: float, min_delta: float, judges: tuple[str, ...],
             slice_by: tuple[str, ...], allow_uncalibrated: bool, min_items: int, as_json: bool) -> None:
    """CI gate: exit 0 if the candidate did not regress, 1 on a regression, 2 if it cannot decide.

    Compares two runs, or first runs --judges on dataset versions (--baseline-dataset / --dataset) and
    compares those. Only judges whose latest calibration reaches MCC 0.6 gate (see `tracesieve calibrate`).

    Example:

    \b
        tracesieve gate --baseline run-a1b2 --candidate run-c3d4 --min-delta 0.02
        tracesieve gate --baseline run-a1b2 --dataset golden@4 --judges grounded_citations,tool_failures
    """
    from pydantic import ValidationError

    from tools.errors import TracesieveError

    names = [n.strip() for j in judges for n in j.split(",") if n.strip()]
    try:
        if (baseline_run is None) == (baseline_dataset is None) or (candidate_run is None) == (candidate_dataset is None):
            raise click.UsageError("Give each side once: --baseline RUN or --baseline-dataset NAME@V, and --candidate "
                                   "RUN or --dataset NAME@V.")
        with cli_errors():
            baseline_run = baseline_run or _run_side(db, baseline_dataset, names)  # type: ignore[arg-type]
            candidate_run = candidate_run or _run_side(db, candidate_dataset, names)  # type: ignore[arg-type]
            inp = _compare_input(baseline_run, candidate_run, alpha, min_delta, tuple(names), slice_by,
                                 allow_uncalibrated, min_items)
            result = regression.compare_runs(DuckDBCalibrationStore(DuckDBTraceStore(db)), inp)
    except (click.ClickException, TracesieveError, ValidationError) as error:
        text = (describe_validation_error(error) if isinstance(error, ValidationError)
                else error.format_message() if isinstance(error, click.ClickException) else str(error))
        click.echo(f"Error: {text}\ngate: could not decide (exit 2).", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        click.echo(render_compare(result))
    sys.exit(result.exit_code)


COMMANDS: list[click.Command] = [label_cmd, labels_group, queue_cmd, calibrate_cmd, compare_cmd, gate_cmd]
