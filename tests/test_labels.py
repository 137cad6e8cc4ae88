"""Human labels: normalisation, append-only corrections with history, and imports that are all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.ingestion import read_path
from server.exchange.labels import read_label_file
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.labels_sql import DuckDBLabelStore
from tools.labels import labelling
from tools.errors import InvalidInputError, NotFoundError

DATA = Path(__file__).parent / "data" / "ingest"


def label(store: DuckDBTraceStore, trace_id: str, value, *, criterion: str = "correct", reviewer: str = "ana",
          now_ms: int = 1_000, rationale: str | None = None) -> labelling.LabelTraceResult:
    return labelling.label_trace(DuckDBLabelStore(store), labelling.LabelTraceInput(
        trace_id=trace_id, criterion=criterion, value=value, reviewer=reviewer, rationale=rationale),
        source="test", now_ms=now_ms)


def rows(store: DuckDBTraceStore) -> list[tuple]:
    with store.reading() as con:
        return con.execute("SELECT label_id, trace_id, criterion, value, numeric_value, reviewer, rationale, "
                           "created_at_ms FROM labels ORDER BY created_at_ms, label_id").fetchall()


@pytest.mark.parametrize("raw,expected", [
    ("pass", ("pass", None)), ("FAIL", ("fail", None)), ("yes", ("pass", None)), ("no", ("fail", None)),
    ("True", ("pass", None)), ("false", ("fail", None)), ("1", ("pass", 1.0)), ("0", ("fail", 0.0)),
    (True, ("pass", None)), (0, ("fail", 0.0)), (4, ("4", 4.0)), ("0.75", ("0.75", 0.75)), (-2.5, ("-2.5", -2.5)),
])
def test_values_are_normalised(raw, expected) -> None:
    assert labelling.normalise_value(raw) == expected


@pytest.mark.parametrize("raw", ["maybe", "", "nan", float("inf")])
def test_other_values_are_refused_with_the_accepted_forms(raw) -> None:
    with pytest.raises(InvalidInputError, match="pass' or 'fail'|finite number"):
        labelling.normalise_value(raw)


def test_a_correction_supersedes_and_the_original_row_is_never_changed(store: DuckDBTraceStore) -> None:
    first = label(store, "t01", "pass", rationale="looks right")
    before = rows(store)
    second = label(store, "t01", "no", reviewer="bo", rationale="cites a doc it never retrieved")
    after = rows(store)
    assert after[:1] == before  # the first row is untouched: append-only
    assert len(after) == 2
    assert second.superseded is not None and second.superseded.label_id == first.label.label_id
    assert second.label.value == "fail" and second.label.created_at_ms == 1_001  # stamped after the old one
    assert "supersedes" in second.message

    current = labelling.list_labels(DuckDBLabelStore(store), labelling.ListLabelsInput(criterion="correct"))
    assert [(r.trace_id, r.value, r.current) for r in current.labels] == [("t01", "fail", True)]
    assert current.criteria[0].model_dump() == {"criterion": "correct", "labelled_traces": 1, "passes": 0,
                                                "fails": 1, "graded": 0}
    history = labelling.list_labels(DuckDBLabelStore(store), labelling.ListLabelsInput(trace_ids=["t01"],
                                                                                 include_history=True))
    assert [(r.value, r.current, r.superseded_by) for r in history.labels] == [
        ("fail", True, None), ("pass", False, second.label.label_id)]


def test_the_filter_language_sees_the_current_label(store: DuckDBTraceStore) -> None:
    from tools.filters import parser

    label(store, "t02", "pass")
    label(store, "t02", "fail")
    where, params = store.where(parser.parse("labels.correct = 'fail'"), 0)
    with store.reading() as con:
        assert con.execute(f"SELECT trace_id FROM traces t WHERE {where}", params).fetchall() == [("t02",)]


def test_unknown_trace_or_bad_value_writes_nothing(store: DuckDBTraceStore) -> None:
    with pytest.raises(NotFoundError, match="No trace with id 't011'. Did you mean 't01'"):
        label(store, "t011", "pass")
    with pytest.raises(InvalidInputError, match="Label value 'meh'"):
        label(store, "t01", "meh")
    assert rows(store) == []


def test_list_labels_pages_and_rejects_unknown_criteria(store: DuckDBTraceStore) -> None:
    for i, tid in enumerate(["t01", "t02", "t03", "t04", "t05"]):
        label(store, tid, "pass", now_ms=1_000 + i)
    ls = DuckDBLabelStore(store)
    seen, token = [], None
    while True:
        page = labelling.list_labels(ls, labelling.ListLabelsInput(criterion="correct", limit=2, page_token=token))
        seen += [r.trace_id for r in page.labels]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["t05", "t04", "t03", "t02", "t01"]
    with pytest.raises(NotFoundError, match="No labels for criterion 'corect'. Did you mean 'correct'"):
        labelling.list_labels(ls, labelling.ListLabelsInput(criterion="corect"))


def import_file(store: DuckDBTraceStore, path: Path, fmt: str = "auto",
                reviewer: str | None = None) -> labelling.ImportLabelsResult:
    raw, source, strict = read_label_file(path, fmt)  # type: ignore[arg-type]
    return labelling.import_labels(DuckDBLabelStore(store), raw, source=source, default_reviewer=reviewer,
                                strict_values=strict, now_ms=5_000)


def test_csv_import_and_reimport_is_idempotent(store: DuckDBTraceStore, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("trace_id,criterion,value,reviewer,rationale,created_at\n"
                    "t01,correct,yes,ana,fine,2025-11-13T09:30:00Z\n"
                    "t02,correct,0,,wrong order,1763025000000\n"
                    "t03,helpful,4,bo,,\n")
    result = import_file(store, path, reviewer="carl")
    assert (result.imported, result.already_present, result.source) == (3, 0, "csv")
    assert result.criteria == {"correct": 2, "helpful": 1}
    stored = {(r[1], r[2]): r for r in rows(store)}
    assert stored[("t01", "correct")][3] == "pass" and stored[("t01", "correct")][7] == 1763026200000
    assert stored[("t02", "correct")][5] == "carl"  # the default reviewer fills the gap
    assert stored[("t03", "helpful")][3:5] == ("4", 4.0)
    raw, source, strict = read_label_file(path, "auto")
    again = labelling.import_labels(DuckDBLabelStore(store), raw, source=source, default_reviewer="carl",
                                 strict_values=strict, now_ms=9_000)  # later: rows without a time match too
    assert (again.imported, again.already_present) == (0, 3)


def test_a_bad_csv_row_means_nothing_is_written(store: DuckDBTraceStore, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("trace_id,criterion,value,reviewer\nt01,correct,pass,ana\nt02,correct,meh,ana\n"
                    "t99,correct,fail,ana\n")
    with pytest.raises(InvalidInputError) as info:
        import_file(store, path)
    message = str(info.value)
    assert message.startswith("Nothing was imported: 2 problem(s) in the csv input.")
    assert "labels.csv line 3: value 'meh' is neither pass/fail nor a number" in message
    assert "'t99'" in message and "Ingest those traces first" in message
    assert rows(store) == []


def test_csv_without_required_columns_says_which(store: DuckDBTraceStore, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("trace,verdict\nt01,pass\n")
    with pytest.raises(InvalidInputError, match="no 'criterion' column"):
        import_file(store, path)


def test_jsonl_import(store: DuckDBTraceStore, tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"trace_id": "t01", "criterion": "correct", "value": False, "reviewer": "ana"}) + "\n\n"
                    + json.dumps({"trace_id": "t02", "name": "correct", "label": "pass", "author": "bo",
                                  "comment": "ok"}) + "\n")
    result = import_file(store, path)
    assert (result.imported, result.source) == (2, "jsonl")
    assert {(r[1], r[3], r[5], r[6]) for r in rows(store)} == {("t01", "fail", "ana", None), ("t02", "pass", "bo", "ok")}
    path.write_text('{"trace_id": "t01", "criterion": "x", "value": "pass"}\nnot json\n')
    with pytest.raises(InvalidInputError, match="labels.jsonl line 2: not JSON"):
        import_file(store, path)


def test_langfuse_annotation_scores_import_as_labels(tmp_path: Path) -> None:
    (trace,) = list(read_path(DATA / "langfuse_feedback.trace.json"))
    store = DuckDBTraceStore(tmp_path / "s.duckdb")
    store.write_traces([trace.model_copy(update={"labels": []})])  # the traces came in without their labels
    result = import_file(store, DATA / "langfuse_feedback.trace.json", "langfuse")
    assert (result.imported, result.source) == (2, "langfuse")
    got = {r[2]: (r[3], r[4], r[5], r[6]) for r in rows(store)}
    assert got == {"helpfulness": ("fail", None, "reviewer-ann", "did not check the order"),
                   "rating": ("4", 4.0, "reviewer-bob", None)}


def test_mlflow_human_assessments_import_as_labels(tmp_path: Path) -> None:
    doc = json.loads((DATA / "mlflow_v2.json").read_text())
    doc["info"]["assessments"] = [
        {"assessment_name": "correct", "source": {"source_type": "HUMAN", "source_id": "ana@example.com"},
         "feedback": {"value": "no"}, "rationale": "answer is about Spark"},
        {"assessment_name": "expected", "source": {"source_type": "HUMAN"}, "expectation": {"value": "MLflow is"}},
        {"assessment_name": "concise", "source": {"source_type": "LLM_JUDGE"}, "feedback": {"value": "yes"}},
    ]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(doc))
    (trace,) = list(read_path(path))
    store = DuckDBTraceStore(tmp_path / "s.duckdb")
    store.write_traces([trace.model_copy(update={"labels": [], "scores": []})])
    result = import_file(store, path)
    assert (result.imported, result.skipped, result.source) == (1, 1, "mlflow")
    assert "expectation:expected" in result.skipped_examples[0]
    (row,) = rows(store)
    assert (row[2], row[3], row[5], row[6]) == ("correct", "fail", "ana@example.com", "answer is about Spark")
