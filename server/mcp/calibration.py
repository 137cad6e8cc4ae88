"""MCP tools for human labels, the annotation queue, judge calibration and run comparison.

Thin wrappers: build the typed input, call ``tools``, return the result. ``calibration_report``
and ``compare_runs`` return a ``CallToolResult`` whose text is the markdown rendering (what a
person reads in chat) and whose ``structured_content`` is the validated result model (what an
agent reads); ``calibration_report`` adds the PNG as MCP image content. The return annotation
``Annotated[CallToolResult, Model]`` keeps the published output schema.
"""

from __future__ import annotations

import base64
from typing import Annotated

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ImageContent, InputRequiredResult, TextContent
from pydantic import Field

from server.errors import surface_errors, surface_errors_async
from server.mcp import confirm
from server.mcp.annotations import APPEND, APPEND_IDEMPOTENT, READ_ONLY
from server.exchange.folder import confined_file
from server.exchange.labels import LabelFormat, read_label_file
from server.storage.backend import Backend
from tools import clock
from tools.labels import annotation_queue as aq
from tools.calibration import agreement as cal
from tools.labels import attribution
from tools.labels import labelling as labels
from tools.calibration import regression
from tools.calibration.render import render_calibration, render_compare


FilePath = Annotated[str, Field(min_length=1, description=(
    "File name inside the store's exports folder (<store folder>/exports/): a CSV/JSONL of labels (columns trace_id, criterion, value, reviewer, rationale, "
    "created_at), a Langfuse export (ANNOTATION scores) or MLflow trace JSON (HUMAN assessments)."))]
FormatArg = Annotated[LabelFormat, Field(description="auto (by extension/content), csv, jsonl, langfuse or mlflow.")]
DefaultReviewer = Annotated[str | None, Field(description="Reviewer for rows that name none.")]
SuggestedReviewer = Annotated[str | None, Field(max_length=200, description=(
    "The person this label is for (e.g. 'ana'): offered to them to confirm; unconfirmed labels are the agent's."))]
PeopleOnly = Annotated[bool, Field(description="Use only labels people confirmed, leaving out labels agents "
                                               "recorded (reviewer 'agent:…').")]


def reviewer_schema(suggested: str | None) -> dict:
    prop: dict = {"type": "string", "title": "Your name", "minLength": 1, "maxLength": 200}
    if suggested:
        prop["default"] = suggested
    return {"type": "object", "properties": {"reviewer": prop}, "required": ["reviewer"]}


IncludePlot = Annotated[bool, Field(description="Attach a PNG (confusion matrix, score by label, MCC drift) as "
                                                "image content (default true).")]


def register(mcp: MCPServer, backend: Backend) -> None:
    """Add label_trace, list_labels, import_labels, annotation_queue, calibration_report, compare_runs."""
    features = backend.require_features("labels and calibration", "labels", "queue", "calibration")
    label_store = features.labels
    assert backend.path is not None  # a store with features is a local file; its folder holds exports/
    store_path = backend.path

    @mcp.tool(annotations=APPEND)
    @surface_errors_async
    async def label_trace(ctx: Context, trace_id: labels.TraceId, criterion: labels.Criterion,
                          value: labels.LabelValue, reviewer: SuggestedReviewer = None,
                          rationale: labels.Rationale = None) -> labels.LabelTraceResult | InputRequiredResult:
        """Record a decision (ground truth) about one trace for one criterion: 'pass'/'fail' (yes/no, 1/0
        normalised) or a number. Append-only: a new label on a trace+criterion supersedes the old one. The person
        is asked to sign it; unsigned labels are the agent's ('agent:<client>'), which calibration can leave out.
        Example: label_trace(trace_id='tr-9f', criterion='citation_grounded', value='fail', reviewer='ana')
        """
        who = await confirm.ask(ctx, "confirm-label", (
            f"Record '{value}' for '{criterion}' on trace {trace_id} as your decision? Enter your name to sign it "
            "(decline to record it as the agent's)."), reviewer_schema(reviewer))
        if isinstance(who, InputRequiredResult):
            return who
        signed = who is not None and who.action == "accept" and str((who.content or {}).get("reviewer", "")).strip()
        name = signed or attribution.agent_reviewer(confirm.client_name(ctx))
        return await anyio.to_thread.run_sync(lambda: labels.label_trace(label_store, labels.LabelTraceInput(
            trace_id=trace_id, criterion=criterion, value=value, reviewer=name, rationale=rationale),
            source="mcp", now_ms=clock.now_ms()))

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_labels(criterion: labels.CriterionFilter = None, trace_ids: labels.TraceIdsFilter = None,
                    reviewer: labels.ReviewerFilter = None, include_history: labels.IncludeHistory = False,
                    limit: labels.LabelLimit = 50, page_token: labels.LabelPageToken = None) -> labels.ListLabelsResult:
        """List human labels newest first: the current one per trace+criterion, or the whole history
        (include_history=true); plus pass/fail counts per criterion. Page with next_page_token.
        Example: list_labels(criterion='citation_grounded')
        """
        return labels.list_labels(label_store, labels.ListLabelsInput(
            criterion=criterion, trace_ids=trace_ids, reviewer=reviewer, include_history=include_history,
            limit=limit, page_token=page_token))

    @mcp.tool(annotations=APPEND_IDEMPOTENT)
    @surface_errors
    def import_labels(file: FilePath, format: FormatArg = "auto",
                      reviewer: DefaultReviewer = None) -> labels.ImportLabelsResult:
        """Import human labels from a file in the store's exports folder: tracesieve CSV/JSONL, Langfuse
        ANNOTATION scores or MLflow HUMAN assessments. Any bad row means nothing is written and the error lists
        the rows; identical labels are skipped, so re-importing is safe. Example: import_labels(file='week46-labels.csv')
        """
        rows, source, strict = read_label_file(
            confined_file(store_path, file, example="week46-labels.csv",
                          cli_alternative="tracesieve labels import PATH"), format)
        return labels.import_labels(label_store, rows, source=source, default_reviewer=reviewer,
                                    strict_values=strict, now_ms=clock.now_ms())

    @mcp.tool(annotations=APPEND)
    @surface_errors
    def annotation_queue(criterion: labels.Criterion, filter: aq.QueueFilter = "", limit: aq.QueueLimit = 20,
                         random_share: aq.RandomShare = 0.2, signals: aq.SignalsParam = None,
                         seed: aq.Seed = None) -> aq.AnnotationQueueResult:
        """Which unlabelled traces to label next for a criterion, ranked by anomaly signals with reasons
        (context pressure, token spikes, re-submission, tool errors, guardrails, latency, judge disagreement); a
        random_share keeps selection probabilities for unbiased calibration.
        Example: annotation_queue(criterion='citation_grounded', limit=20); then get_trace and label_trace each.
        """
        return aq.annotation_queue(features.queue, aq.AnnotationQueueInput(
            criterion=criterion, filter=filter, limit=limit, random_share=random_share, signals=signals, seed=seed),
            now_ms=clock.now_ms())

    @mcp.tool(annotations=APPEND_IDEMPOTENT)
    @surface_errors
    def calibration_report(judge: cal.JudgeName, criterion: cal.CriterionOpt = None, run_id: cal.RunId = None,
                           judge_version: cal.JudgeVersion = None, gate_threshold: cal.GateThreshold = 0.6,
                           signal_threshold: cal.SignalThreshold = 0.4, min_labels: cal.MinLabels = 10,
                           min_per_class: cal.MinPerClass = 5, gate_on: cal.GateOn = "point",
                           resamples: cal.Resamples = 2000, seed: cal.SeedParam = cal.stats.DEFAULT_SEED,
                           window: cal.WindowParam = "week", max_disagreements: cal.MaxDisagreements = 20,
                           reweight: cal.Reweight = None, correct_run_id: cal.CorrectRun = None,
                           include_plot: IncludePlot = True, people_only: PeopleOnly = False
                           ) -> Annotated[CallToolResult, cal.CalibrationReportResult]:
        """How well a judge agrees with human labels (positive = fail): confusion matrix, TPR/TNR,
        precision/recall/F1, MCC and kappa with bootstrap 95% CIs, and the verdict with its interval: gate
        (MCC >= 0.6), signal (0.4-0.6), revise (< 0.4) or insufficient (under min_per_class labels of a class,
        or an MCC interval reaching 0); gate_on='lower_bound' gates on the interval's lower bound. Plus
        disagreements, correlations, drift, labels needed, and a run's bias-corrected pass rate (stored:
        compare_runs gates only on calibrated judges).
        Example: calibration_report(judge='grounded_citations', criterion='citation_grounded')
        """
        calib = features.calibration.restricted(people_only=people_only)
        with calib.session():
            result = cal.calibration_report(calib, cal.CalibrationReportInput(
                judge=judge, criterion=criterion, run_id=run_id, judge_version=judge_version,
                gate_threshold=gate_threshold, signal_threshold=signal_threshold, min_labels=min_labels,
                min_per_class=min_per_class, gate_on=gate_on, resamples=resamples, seed=seed, window=window, max_disagreements=max_disagreements,
                reweight=reweight, correct_run_id=correct_run_id), now_ms=clock.now_ms())
        content: list[TextContent | ImageContent] = [TextContent(type="text", text=render_calibration(result))]
        if include_plot:
            from server.plots import calibration_png  # matplotlib loads on the first plot, not at start-up

            png = base64.b64encode(calibration_png(result)).decode()
            content.append(ImageContent(type="image", data=png, mime_type="image/png"))
        return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def compare_runs(baseline_run: regression.RunRef, candidate_run: regression.RunRef,
                     alpha: regression.Alpha = 0.05, min_delta: regression.MinDelta = 0.0,
                     judges: regression.JudgeList = None, slice_by: regression.SliceBy = None,
                     allow_uncalibrated: regression.AllowUncalibrated = False,
                     gate_threshold: regression.GateThreshold = 0.6, min_items: regression.MinItems = 20,
                     max_flips: regression.MaxFlips = 20
                     ) -> Annotated[CallToolResult, regression.CompareRunsResult]:
        """Compare two runs of the same judges: pass-rate deltas with bootstrap CIs, exact McNemar on
        flips, Holm across judges, slices, flipped items, and a verdict: regressed | improved | no significant
        change | undecided (exit_code 1/0/0/2). Uncalibrated judges do not gate.
        Example: compare_runs(baseline_run='run-a1', candidate_run='run-b2', min_delta=0.02)
        """
        result = regression.compare_runs(features.calibration, regression.CompareRunsInput(
            baseline_run=baseline_run, candidate_run=candidate_run, alpha=alpha, min_delta=min_delta, judges=judges,
            slice_by=slice_by, allow_uncalibrated=allow_uncalibrated, gate_threshold=gate_threshold,
            min_items=min_items, max_flips=max_flips))
        return CallToolResult(content=[TextContent(type="text", text=render_compare(result))],
                              structured_content=result.model_dump(mode="json"))
