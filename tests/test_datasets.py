"""Dataset building, versioning and editing against the real DuckDB store (no MCP in between)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.storage.duckdb.datasets_sql import DuckDBDatasetStore
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import dataset_counts, stored_rows, trace
from tools.datasets.merge import MergeRecordsInput, SetExpectationsInput, merge_records, set_expectations
from tools.datasets.models import SampleSpec
from tools.datasets.builder import (BuildDatasetInput, DiffDatasetsInput, GetDatasetInput, build_dataset_from_tags,
                            diff_datasets, get_dataset, list_datasets)
from tools.errors import ConflictError, FilterError, InvalidInputError, NotFoundError
from tools.models import Label

SECRET = "sk-proj-SEEDEDsecret0123456789abcdefXYZ"


@pytest.fixture
def ds(store: DuckDBTraceStore) -> DuckDBDatasetStore:
    """The small set plus tags: t02/t05/t09 error_case, t07 slow (from the factory), t03 edge_case."""
    store.set_tag(trace_ids=["t02", "t05", "t09"], expr=None, key="eval_candidate", value="error_case", by="t",
                  now_ms=1)
    store.set_tag(trace_ids=["t03"], expr=None, key="eval_candidate", value="edge_case", by="t", now_ms=1)
    return DuckDBDatasetStore(store)


def build(ds: DuckDBDatasetStore, now_ms: int = 1000, **kw):
    return build_dataset_from_tags(ds, BuildDatasetInput(**kw), now_ms=now_ms)


def test_a_dataset_from_one_tag_value_holds_those_traces_with_their_responses(ds: DuckDBDatasetStore) -> None:
    result = build(ds, name="errors", tags=["eval_candidate=error_case"])
    assert (result.version, result.created, result.record_count, result.selected) == (1, True, 3, 3)
    page = get_dataset(ds, GetDatasetInput(name="errors"))
    assert [r.trace_id for r in page.records] == ["t09", "t05", "t02"]  # newest first
    t02 = ds.records("errors", 1)[2]
    assert t02.inputs == {"messages": [{"role": "user", "content": "Where is my order?"}]}
    assert t02.outputs == {"content": ""}  # the response the agent produced, not a re-run
    assert t02.selection_probability == 1.0
    assert t02.strata["status"] == "ERROR" and t02.strata["stratum"] == "all"


def test_several_tag_selectors_select_any_and_a_filter_narrows(ds: DuckDBDatasetStore) -> None:
    both = build(ds, name="mix", tags=["eval_candidate=error_case", "eval_candidate=slow"])
    assert both.record_count == 4
    narrowed = build(ds, name="prod_mix", tags=["eval_candidate"], filter="tags.environment = 'production'")
    assert {r.trace_id for r in ds.records("prod_mix", 1)} == {"t02", "t03", "t07"}
    assert "environment" in (narrowed.filter_explained or "")
    by_filter = build(ds, name="by_filter", filter="attributes.status = 'ERROR'")
    assert by_filter.record_count == 3


def test_stratified_sampling_on_a_larger_store_hits_the_proportions(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "big.duckdb")
    store.write_traces([trace(f"b{i:03d}", i, status="ERROR" if i % 4 == 0 else "OK",
                              tags={"eval_candidate": "sample"}) for i in range(200)])
    ds = DuckDBDatasetStore(store)
    result = build(ds, name="strat", tags=["eval_candidate"], sample=SampleSpec(n=40, seed=5, stratify_by=["status"]))
    assert {s.stratum: (s.population, s.sampled) for s in result.strata} == {
        "status=ERROR": (50, 10), "status=OK": (150, 30)}
    probabilities = {r.strata["stratum"]: r.selection_probability for r in ds.records("strat", 1)}
    assert probabilities == {"status=ERROR": 0.2, "status=OK": 0.2}
    equal = build(ds, name="strat_eq", tags=["eval_candidate"],
                  sample=SampleSpec(n=40, seed=5, stratify_by=["status"], allocation="equal"))
    assert {s.stratum: s.sampled for s in equal.strata} == {"status=ERROR": 20, "status=OK": 20}
    assert {r.strata["stratum"]: r.selection_probability for r in ds.records("strat_eq", 1)} == {
        "status=ERROR": 0.4, "status=OK": 20 / 150}


def test_building_twice_returns_the_same_version_and_writes_nothing(ds: DuckDBDatasetStore, db_path: Path) -> None:
    first = build(ds, name="errors", tags=["eval_candidate=error_case"])
    before = dataset_counts(db_path)
    again = build(ds, name="errors", tags=["eval_candidate=error_case"], now_ms=2000)
    assert (again.version, again.created, again.content_hash) == (1, False, first.content_hash)
    assert dataset_counts(db_path) == before


def test_new_tagged_traces_make_a_new_version_and_the_old_one_stays_as_it_was(ds: DuckDBDatasetStore) -> None:
    build(ds, name="errors", tags=["eval_candidate=error_case"])
    v1 = [r.model_dump() for r in ds.records("errors", 1)]
    ds.traces.set_tag(trace_ids=["t01"], expr=None, key="eval_candidate", value="error_case", by="t", now_ms=5)
    second = build(ds, name="errors", tags=["eval_candidate=error_case"], now_ms=2000)
    assert (second.version, second.created, second.record_count) == (2, True, 4)
    assert [r.model_dump() for r in ds.records("errors", 1)] == v1
    change = diff_datasets(ds, DiffDatasetsInput(name="errors"))
    assert (change.a, change.b, change.added, change.removed, change.changed_count) == (1, 2, ["t01"], [], 0)


def test_a_different_definition_under_an_existing_name_is_refused_unless_asked(ds: DuckDBDatasetStore,
                                                                                db_path: Path) -> None:
    build(ds, name="errors", tags=["eval_candidate=error_case"])
    before = dataset_counts(db_path)
    with pytest.raises(ConflictError, match=r"Dataset 'errors' already exists \(latest version 1\) with a "
                                            r"different definition \(selection differ"):
        build(ds, name="errors", tags=["eval_candidate"])
    assert dataset_counts(db_path) == before
    allowed = build(ds, name="errors", tags=["eval_candidate"], new_version=True)
    assert (allowed.version, allowed.record_count) == (2, 5)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"tags": ["eval_candiate"]}, InvalidInputError,
     "No trace has tag 'eval_candiate'. Did you mean 'eval_candidate'? Tag keys in the store: environment, "
     "eval_candidate."),
    ({"tags": ["eval_candidate=eror_case"]}, InvalidInputError,
     "No trace has tag 'eval_candidate' = 'eror_case'. Did you mean 'error_case'?"),
    ({"filter": "attributes.status = 'IN_PROGRESS'"}, InvalidInputError, "The selection matched no traces"),
    ({"tags": ["eval_candidate"], "sample": SampleSpec(n=5, stratify_by=["stauts"])}, InvalidInputError,
     "Unknown stratify_by dimension 'stauts'. Did you mean 'status'?"),
    ({"tags": ["eval_candidate"], "sample": SampleSpec(n=5, stratify_by=["tag:nope"])}, InvalidInputError,
     "stratify_by 'tag:nope': no trace has tag 'nope'."),
    ({"filter": "attributes.stauts = 'OK'"}, FilterError, "Unknown field 'attributes.stauts'"),
    ({"name": "bad name!", "tags": ["eval_candidate"]}, InvalidInputError, "Dataset name 'bad name!' is not valid"),
])
def test_bad_input_gets_a_clear_error_and_writes_nothing(ds: DuckDBDatasetStore, db_path: Path, kwargs: dict,
                                                         error: type, message: str) -> None:
    before = dataset_counts(db_path)
    with pytest.raises(error) as raised:
        build(ds, **{"name": "x", **kwargs})
    assert message in str(raised.value)
    assert dataset_counts(db_path) == before


def test_unknown_names_and_versions_suggest_what_exists(ds: DuckDBDatasetStore) -> None:
    build(ds, name="regressions", tags=["eval_candidate"])
    with pytest.raises(NotFoundError, match=r"No dataset named 'regresions'. Did you mean 'regressions'\? "
                                            r"Existing: regressions."):
        get_dataset(ds, GetDatasetInput(name="regresions"))
    with pytest.raises(NotFoundError, match=r"Dataset 'regressions' has no version 4. Versions: 1 \(latest 1\)."):
        get_dataset(ds, GetDatasetInput(name="regressions@4"))


def test_redaction_never_stores_a_seeded_secret(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "pii.duckdb")
    store.write_traces([
        trace("p1", 1, question=f"My key is {SECRET} and mail is jane.doe@example.com", tags={"eval_candidate": "pii"},
              answer="I emailed jane.doe@example.com; card 4111 1111 1111 1111 noted."),
        trace("p2", 2, question="SSN 123-45-6789, call (415) 555-2671 from 10.1.2.3", tags={"eval_candidate": "pii"}),
    ])
    ds = DuckDBDatasetStore(store)
    result = build(ds, name="pii", tags=["eval_candidate"])
    assert result.redaction.counts == {"CARD": 1, "EMAIL": 1, "IP": 1, "PHONE": 1, "SECRET": 1, "SSN": 1}
    assert result.redaction.records_changed == 2
    stored = json.dumps(stored_rows(tmp_path / "pii.duckdb", "SELECT * FROM dataset_records"))
    for leaked in (SECRET, "jane.doe@example.com", "4111 1111 1111 1111", "123-45-6789", "555-2671", "10.1.2.3"):
        assert leaked not in stored
    p1 = ds.records("pii", 1)[1]
    assert p1.inputs["messages"][0]["content"] == "My key is <SECRET_1> and mail is <EMAIL_1>"
    assert p1.outputs == {"content": "I emailed <EMAIL_1>; card <CARD_1> noted."}
    assert p1.redaction == {"CARD": 1, "EMAIL": 1, "SECRET": 1}


def test_near_identical_requests_can_be_collapsed(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "dup.duckdb")
    store.write_traces([trace("d1", 1, question="Where is order 123?", tags={"c": "1"}),
                        trace("d2", 2, question="where is ORDER 456 ?!", tags={"c": "1"}),
                        trace("d3", 3, question="How do I reset my password?", tags={"c": "1"})])
    ds = DuckDBDatasetStore(store)
    result = build(ds, name="dups", tags=["c"], collapse_near_duplicates=True)
    assert (result.record_count, result.duplicates_collapsed) == (2, 1)
    assert {r.trace_id for r in ds.records("dups", 1)} == {"d2", "d3"}  # the newest of a group is kept


def test_labels_become_expectations_and_edits_make_new_versions(ds: DuckDBDatasetStore) -> None:
    ds.traces.write_traces([trace("t02", 1, status="ERROR", answer="", duration_ms=9000, tags={
        "environment": "production", "eval_candidate": "error_case"})])
    with ds.traces.writing() as con:
        for i, (value, at) in enumerate((("fail", 1), ("pass", 2))):
            label = Label(trace_id="t02", criterion="correctness", value=value, created_at_ms=at)
            con.execute("INSERT INTO labels VALUES ($id, $t, $c, $v, NULL, NULL, NULL, $at, 'manual')",
                        {"id": f"l{i}", "t": label.trace_id, "c": label.criterion, "v": label.value, "at": at})
    build(ds, name="errors", tags=["eval_candidate=error_case"])
    assert {r.trace_id: r.expectations for r in ds.records("errors", 1)}["t02"] == {"correctness": "pass"}

    set_expectations(ds, SetExpectationsInput(name="errors", record_ids=["t05"], expectations={
        "expected_facts": ["order shipped"], "expected_response": "Ask bob@example.com"}), now_ms=2000)
    merged = merge_records(ds, MergeRecordsInput(name="errors", records=[
        {"trace_id": "t05", "expectations": {"expected_facts": ["order shipped", "tracking sent"]}},
        {"trace_id": "t11"},
        {"inputs": {"question": "Return window?"}, "expectations": {"expected_response": "30 days"}}]), now_ms=3000)
    assert (merged.version, merged.record_count) == (3, 5)
    records = {r.record_id: r for r in ds.records("errors", 3)}
    assert records["t05"].expectations == {"expected_facts": ["order shipped", "tracking sent"],
                                           "expected_response": "Ask <EMAIL_1>"}
    assert records["t11"].inputs["messages"][0]["content"] == "Track shipment 55"
    assert records["t11"].selection_probability is None  # added by hand, not sampled
    again = merge_records(ds, MergeRecordsInput(name="errors", records=[{"trace_id": "t11"}]), now_ms=4000)
    assert (again.version, again.created) == (3, False)

    # A rebuild with the same definition keeps expectations and hand-written records.
    rebuilt = build(ds, name="errors", tags=["eval_candidate=error_case"], now_ms=5000)
    kept = {r.record_id: r for r in ds.records("errors", rebuilt.version)}
    assert kept["t05"].expectations["expected_facts"] == ["order shipped", "tracking sent"]
    assert any(r.trace_id is None for r in kept.values()) and "t11" not in kept
    assert rebuilt.expectations_carried_forward == 2


def test_edits_with_unknown_records_write_nothing(ds: DuckDBDatasetStore, db_path: Path) -> None:
    build(ds, name="errors", tags=["eval_candidate=error_case"])
    before = dataset_counts(db_path)
    with pytest.raises(NotFoundError, match=r"Dataset 'errors' has no record\(s\) 't5'. Did you mean 't05'\?"):
        set_expectations(ds, SetExpectationsInput(name="errors", record_ids=["t5"], expectations={"k": 1}), now_ms=2)
    with pytest.raises(NotFoundError, match=r"No trace with id 'nope'"):
        merge_records(ds, MergeRecordsInput(name="errors", records=[{"trace_id": "nope"}]), now_ms=2)
    with pytest.raises(NotFoundError, match="Pass create_if_missing=true"):
        merge_records(ds, MergeRecordsInput(name="eror", records=[{"inputs": {"q": "x"}}]), now_ms=2)
    with pytest.raises(InvalidInputError, match="expected_facts must be a list of strings"):
        merge_records(ds, MergeRecordsInput(name="errors", records=[
            {"trace_id": "t02", "expectations": {"expected_facts": "one"}}]), now_ms=2)
    assert dataset_counts(db_path) == before


def test_pages_are_budgeted_and_say_how_to_read_the_rest(ds: DuckDBDatasetStore) -> None:
    ds.traces.set_tag(trace_ids=["t12"], expr=None, key="eval_candidate", value="long", by="t", now_ms=1)
    build(ds, name="long", tags=["eval_candidate=long", "eval_candidate=error_case"])
    page = get_dataset(ds, GetDatasetInput(name="long", limit=2, max_chars=3000))
    assert page.next_offset == 2 and page.dataset.record_count == 4
    long = page.records[0]
    assert long.trace_id == "t12" and long.truncated
    assert "…[truncated: " in long.outputs and "call get_dataset(name='long', version=1, offset=0, limit=1" in long.outputs
    assert len(long.outputs) < 1200
    assert list_datasets(ds).datasets[0].name == "long"
