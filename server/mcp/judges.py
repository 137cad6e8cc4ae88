"""MCP tools for judges and judge runs: define, list, inspect, train, run, read runs and results.

``run_judges`` is async: it reports MCP progress, and when no judge endpoint is configured it
grades with the client's own model through MCP sampling (mid-call on handshake-era sessions; in
InputRequiredResult rounds on 2026-07-28 sessions). Store work runs on worker threads.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import InputRequiredResult
from pydantic import Field

from server.errors import surface_errors, surface_errors_async
from server.mcp import confirm
from server.mcp.annotations import READ_ONLY, RUN, VERSIONED_WRITE
from server.providers import NO_MODEL_HINT, EndpointConfig
from server.providers.mcp_sampling import RoundTripSamplingJudge, SessionSamplingJudge
from server.storage.backend import Backend
from tools import clock
from tools.judges import classifier as classifier_judge, registry, run_reports, runs


JudgeModelChoice = Annotated[Literal["auto", "endpoint", "sampling"], Field(
    description="Who grades LLM judges: 'endpoint' (the operator-configured API), 'sampling' (this MCP client's "
                "own model, no API key), or 'auto' (endpoint if configured, else sampling).")]


def _client_name(ctx: Context) -> str:
    return confirm.client_name(ctx) or "client"


def _modern(ctx: Context) -> bool:
    return (ctx.protocol_version or "") >= confirm.MODERN


def choose_model(ctx: Context, choice: str) -> Any:
    """The judge model for this call, or None when neither an endpoint nor sampling is available."""
    config = EndpointConfig.from_env() if choice in ("auto", "endpoint") else None
    if config is not None:
        return config.build()
    caps = ctx.client_capabilities
    if choice == "endpoint" or caps is None or caps.sampling is None:
        return None
    if _modern(ctx):
        return RoundTripSamplingJudge(_client_name(ctx), dict(ctx.input_responses or {}))
    return SessionSamplingJudge(ctx.session, _client_name(ctx))


def register(mcp: MCPServer, backend: Backend) -> None:
    """Add this feature's tools to ``mcp``."""
    js = backend.require_features("judges", "judges").judges

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def define_judge(name: registry.JudgeName, kind: registry.Kind, criterion: registry.Criterion, spec: registry.SpecArg,
                     description: registry.Description = None) -> registry.DefineJudgeResult:
        """Define a judge (or a new version): a rule or an LLM rubric scoring each item pass / fail /
        unknown with a 0-1 score and a rationale. Rules for structural failures, LLM judges for semantic ones.
        Same spec = same version; a changed spec = a new version (old ones run as 'name@1').
        Examples: define_judge(name='tool_failures', kind='rule', criterion='tool_error',
                               spec={'type': 'status', 'trace_ok': false, 'span_types': ['TOOL']})
          define_judge(name='faithful', kind='llm', criterion='faithfulness',
                       spec={'type': 'llm', 'rubric': 'Pass if every claim is supported by the context.'})
        """
        return registry.define_judge(js, registry.DefineJudgeInput(name=name, kind=kind, criterion=criterion, spec=spec,
                                                               description=description), now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_judges() -> registry.ListJudgesResult:
        """List every judge: latest version ref, version count, kind, criterion, spec in words.
"""
        return registry.list_judges(js)

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_judge(name: Annotated[str, Field(min_length=1, description="Judge name, e.g. 'grounded_citations'.")]
                  ) -> registry.GetJudgeResult:
        """One judge's versions, newest first: ref, hash, spec (and in words), classifier training metrics.
"""
        return registry.get_judge(js, name)

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def train_classifier_judge(name: registry.JudgeName, criterion: registry.Criterion,
                               fields: classifier_judge.Fields = ["input", "output", "tool_calls"],  # noqa: B006
                               description: registry.Description = None) -> classifier_judge.TrainClassifierJudgeResult:
        """Train a classifier judge (TF-IDF + logistic regression) from one criterion's human pass/fail
        labels; needs >= 10 labels with >= 3 of each class. Reports cross-validated MCC (>= 0.6 can gate).
        Example: train_classifier_judge(name='wrong_tool_clf', criterion='correct_tool'); then run_judges.
        """
        return classifier_judge.train_classifier_judge(js, js, classifier_judge.TrainClassifierJudgeInput(
            name=name, criterion=criterion, fields=fields, description=description), now_ms=clock.now_ms())

    @mcp.tool(annotations=RUN)
    @surface_errors_async
    async def run_judges(ctx: Context, judges: runs.JudgeRefs = None, dataset: runs.DatasetRef = None,
                         filter: runs.MonitorFilter = None, window: runs.Window = None,
                         sample_rate: runs.SampleRate = 1.0, max_items: runs.MaxItems = None,
                         concurrency: runs.Concurrency = 4, judge_model: JudgeModelChoice = "auto",
                         dry_run: runs.DryRun = False, resume_run_id: runs.ResumeRunId = None,
                         ) -> run_reports.RunReport | InputRequiredResult:
        """Run judges over a dataset version (eval) or live traces matching a filter in a window
        (monitoring, optionally sampled): a run id and per judge pass/fail/unknown counts, pass rate, failing
        traces, errors, tokens, cost. LLM judges use the configured endpoint, else this client's model. Scores
        are kept as they finish (resume_run_id continues); identical model calls are cached.
        Examples: run_judges(judges=['tool_failures'], dataset='golden@2')
          run_judges(judges=['faithful'], filter="tags.environment = 'production'", window='24h')
        """
        state = json.loads(ctx.request_state) if ctx.request_state else None
        if state:   # a sampling round trip of an earlier call: continue that run
            resume_run_id = state["run_id"]
        inp = runs.RunJudgesInput(judges=judges, dataset=dataset, filter=filter, window=window,
                                  sample_rate=sample_rate, max_items=max_items, concurrency=concurrency,
                                  dry_run=dry_run, resume_run_id=resume_run_id)
        model = choose_model(ctx, judge_model)

        async def progress(done: float, total: float, message: str) -> None:
            await ctx.report_progress(done, total, message)

        try:
            report = await runs.run_judges(js, js, inp, model=model, no_model_hint=NO_MODEL_HINT, now_ms=clock.now_ms(),
                                           progress=progress, next_round=state is not None)
        finally:
            if hasattr(model, "aclose"):
                await model.aclose()
        if report.status == "awaiting_input" and isinstance(model, RoundTripSamplingJudge):
            return InputRequiredResult(input_requests=dict(model.pending),
                                       request_state=json.dumps({"run_id": report.run_id}))
        return report

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_run(run_id: run_reports.RunId) -> run_reports.RunReport:
        """Read a judge run: status, target, model, per-judge counts, pass rate, failing traces, errors,
        tokens, cost. An interrupted or failed run says how to resume it. Example: get_run(run_id='run-3f9a0c12b4de')
        """
        return run_reports.get_run(js, run_id)

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_runs(limit: run_reports.RunLimit = 20, page_token: run_reports.PageToken = None
                  ) -> run_reports.ListRunsResult:
        """List judge runs, newest first (id, status, target, judges, model, items, times); page with next_page_token.
"""
        return run_reports.list_runs(js, limit=limit, page_token=page_token)

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_run_results(run_id: run_reports.RunId, verdict: run_reports.VerdictFilter = None,
                        judge: run_reports.JudgeFilter = None, limit: run_reports.ResultLimit = 50,
                        page_token: run_reports.PageToken = None) -> run_reports.GetRunResultsResult:
        """Page through a run's per-item results: judge, trace id, verdict, score, rationale (300 chars),
        error, cached, latency; ordered by judge, then item. Pass next_page_token to continue.
        Example: get_run_results(run_id='run-3f9a0c12b4de', verdict='fail')
        """
        return run_reports.get_run_results(js, run_id, judge=judge, verdict=verdict, limit=limit,
                                           page_token=page_token)
