"""``tracesieve judge define|list|show|train``, ``tracesieve run`` and ``tracesieve runs list|show|results``.

Each command builds the same input model the MCP tool builds, so validation and errors match.
LLM judges run against the endpoint configured in the environment (TRACESIEVE_JUDGE_*); the CLI
has no MCP client to sample from. Progress goes to stderr; results are JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import click

from server.cli.common import echo_result, open_backend, store_option
from server.errors import cli_errors
from server.providers import NO_ENDPOINT_HINT, EndpointConfig
from server.storage.factory import StoreUrl
from tools.judges.ports import JudgeStore
from tools.judges import classifier as classifier_judge, registry, run_reports, runs
from tools.clock import now_ms


def _store(db: StoreUrl) -> JudgeStore:
    """The judges store of ``--store``/``--db`` (any engine that has the judges family)."""
    return open_backend(db).require_features("Judges", "judges").judges


def _spec(text: str) -> dict:
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise click.UsageError(f"SPEC must be a JSON object (or @file.json): {error}") from error
    if not isinstance(value, dict):
        raise click.UsageError('SPEC must be a JSON object such as \'{"type": "latency", "max_ms": 8000}\'.')
    return value


@click.group("judge")
def judge() -> None:
    """Define, list, inspect and train judges (rule, LLM, classifier).

    Example:

        tracesieve judge define slow_answers --criterion latency --spec '{"type": "latency", "max_ms": 8000}'
        tracesieve judge list
    """


@judge.command("define")
@store_option
@click.argument("name")
@click.option("--kind", type=click.Choice(["rule", "llm"]), default="rule", show_default=True)
@click.option("--criterion", required=True, help="Failure mode it measures (matches human label criteria).")
@click.option("--spec", "spec_text", required=True, help="Spec as JSON, or @path/to/spec.json.")
@click.option("--description", default=None, help="Why this judge exists.")
def define_cmd(db: StoreUrl, name: str, kind: str, criterion: str, spec_text: str, description: str | None) -> None:
    """Define judge NAME (a changed spec becomes a new version).

    Example:

        tracesieve judge define grounded --criterion citation_grounded --spec '{"type": "citation_grounding"}'
    """
    with cli_errors():
        inp = registry.DefineJudgeInput(name=name, kind=kind, criterion=criterion, spec=_spec(spec_text),
                                      description=description)
        echo_result(registry.define_judge(_store(db), inp, now_ms=now_ms()))


@judge.command("list")
@store_option
def list_cmd(db: StoreUrl) -> None:
    """List judges with their latest version.

    Example:

        tracesieve judge list
    """
    with cli_errors():
        echo_result(registry.list_judges(_store(db)))


@judge.command("show")
@store_option
@click.argument("name")
def show_cmd(db: StoreUrl, name: str) -> None:
    """Show every version of judge NAME.

    Example:

        tracesieve judge show grounded
    """
    with cli_errors():
        echo_result(registry.get_judge(_store(db), name))


@judge.command("train")
@store_option
@click.argument("name")
@click.option("--criterion", required=True, help="Label criterion to learn (labels 'pass'/'fail').")
@click.option("--field", "fields", multiple=True, type=click.Choice(["input", "output", "retrieved_context",
                                                                   "tool_calls", "expectations"]),
              help="Text to learn from (repeatable; default input, output, tool_calls).")
def train_cmd(db: StoreUrl, name: str, criterion: str, fields: tuple[str, ...]) -> None:
    """Train classifier judge NAME on the human labels of CRITERION; prints cross-validated MCC.

    Example:

        tracesieve judge train wrong_tool_clf --criterion correct_tool
    """
    with cli_errors():
        store = _store(db)
        inp = classifier_judge.TrainClassifierJudgeInput(name=name, criterion=criterion,
                                                         **({"fields": list(fields)} if fields else {}))
        echo_result(classifier_judge.train_classifier_judge(store, store, inp, now_ms=now_ms()))


@click.command("run")
@store_option
@click.argument("judge_refs", nargs=-1)
@click.option("--dataset", default=None, help="Dataset version 'name@version' to judge.")
@click.option("--filter", "filter_", default=None, help="Monitoring: search filter over live traces.")
@click.option("--window", default=None, help="Monitoring: last N m/h/d/w, e.g. 24h.")
@click.option("--sample-rate", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--max-items", type=click.IntRange(1), default=None)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--dry-run", is_flag=True, help="Only count items and estimate tokens/cost.")
@click.option("--resume", "resume_run_id", default=None, help="Continue an interrupted or failed run.")
def run_cmd(db: StoreUrl, judge_refs: tuple[str, ...], dataset: str | None, filter_: str | None, window: str | None,
            sample_rate: float, max_items: int | None, concurrency: int, dry_run: bool,
            resume_run_id: str | None) -> None:
    """Run JUDGE_REFS over a dataset version or a live window (run_judges). Exit 1 if the run fails.

    Example:

        tracesieve run grounded tool_failures --dataset golden@2
        tracesieve run faithful --filter "tags.environment = 'production'" --window 24h --sample-rate 0.1
        tracesieve run --resume run-3f9a0c12b4de
    """

    async def main() -> run_reports.RunReport:
        config = EndpointConfig.from_env()
        model = config.build() if config else None
        last = [-1.0]

        async def progress(done: float, total: float, message: str) -> None:
            if total and (done == total or done - last[0] >= total / 20):
                last[0] = done
                click.echo(f"  {message}", err=True)

        try:
            js = _store(db)
            return await runs.run_judges(js, js, inp, model=model, now_ms=now_ms(),
                                         progress=progress, no_model_hint=NO_ENDPOINT_HINT)
        finally:
            if model is not None:
                await model.aclose()

    with cli_errors():
        inp = runs.RunJudgesInput(judges=list(judge_refs) or None, dataset=dataset, filter=filter_, window=window,
                                  sample_rate=sample_rate, max_items=max_items, concurrency=concurrency,
                                  dry_run=dry_run, resume_run_id=resume_run_id)
        report = anyio.run(main)
        echo_result(report)
    if report.status == "failed":
        sys.exit(1)


@click.group("runs")
def runs_group() -> None:
    """Read judge runs and their per-item results.

    Example:

        tracesieve runs list
        tracesieve runs results run-3f9a0c12b4de --verdict fail
    """


@runs_group.command("list")
@store_option
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
def runs_list_cmd(db: StoreUrl, limit: int) -> None:
    """List judge runs, newest first.

    Example:

        tracesieve runs list --limit 5
    """
    with cli_errors():
        echo_result(run_reports.list_runs(_store(db), limit=limit, page_token=None))


@runs_group.command("show")
@store_option
@click.argument("run_id")
def runs_show_cmd(db: StoreUrl, run_id: str) -> None:
    """Summary of run RUN_ID per judge.

    Example:

        tracesieve runs show run-3f9a0c12b4de
    """
    with cli_errors():
        echo_result(run_reports.get_run(_store(db), run_id))


@runs_group.command("results")
@store_option
@click.argument("run_id")
@click.option("--verdict", type=click.Choice(["pass", "fail", "unknown"]), default=None)
@click.option("--judge", "judge_name", default=None, help="Only this judge's results.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--page-token", default=None)
def runs_results_cmd(db: StoreUrl, run_id: str, verdict: str | None, judge_name: str | None, limit: int,
                     page_token: str | None) -> None:
    """Per-item results of RUN_ID (paged).

    Example:

        tracesieve runs results run-3f9a0c12b4de --verdict fail --limit 10
    """
    with cli_errors():
        echo_result(run_reports.get_run_results(_store(db), run_id, judge=judge_name, verdict=verdict, limit=limit,
                                                page_token=page_token))


COMMANDS: list[click.Command] = [judge, run_cmd, runs_group]
