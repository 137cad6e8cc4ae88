"""Classifier judges: trained on the latest human labels of a criterion, reporting cross-validated
MCC, stored as plain JSON numbers (no pickle), and run like any other judge."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from server.demo.generate import generate_demo_traces, ground_truth, ground_truth_labels
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.judges_sql import DuckDBJudgeStore
from tests.factory import small_set
from tools.judges import classifier as C
from tools.judges import runs
from tools.errors import InvalidInputError
from tools.models import Label

NOW = 1_763_000_000_000


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[DuckDBJudgeStore, list]:
    traces = generate_demo_traces(240, seed=11, now_ms=NOW)
    for t in traces:
        t.labels = ground_truth_labels(t, created_at_ms=NOW - 1000, criteria=("tool_error",))
    store = DuckDBTraceStore(tmp_path_factory.mktemp("clf") / "clf.duckdb")
    store.write_traces(traces)
    return DuckDBJudgeStore(store), traces


def train(js: DuckDBJudgeStore, name: str = "tool_error_clf") -> C.TrainClassifierJudgeResult:
    return C.train_classifier_judge(js, js, C.TrainClassifierJudgeInput(name=name, criterion="tool_error"), now_ms=NOW)


@pytest.fixture(scope="module")
def trained(labelled) -> C.TrainClassifierJudgeResult:
    return train(labelled[0])


def test_training_reports_cross_validated_mcc_and_stores_plain_numbers(labelled, trained) -> None:
    js, traces = labelled
    result = trained
    fails = sum(ground_truth(t)["tool_error"] == "fail" for t in traces)
    assert (result.labels_used, result.fails, result.passes) == (240, fails, 240 - fails)
    assert result.cv_mcc >= 0.6 and result.advice.startswith("MCC >= 0.6")
    assert result.judge.ref == "tool_error_clf@1" and result.judge.kind == "classifier"
    assert result.judge.spec["model"]["features"] > 100        # summarised, not dumped to the agent
    with js.traces.reading() as con:
        raw = con.execute("SELECT spec FROM judges WHERE name = 'tool_error_clf'").fetchone()[0]
    stored = json.loads(raw)                                   # the model is JSON: vocabulary, idf, coefficients
    assert set(stored["model"]) == {"ngram_max", "sublinear_tf", "vocabulary", "idf", "coef", "intercept"}
    assert len(stored["model"]["vocabulary"]) == len(stored["model"]["coef"]) == len(stored["model"]["idf"])
    assert train(js).created is False                          # same labels, same model, same version


def test_a_trained_classifier_runs_like_any_judge_and_tracks_the_labels(labelled, trained) -> None:
    js, traces = labelled
    report = anyio.run(lambda: runs.run_judges(js, js, runs.RunJudgesInput(judges=["tool_error_clf"], window="30d"),
                                               model=None, no_model_hint="", now_ms=NOW))
    summary = report.judges[0]
    assert summary.evaluated_in == "python" and summary.scored == 240 and summary.cost_usd == 0.0
    with js.traces.reading() as con:
        verdicts = dict(con.execute("SELECT trace_id, verdict FROM scores WHERE run_id = $r",
                                    {"r": report.run_id}).fetchall())
    agree = sum(verdicts[t.trace_id] == ground_truth(t)["tool_error"] for t in traces)
    assert agree / len(traces) >= 0.95


def test_the_latest_label_wins_and_too_few_labels_is_explained(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "few.duckdb")
    traces = small_set()
    for i, t in enumerate(traces[:6]):
        t.labels = [Label(trace_id=t.trace_id, criterion="tone", value="pass", created_at_ms=NOW),
                    Label(trace_id=t.trace_id, criterion="tone", value="fail" if i < 2 else "pass",
                          created_at_ms=NOW + 1)]
    store.write_traces(traces)
    js = DuckDBJudgeStore(store)
    latest = {item.trace_id: value for item, value in js.labeled_items("tone")}
    assert latest == {"t01": "fail", "t02": "fail", "t03": "pass", "t04": "pass", "t05": "pass", "t06": "pass"}
    with pytest.raises(InvalidInputError) as error:
        C.train_classifier_judge(js, js, C.TrainClassifierJudgeInput(name="tone_clf", criterion="tone"), now_ms=NOW)
    assert str(error.value) == ("Not enough human labels to train: 4 pass and 2 fail (need at least 10 in total and 3 "
                                "of each). Label more traces for this criterion (label_trace), then retry.")
    with pytest.raises(InvalidInputError, match="No human labels for criterion 'tonality'"):
        C.train_classifier_judge(js, js, C.TrainClassifierJudgeInput(name="x", criterion="tonality"), now_ms=NOW)
