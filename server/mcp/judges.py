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
from server.mcp.annotations import READ_ONLY, RUN, VERSIONED_WRITE
from server.providers import NO_MODEL_HINT, EndpointConfig
from server.providers.mcp_sampling import RoundTripSamplingJudge, SessionSamplingJudge
from server.storage.backend import Backend
from tools import clock
from tools.judges import classifier as classifier_judge, registry, run_reports, runs

MODERN = "2026-07-28"

JudgeModelChoice = Annotated[Literal["auto", "endpoint", "sampling"], Field(
    description="Who grades LLM judges: 'endpoint' (the operator-configured API), 'sampling' (this MCP client's "
                "own model, no API key), or 'auto' (endpoint if configured, else sampling).")]


def _client_name(ctx: Context) -> str:
    params = ctx.session.client_params
    info = getattr(params, "client_info", None)
    return getattr(info, "name", None) or "client"


def _modern(ctx: Context) -> bool:
    return (ctx.protocol_version or "") >= MODERN


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
    js = backend.require_features("judges").judges

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def define_judge(name: registry.JudgeName, kind: registry.Kind, criterion: registry.Criterion, spec: registry.SpecArg,
                     description: registry.Description = None) -> registry.DefineJudgeResult:
        """Define a judge (or a new version of one): a deterministic rule or an LLM rubric that scores each item
        pass / fail / unknown with a 0-1 score and a rationale.

        Prefer rules for structural failures (cheap, exact, evaluated inside the store); use an LLM judge for
        semantic ones. Same spec again = same version (nothing changes); a changed spec = a new version, and old
        versions stay runnable as 'name@1'. Examples:
          define_judge(name='grounded_citations', kind='rule', criterion='citation_grounded',
                       spec={'type': 'citation_grounding'})
          define_judge(name='tool_failures', kind='rule', criterion='tool_error',
                       spec={'type': 'status', 'trace_ok': false, 'span_types': ['TOOL']})
          define_judge(name='faithful', kind='llm', criterion='faithfulness', spec={'type': 'llm',
                       'rubric': 'Pass if every claim is supported by the retrieved context.',
                       'fields': ['input', 'output', 'retrieved_context']})
        Returns the version ref to pass to run_judges. A bad spec gets an error naming the field and an example.
        """
        return registry.define_judge(js, registry.DefineJudgeInput(name=name, kind=kind, criterion=criterion, spec=spec,
                                                               description=description), now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_judges() -> registry.ListJudgesResult:
        """List every judge: latest version ref, number of versions, kind, criterion and the spec in words.

        Use it to pick judges for run_judges; get_judge shows all versions of one judge.
        """
        return registry.list_judges(js)

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_judge(name: Annotated[str, Field(min_length=1, description="Judge name, e.g. 'grounded_citations'.")]
                  ) -> registry.GetJudgeResult:
        """Show one judge's versions, newest first: ref ('name@2'), content hash, spec, the spec in words, and for
        classifiers the training metrics (labels used, cross-validated MCC).

        Example: get_judge(name='grounded_citations')
        """
        return registry.get_judge(js, name)

    @mcp.tool(annotations=VERSIONED_WRITE)
    @surface_errors
    def train_classifier_judge(name: registry.JudgeName, criterion: registry.Criterion,
                               fields: classifier_judge.Fields = ["input", "output", "tool_calls"],  # noqa: B006
                               description: registry.Description = None) -> classifier_judge.TrainClassifierJudgeResult:
        """Train a classifier judge from the human labels ('pass'/'fail', latest per trace) of one criterion: TF-IDF
        text features of input/output/tool calls + logistic regression, saved as a judge version (plain numbers,
        no pickle).

        Reports the cross-validated MCC with the labels: >= 0.6 can gate releases, 0.4-0.6 is a signal, < 0.4
        means label more traces or use a rule/LLM judge. Needs >= 10 labels with >= 3 of each class.
        Example: train_classifier_judge(name='wrong_tool_clf', criterion='correct_tool')
        Then run it like any judge: run_judges(judges=['wrong_tool_clf'], dataset='golden@1').
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
        """Run judges over a dataset version (dev-time eval) or over live traces matching a filter in a time window
        (monitoring, optionally sampled). Scores every item with every judge and returns a run id plus, per judge:
        pass/fail/unknown counts, pass rate, score distribution, first failing trace ids, errors, tokens, cost and
        duration.

        Rule judges run inside the store; LLM judges call the configured endpoint or, without one, this client's
        own model via MCP sampling. Sends progress notifications. Scores are stored as they finish: an interrupted
        run keeps them and run_judges(resume_run_id=...) continues; identical model calls come from a cache.
        Examples:
          run_judges(judges=['grounded_citations', 'tool_failures'], dataset='golden@2')
          run_judges(judges=['faithful'], filter="tags.environment = 'production'", window='24h', sample_rate=0.1)
          run_judges(judges=['faithful'], dataset='golden', dry_run=true)     (token/cost estimate only)
        Next: get_run_results(run_id=..., verdict='fail') to read the failures.
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
        """Read a judge run: status (running / completed / failed / interrupted), target, model, and per judge the
        pass/fail/unknown counts, pass rate, score distribution, first failing traces, errors, tokens and cost.

        Example: get_run(run_id='run-3f9a0c12b4de'). An interrupted or failed run says how to resume it.
        """
        return run_reports.get_run(js, run_id)

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_runs(limit: run_reports.RunLimit = 20, page_token: run_reports.PageToken = None
                  ) -> run_reports.ListRunsResult:
        """List judge runs, newest first: id, status, target, judge versions, model, item count, start/finish.

        If next_page_token is set, call again with it for older runs.
        """
        return run_reports.list_runs(js, limit=limit, page_token=page_token)

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_run_results(run_id: run_reports.RunId, verdict: run_reports.VerdictFilter = None,
                        judge: run_reports.JudgeFilter = None, limit: run_reports.ResultLimit = 50,
                        page_token: run_reports.PageToken = None) -> run_reports.GetRunResultsResult:
        """Page through one run's per-item results: judge, trace id, verdict, score, rationale (cut to 300 chars),
        error, whether it came from the cache, latency. Ordered by judge, then item.

        Examples: get_run_results(run_id='run-3f9a0c12b4de', verdict='fail')
                  get_run_results(run_id='run-3f9a0c12b4de', judge='faithful', verdict='unknown', limit=20)
        Read a failing trace with get_trace; pass next_page_token to continue.
        """
        return run_reports.get_run_results(js, run_id, judge=judge, verdict=verdict, limit=limit,
                                           page_token=page_token)
