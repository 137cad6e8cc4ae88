"""Calibration and run comparison on every engine: the same labels and scores give the same pairs,
the same MCC and kappa (equal to scikit-learn's on those pairs), the same stored verdict, and the
same paired comparison (exact McNemar, Holm, slices), over DuckDB and over ClickHouse with a SQLite
or PostgreSQL control plane."""

from __future__ import annotations

import json

import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score, matthews_corrcoef

from server.storage.backend import Backend
from server.storage.factory import StoreUrl
from tests.contract.feature_rows import T0, add_calibration, add_labels, add_scores, is_duckdb, stored_calibrations
from tests.calibration_data import BASE_J1, BASE_J2, CAND_J1, CAND_J2, HUMAN, JUDGE, RUN_IDS, SCORES
from tests.factory import trace
from tools.calibration import agreement as cal
from tools.calibration import regression as rg
from tools.calibration import stats
from tools.calibration.render import render_calibration
from tools.datasets.models import DatasetRecord, DatasetVersion
from tools.errors import NotFoundError
from tools.privacy.redaction import RedactionReport

IDS = RUN_IDS


def with_traces(backend: Backend) -> Backend:
    """``backend`` plus 60 traces c00..c59, one minute apart, every third on claude-sonnet-4 and tagged
    'tier=gold', the rest 'tier=free'."""
    backend.traces.write_traces([
        trace(f"c{i:02d}", 100 + i, model="claude-sonnet-4" if i % 3 == 0 else "gpt-4o-mini",
              tags={"tier": "gold" if i % 3 == 0 else "free"}) for i in range(60)])
    return backend


@pytest.fixture
def labelled(feature_backend: Backend) -> Backend:
    backend = with_traces(feature_backend)
    add_labels(backend, "grounded", HUMAN)
    add_scores(backend, "r1", "grounded_judge", JUDGE, scores=SCORES, version="v1")
    return backend


def report(backend: Backend, **kw: object) -> cal.CalibrationReportResult:
    kw.setdefault("resamples", 300)
    calib = backend.require_features("calibration", "calibration").calibration
    with calib.session():
        return cal.calibration_report(calib, cal.CalibrationReportInput(judge="grounded_judge", criterion="grounded",
                                                                         **kw), now_ms=T0 + 5)


def test_the_report_equals_sklearn_on_the_same_pairs_and_is_stored(labelled: Backend) -> None:
    r = report(labelled)
    y = stats.as_fail([HUMAN[t] for t in IDS[:40]])
    p = stats.as_fail([JUDGE[t] for t in IDS[:40]])
    assert (r.confusion.tp, r.confusion.fp, r.confusion.fn, r.confusion.tn) == (8, 3, 2, 27)
    assert r.metrics["mcc"].value == pytest.approx(matthews_corrcoef(y, p)) == pytest.approx(210 / 95700 ** 0.5)
    assert r.metrics["kappa"].value == pytest.approx(cohen_kappa_score(y, p))
    assert (r.metrics["tpr"].value, r.metrics["tnr"].value) == (pytest.approx(0.8), pytest.approx(0.9))
    assert r.metrics["mcc"].low < r.metrics["mcc"].value < r.metrics["mcc"].high
    assert (r.n, r.labelled_traces, r.unknown_verdicts, r.unscored) == (40, 42, 1, 1)
    assert r.coverage == pytest.approx(40 / 41)
    assert (r.verdict, r.judge_version) == ("gate", "v1")
    assert r.labels_for_mcc_pm_0_1 > 0
    assert r.disagreements_total == 5
    assert sorted((d.kind, d.trace_id) for d in r.disagreements)[:2] == [("false alarm", "c10"),
                                                                         ("false alarm", "c11")]
    markdown = render_calibration(r)
    assert "**GATE**" in markdown and "Positive class = **fail**" in markdown and "| **judge fail** | 8 (TP)" in markdown
    d = next(d for d in r.disagreements if d.trace_id == "c08")
    assert (d.kind, d.judge_rationale, d.human_rationale) == ("missed failure", "grounded_judge says pass",
                                                              "human says fail")
    assert [g.group for g in report(labelled, window="day").by_window] == ["2025-11-13"]  # trace time, not label time
    assert r.correlations is not None
    x = [SCORES[t] for t in IDS[:40]]
    assert r.correlations.spearman.value == pytest.approx(sps.spearmanr(x, [HUMAN[t] == "pass" for t in IDS[:40]])[0])
    assert stored_calibrations(labelled)[0] == ("grounded_judge", "v1", 40, "gate")


def test_a_correction_supersedes_and_agent_labels_can_be_left_out(labelled: Backend) -> None:
    add_labels(labelled, "grounded", {"c10": "fail"}, reviewer="bo", at_ms=T0 + 1)  # the judge was right after all
    r = report(labelled)
    assert (r.confusion.tp, r.confusion.fp) == (9, 2)
    add_labels(labelled, "grounded", {"c11": "fail", "c12": "fail"}, reviewer="agent:claude", at_ms=T0 + 2)
    assert (report(labelled).confusion.tp, report(labelled).confusion.fp) == (11, 0)
    calib = labelled.require_features("calibration", "calibration").calibration.restricted(people_only=True)
    people = cal.calibration_report(calib, cal.CalibrationReportInput(judge="grounded_judge", criterion="grounded",
                                                                      resamples=300), now_ms=T0)
    # the agent's labels are dropped, and with them c11/c12's only labels by people are the older ones
    assert (people.confusion.tp, people.confusion.fp) == (9, 2)


def test_a_run_or_version_can_be_chosen_and_the_newest_verdict_is_the_default(labelled: Backend) -> None:
    flipped = {t: {"pass": "fail", "fail": "pass"}.get(v, v) for t, v in JUDGE.items()}
    add_scores(labelled, "r2", "grounded_judge", flipped, version="v2", at_ms=T0 + 1)
    newest = report(labelled)
    assert newest.verdict == "revise" and newest.metrics["mcc"].value < 0 and newest.judge_version == "v2"
    assert report(labelled, run_id="r1").verdict == "gate"
    assert report(labelled, judge_version="v1").verdict == "gate"
    calib = labelled.require_features("calibration", "calibration").calibration
    assert calib.run_ids("grounded_judge") == ["r2", "r1"] and calib.run_verdict_counts("r1", "grounded_judge") == (
        29, 11, 1)
    with pytest.raises(NotFoundError, match="Judge 'grounded_judge' has no scores in run 'r3'. Did you mean"):
        report(labelled, run_id="r3")


def test_errored_scores_are_left_out_and_unknown_names_get_the_closest(labelled: Backend) -> None:
    add_scores(labelled, "r2", "grounded_judge", {"c00": "pass"}, errors={"c00": "timeout"}, at_ms=T0 + 1)
    assert report(labelled).confusion.tp == 8        # c00's errored newer score does not replace its verdict
    calib = labelled.require_features("calibration", "calibration").calibration
    with pytest.raises(NotFoundError, match="No scores from a judge named 'grounded_judeg'. Did you mean "
                                            "'grounded_judge'"):
        cal.calibration_report(calib, cal.CalibrationReportInput(judge="grounded_judeg"), now_ms=T0)
    with pytest.raises(NotFoundError, match="No human labels for criterion 'grounde'. Did you mean 'grounded'"):
        cal.calibration_report(calib, cal.CalibrationReportInput(judge="grounded_judge", criterion="grounde"),
                               now_ms=T0)


@pytest.fixture
def runs(feature_backend: Backend) -> Backend:
    backend = with_traces(feature_backend)
    add_scores(backend, "base", "j1", BASE_J1, version="v1")
    add_scores(backend, "base", "j2", BASE_J2)
    add_scores(backend, "cand", "j1", CAND_J1, version="v1", at_ms=T0 + 1)
    add_scores(backend, "cand", "j2", CAND_J2, at_ms=T0 + 1)
    return backend


def compare(backend: Backend, **kw: object) -> rg.CompareRunsResult:
    kw.setdefault("resamples", 300)
    return rg.compare_runs(backend.require_features("compare_runs", "calibration").calibration,
                           rg.CompareRunsInput(baseline_run="base", candidate_run="cand", **kw))


def test_a_paired_regression_with_exact_mcnemar_holm_and_slices(runs: Backend) -> None:
    add_calibration(runs, "j1", 0.7, version="v1")
    add_calibration(runs, "j2", 0.8)
    r = compare(runs, slice_by=["model", "tag:tier", "metadata:region"])
    j1, j2 = r.judges
    assert (r.verdict, r.exit_code, r.paired, r.shared_items) == ("regressed", 1, True, 60)
    assert (j1.judge, j1.n, j1.pass_to_fail, j1.fail_to_pass) == ("j1", 60, 12, 2)
    p1 = sps.binomtest(12, 14, 0.5).pvalue
    assert j1.p_value == pytest.approx(p1) and (j1.p_adjusted, j2.p_adjusted) == (pytest.approx(2 * p1), 1.0)
    assert (j1.verdict, j2.verdict) == ("regressed", "no significant change") and j1.gating
    claude = next(s for s in r.slices if s.judge == "j1" and s.field == "model" and s.value == "claude-sonnet-4")
    gold = next(s for s in r.slices if s.judge == "j1" and s.field == "tag:tier" and s.value == "gold")
    assert claude.n == gold.n == 20 and claude.p_value == pytest.approx(sps.binomtest(4, 5, 0.5).pvalue)
    eu = next(s for s in r.slices if s.judge == "j1" and s.field == "metadata:region")
    assert (eu.value, eu.n) == ("eu", 60)
    assert r.flips_total == 16


def test_only_calibrated_judges_gate_and_the_latest_calibration_counts(runs: Backend) -> None:
    assert compare(runs).verdict == "undecided"        # nobody calibrated
    add_calibration(runs, "j1", 0.7, version="v1")
    add_calibration(runs, "j1", 0.2, version="v1", at_ms=T0 + 10)   # a newer, failing calibration wins
    r = compare(runs)
    assert not r.judges[0].gating and r.verdict == "undecided"
    calib = runs.require_features("compare_runs", "calibration").calibration
    latest = calib.latest_calibrations(["j1", "j2"])
    assert list(latest) == ["j1"] and (latest["j1"].mcc, latest["j1"].computed_at_ms) == (0.2, T0 + 10)


def test_dataset_items_pair_by_record_not_by_trace(feature_backend: Backend) -> None:
    backend = with_traces(feature_backend)
    # two records on the same trace: paired by record id, so 2 items, not 1
    add_scores(backend, "base", "j1", {"c00": "pass"}, record_ids={"c00": "rec-1"})
    add_scores(backend, "base", "j1", {"c00": "pass"}, record_ids={"c00": "rec-2"})
    add_scores(backend, "cand", "j1", {"c00": "fail"}, record_ids={"c00": "rec-1"})
    add_scores(backend, "cand", "j1", {"c00": "pass"}, record_ids={"c00": "rec-2"})
    scores = backend.require_features("compare_runs", "calibration").calibration.run_scores("cand", None, [])
    assert sorted((s.key, s.verdict) for s in scores) == [("rec-1", "fail"), ("rec-2", "pass")]
    r = compare(backend, allow_uncalibrated=True, min_items=1)
    assert (r.shared_items, r.judges[0].pass_to_fail) == (2, 1)


def test_a_strata_slice_reads_the_committed_versions_records_only(feature_backend: Backend) -> None:
    """Slices by the dataset record's stratum. On ClickHouse a killed writer may have left records with
    the same ids and other strata under a batch no header names: those must never supply a slice."""
    backend = with_traces(feature_backend)
    if not is_duckdb(backend):  # the killed writer's records, written before the committed ones
        backend.traces.client.insert("dataset_records", [  # type: ignore[attr-defined]
            ("golden", 1, "0-killed-writer", rec, "c00", None, None, None, json.dumps({"stratum": "ORPHAN"}), None,
             None, i, 1, 0) for i, rec in enumerate(("rec-1", "rec-2"))], (
            "name", "version", "records_batch", "record_id", "trace_id", "inputs", "outputs", "expectations",
            "strata", "selection_probability", "redaction", "position", "row_version", "is_deleted"))
    records = [DatasetRecord(record_id=rec, trace_id="c00", inputs={"q": rec}, strata={"stratum": stratum})
               for rec, stratum in (("rec-1", "easy"), ("rec-2", "hard"))]
    backend.require_features("datasets", "datasets").datasets.write_version(DatasetVersion(
        name="golden", version=1, created_at_ms=T0, spec={}, content_hash="h", record_count=2,
        redaction=RedactionReport(enabled=False)), records)
    if not is_duckdb(backend):  # one part, in key order: the orphan batch ('0-…') is read first
        backend.traces.client.command("OPTIMIZE TABLE dataset_records FINAL")  # type: ignore[attr-defined]
    for run, verdicts in (("base", ("pass", "pass")), ("cand", ("fail", "pass"))):
        for rec, verdict in zip(("rec-1", "rec-2"), verdicts):
            add_scores(backend, run, "j1", {"c00": verdict}, record_ids={"c00": rec})
    r = compare(backend, allow_uncalibrated=True, min_items=1, slice_by=["strata"])
    assert sorted((s.value, s.n, s.candidate_pass_rate) for s in r.slices) == [("easy", 1, 0.0), ("hard", 1, 1.0)]


def cli_store_args(backend: Backend, url: StoreUrl) -> list[str]:
    """The CLI options naming ``url`` and its control plane."""
    if is_duckdb(backend):
        return ["--db", str(url.path)]
    args = ["--store", f"chdb://{url.path}?database={url.database}"]
    return args + (["--control", url.control] if url.control else [])


def test_calibrate_compare_and_gate_commands_work_on_every_engine(labelled: Backend,
                                                                  feature_store_url: StoreUrl) -> None:
    from click.testing import CliRunner

    from server.cli.main import cli

    if feature_store_url.engine == "clickhouse":
        pytest.skip("the CLI test names chdb stores; a ClickHouse server is covered by the store tests")
    store = cli_store_args(labelled, feature_store_url)
    runner = CliRunner()
    calibrated = runner.invoke(cli, ["calibrate", "grounded_judge", "--criterion", "grounded", "--resamples", "200",
                                     *store])
    assert calibrated.exit_code == 0, calibrated.output
    assert json.loads(calibrated.output)["verdict"] == "gate"
    add_scores(labelled, "r2", "grounded_judge", {t: "fail" for t in IDS[:40]}, version="v1", at_ms=T0 + 1)
    compared = runner.invoke(cli, ["compare", "r1", "r2", "--table", *store])
    assert compared.exit_code == 0 and "**regressed** (exit 1)" in compared.output, compared.output
    gate = runner.invoke(cli, ["gate", "--baseline", "r1", "--candidate", "r2", "--json", *store])
    assert gate.exit_code == 1 and json.loads(gate.output)["judges"][0]["pass_to_fail"] == 29  # calibrated: it gates
    unknown = runner.invoke(cli, ["gate", "--baseline", "r1", "--candidate", "r9", *store])
    assert unknown.exit_code == 2 and "r9" in unknown.output


@pytest.mark.anyio
async def test_calibration_tools_through_a_real_mcp_client(labelled: Backend) -> None:
    """calibration_report and compare_runs over the store's MCP app (the calibration toolset also
    needs the labels and queue families on this engine)."""
    from mcp import Client

    from server.mcp.app import build_app

    add_scores(labelled, "r2", "grounded_judge", {t: "fail" for t in IDS[:40]}, version="v1", at_ms=T0 + 1)
    async with Client(build_app(labelled)) as client:
        report = await client.call_tool("calibration_report", {"judge": "grounded_judge", "criterion": "grounded",
                                                               "run_id": "r1", "resamples": 200})
        assert not report.is_error, report.content[0].text
        assert report.structured_content["confusion"]["tp"] == 8 and report.structured_content["verdict"] == "gate"
        assert report.content[1].mime_type == "image/png"
        compared = await client.call_tool("compare_runs", {"baseline_run": "r1", "candidate_run": "r2",
                                                           "min_items": 10})
        assert compared.structured_content["verdict"] == "regressed", compared.content[0].text
        missing_run = await client.call_tool("compare_runs", {"baseline_run": "r1", "candidate_run": "r9"})
        assert missing_run.is_error and "r9" in missing_run.content[0].text


def test_the_corrected_pass_rate_reweights_by_the_queue_probabilities(labelled: Backend) -> None:
    """Selection probabilities come from the annotation queue's saved draws (the queue family's store)."""
    from tools.labels.annotation_queue import QueueItem

    items = [QueueItem(rank=i + 1, trace_id=t, time="2025-11-13T00:00:00Z", priority=1.0, selected_by="anomaly",
                       selection_probability=1.0 if HUMAN[t] == "fail" else 0.25, reasons=[], request_preview=None)
             for i, t in enumerate(HUMAN)]
    labelled.features.queue.save_queue("q1", "grounded", "", 100, items, T0)  # type: ignore[union-attr]
    c = report(labelled, run_id="r1").corrected_pass_rate
    assert c is not None and c.reweighted and c.run_id == "r1" and c.items == 40
    assert c.observed_pass_rate == pytest.approx(29 / 40)
    expected = 1 - stats.rogan_gladen(11 / 40, 0.8, 0.9)   # weights 1/p leave TPR 8/10 and TNR 27/30 here
    assert c.corrected_pass_rate == pytest.approx(expected) and c.low <= expected <= c.high
    assert report(labelled, run_id="r1", reweight=False).corrected_pass_rate.reweighted is False
