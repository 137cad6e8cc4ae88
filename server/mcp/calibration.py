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

from mcp.server import MCPServer
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import Field

from server.errors import surface_errors
from server.mcp.annotations import APPEND, APPEND_IDEMPOTENT, READ_ONLY
from server.exchange.folder import confined_file
from server.exchange.labels import LabelFormat, read_label_file
from server.storage.duckdb.calibration_sql import DuckDBCalibrationStore
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.labels_sql import DuckDBLabelStore
from server.storage.duckdb.queue_sql import DuckDBQueueStore
from tools import clock
from tools.labels import annotation_queue as aq
from tools.calibration import agreement as cal
from tools.labels import labelling as labels
from tools.calibration import regression
from tools.calibration.render import render_calibration, render_compare


FilePath = Annotated[str, Field(min_length=1, description=(
    "File name inside the store's exports folder (<store folder>/exports/): a CSV/JSONL of labels (columns trace_id, criterion, value, reviewer, rationale, "
    "created_at), a Langfuse export (ANNOTATION scores) or MLflow trace JSON (HUMAN assessments)."))]
FormatArg = Annotated[LabelFormat, Field(description="auto (by extension/content), csv, jsonl, langfuse or mlflow.")]
DefaultReviewer = Annotated[str | None, Field(description="Reviewer for rows that name none.")]
IncludePlot = Annotated[bool, Field(description="Attach a PNG (confusion matrix, score by label, MCC drift) as "
                                                "image content (default true).")]


def register(mcp: MCPServer, store: DuckDBTraceStore) -> None:
    """Add label_trace, list_labels, import_labels, annotation_queue, calibration_report, compare_runs."""
    label_store = DuckDBLabelStore(store)

    @mcp.tool(annotations=APPEND)
    @surface_errors
    def label_trace(trace_id: labels.TraceId, criterion: labels.Criterion, value: labels.LabelValue,
                    reviewer: labels.Reviewer, rationale: labels.Rationale = None) -> labels.LabelTraceResult:
        """Record a human decision (ground truth) about one trace for one criterion (failure mode).

        Use it on traces from annotation_queue after reading them with get_trace. value is 'pass' or 'fail'
        (yes/no, true/false, 1/0 are normalised) or a number for graded labels. Labels are append-only:
        labelling the same trace+criterion again supersedes the earlier label, which stays in the history.
        Example: label_trace(trace_id='tr-9f…', criterion='citation_grounded', value='fail', reviewer='ana',
                             rationale='cites kb-returns-009, which was not retrieved')
        Returns the stored label and the one it superseded, if any.
        """
        return labels.label_trace(label_store, labels.LabelTraceInput(
            trace_id=trace_id, criterion=criterion, value=value, reviewer=reviewer, rationale=rationale),
            source="mcp", now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def list_labels(criterion: labels.CriterionFilter = None, trace_ids: labels.TraceIdsFilter = None,
                    reviewer: labels.ReviewerFilter = None, include_history: labels.IncludeHistory = False,
                    limit: labels.LabelLimit = 50, page_token: labels.LabelPageToken = None) -> labels.ListLabelsResult:
        """List human labels newest first: by default the current label per trace+criterion, or the full
        history (corrections keep the rows they supersede) with include_history=true. Also returns
        pass/fail counts per criterion.

        Examples: list_labels(criterion='citation_grounded')  |  list_labels(trace_ids=['tr-1'], include_history=true)
        If next_page_token is set, call again with it for more.
        """
        return labels.list_labels(label_store, labels.ListLabelsInput(
            criterion=criterion, trace_ids=trace_ids, reviewer=reviewer, include_history=include_history,
            limit=limit, page_token=page_token))

    @mcp.tool(annotations=APPEND_IDEMPOTENT)
    @surface_errors
    def import_labels(file: FilePath, format: FormatArg = "auto",
                      reviewer: DefaultReviewer = None) -> labels.ImportLabelsResult:
        """Import human labels from a file: CSV/JSONL written for tracesieve, Langfuse ANNOTATION scores,
        or MLflow HUMAN assessments.

        The whole file is checked first; any bad row (unknown trace, missing value, a value that is not
        pass/fail or a number) means nothing is written and the error lists the rows. Rows identical to
        stored labels are skipped, so re-importing is safe.
        Example: import_labels(file='week46-labels.csv')  (the file sits in <store folder>/exports/)
        """
        rows, source, strict = read_label_file(
            confined_file(store.path, file, example="week46-labels.csv",
                          cli_alternative="tracesieve labels import PATH"), format)
        return labels.import_labels(label_store, rows, source=source, default_reviewer=reviewer,
                                    strict_values=strict, now_ms=clock.now_ms())

    @mcp.tool(annotations=APPEND)
    @surface_errors
    def annotation_queue(criterion: labels.Criterion, filter: aq.QueueFilter = "", limit: aq.QueueLimit = 20,
                         random_share: aq.RandomShare = 0.2, signals: aq.SignalsParam = None,
                         seed: aq.Seed = None) -> aq.AnnotationQueueResult:
        """Which unlabelled traces to label next for a criterion, ranked by anomaly signals with the reasons:
        context-window pressure, token spikes vs the usual for that operation, user re-submission, tool
        errors and retries, guardrail trips, latency outliers, error status, judge disagreement, and the
        criterion's judges flagging or being unsure. Traces already labelled for the criterion are left out.

        A random_share of the queue (default 0.2) is drawn uniformly from the rest; every item records its
        selection probability (stored with the queue) so calibration_report can reweight for unbiased
        estimates. Example: annotation_queue(criterion='citation_grounded', limit=20,
        filter="tags.environment = 'production'"). Then get_trace each item and label_trace it.
        """
        return aq.annotation_queue(DuckDBQueueStore(store), aq.AnnotationQueueInput(
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
                           include_plot: IncludePlot = True
                           ) -> Annotated[CallToolResult, cal.CalibrationReportResult]:
        """How well a judge agrees with human labels on the same traces (positive class = fail): confusion
        matrix, TPR/TNR, precision/recall/F1, accuracy, MCC, Cohen's kappa with bootstrap 95% CIs, and the
        verdict: gate (MCC >= 0.6), signal (0.4-0.6), revise (< 0.4) or insufficient (too few labels, under
        min_per_class of either class, or an MCC interval reaching 0), with the interval beside it;
        gate_on='lower_bound' gates on the interval's lower bound. Also: the disagreeing traces with both rationales, Spearman/Kendall for graded scores,
        agreement per judge version and per week (drift), labels needed for MCC ±0.1, and the run's
        judge-bias-corrected pass rate (Rogan–Gladen, reweighted by queue selection probabilities).

        The result is stored; compare_runs lets only judges whose latest calibration reaches the gate
        threshold gate a release. Example: calibration_report(judge='grounded_citations')  |
        calibration_report(judge='tool_use', criterion='correct_tool', run_id='run-3f2a…')
        Returns markdown, the structured report and (include_plot) a PNG.
        """
        calib = DuckDBCalibrationStore(store)
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
        """Compare two runs of the same judges: per judge pass rates, delta with a bootstrap 95% CI, exact
        McNemar on items that flipped (Fisher exact if the runs judged different items), Holm correction
        across judges, per-slice breakdown (model, environment, tag:<key>, …), the flipped items, and a
        verdict: regressed | improved | no significant change | undecided (exit_code 1 / 0 / 0 / 2, as
        `tracesieve gate` exits).

        Judges whose latest calibration_report is below the gate threshold are reported but do not gate.
        Example: compare_runs(baseline_run='run-a1…', candidate_run='run-b2…', min_delta=0.02)
        """
        result = regression.compare_runs(DuckDBCalibrationStore(store), regression.CompareRunsInput(
            baseline_run=baseline_run, candidate_run=candidate_run, alpha=alpha, min_delta=min_delta, judges=judges,
            slice_by=slice_by, allow_uncalibrated=allow_uncalibrated, gate_threshold=gate_threshold,
            min_items=min_items, max_flips=max_flips))
        return CallToolResult(content=[TextContent(type="text", text=render_compare(result))],
                              structured_content=result.model_dump(mode="json"))
