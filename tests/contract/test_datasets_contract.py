"""The DatasetStore contract on every engine: building, versioning, editing, exporting datasets.

Each test runs on DuckDB, on chdb with its SQLite control plane, on chdb with a PostgreSQL control
plane and on a ClickHouse server when one is configured, through ``tools.datasets`` and the
``DatasetStore`` port only (``datasets_support`` holds the few helpers that know an engine's tables).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from server.exchange.datasets import confined_path, export_dataset, import_dataset
from server.storage.backend import Backend
from tests.contract.datasets_support import add_label, ds_of, raw_records_text, stored_counts
from tests.factory import trace
from tools.datasets.builder import (BuildDatasetInput, DiffDatasetsInput, GetDatasetInput, build_dataset_from_tags,
                                    diff_datasets, get_dataset, list_datasets)
from tools.datasets.merge import MergeRecordsInput, SetExpectationsInput, merge_records, set_expectations
from tools.datasets.models import DatasetRecord, DatasetVersion, SampleSpec
from tools.errors import ConflictError, FilterError, InvalidInputError, NotFoundError
from tools.privacy.redaction import RedactionReport

SECRET = "sk-proj-SEEDEDsecret0123456789abcdefXYZ"


@pytest.fixture
def fb(feature_backend: Backend) -> Backend:
    """small_set plus tags: t02/t05/t09 error_case, t07 slow (from the factory), t03 edge_case."""
    traces = feature_backend.traces
    traces.set_tag(trace_ids=["t02", "t05", "t09"], expr=None, key="eval_candidate", value="error_case", by="t",
                   now_ms=1)
    traces.set_tag(trace_ids=["t03"], expr=None, key="eval_candidate", value="edge_case", by="t", now_ms=1)
    return feature_backend


def build(backend: Backend, now_ms: int = 1000, **kw):  # type: ignore[no-untyped-def]
    return build_dataset_from_tags(ds_of(backend), BuildDatasetInput(**kw), now_ms=now_ms)


def test_a_dataset_from_one_tag_value_holds_those_traces_with_their_responses(fb: Backend) -> None:
    result = build(fb, name="errors", tags=["eval_candidate=error_case"])
    assert (result.version, result.created, result.record_count, result.selected) == (1, True, 3, 3)
    page = get_dataset(ds_of(fb), GetDatasetInput(name="errors"))
    assert [r.trace_id for r in page.records] == ["t09", "t05", "t02"]  # newest first
    t02 = ds_of(fb).records("errors", 1)[2]
    assert t02.inputs == {"messages": [{"role": "user", "content": "Where is my order?"}]}
    assert t02.outputs == {"content": ""}  # the response the agent produced, not a re-run
    assert t02.selection_probability == 1.0
    assert t02.strata["status"] == "ERROR" and t02.strata["stratum"] == "all"
    assert t02.strata["tool_path"] == "lookup_order"


def test_several_tag_selectors_select_any_and_a_filter_narrows(fb: Backend) -> None:
    assert build(fb, name="mix", tags=["eval_candidate=error_case", "eval_candidate=slow"]).record_count == 4
    narrowed = build(fb, name="prod_mix", tags=["eval_candidate"], filter="tags.environment = 'production'")
    assert {r.trace_id for r in ds_of(fb).records("prod_mix", 1)} == {"t02", "t03", "t07"}
    assert "environment" in (narrowed.filter_explained or "")
    assert build(fb, name="by_filter", filter="attributes.status = 'ERROR'").record_count == 3


def test_stratified_sampling_hits_the_proportions_and_records_their_probability(feature_backend: Backend) -> None:
    feature_backend.traces.write_traces([
        trace(f"b{i:03d}", 20 + i, status="ERROR" if i % 4 == 0 else "OK", tags={"eval_candidate": "sample"})
        for i in range(200)])
    result = build(feature_backend, name="strat", tags=["eval_candidate=sample"],
                   sample=SampleSpec(n=40, seed=5, stratify_by=["status"]))
    assert {s.stratum: (s.population, s.sampled) for s in result.strata} == {
        "status=ERROR": (50, 10), "status=OK": (150, 30)}
    records = ds_of(feature_backend).records("strat", 1)
    assert len(records) == 40 and {r.strata["stratum"]: r.selection_probability for r in records} == {
        "status=ERROR": 0.2, "status=OK": 0.2}
    equal = build(feature_backend, name="strat_eq", tags=["eval_candidate=sample"],
                  sample=SampleSpec(n=40, seed=5, stratify_by=["status"], allocation="equal"))
    assert {s.stratum: s.sampled for s in equal.strata} == {"status=ERROR": 20, "status=OK": 20}
    assert {r.strata["stratum"]: r.selection_probability for r in ds_of(feature_backend).records("strat_eq", 1)} == {
        "status=ERROR": 0.4, "status=OK": 20 / 150}


def test_building_twice_returns_the_same_version_and_writes_nothing(fb: Backend) -> None:
    first = build(fb, name="errors", tags=["eval_candidate=error_case"])
    before = stored_counts(fb)
    assert before == (1, 3)
    again = build(fb, name="errors", tags=["eval_candidate=error_case"], now_ms=2000)
    assert (again.version, again.created, again.content_hash) == (1, False, first.content_hash)
    assert stored_counts(fb) == before


def test_new_tagged_traces_make_a_new_version_and_the_old_one_stays_as_it_was(fb: Backend) -> None:
    ds = ds_of(fb)
    build(fb, name="errors", tags=["eval_candidate=error_case"])
    v1 = [r.model_dump() for r in ds.records("errors", 1)]
    fb.traces.set_tag(trace_ids=["t01"], expr=None, key="eval_candidate", value="error_case", by="t", now_ms=5)
    second = build(fb, name="errors", tags=["eval_candidate=error_case"], now_ms=2000)
    assert (second.version, second.created, second.record_count) == (2, True, 4)
    assert [r.model_dump() for r in ds.records("errors", 1)] == v1
    change = diff_datasets(ds, DiffDatasetsInput(name="errors"))
    assert (change.a, change.b, change.added, change.removed, change.changed_count) == (1, 2, ["t01"], [], 0)
    assert [(v.version, v.parent_version, v.record_count) for v in ds.versions("errors")] == [(1, None, 3), (2, 1, 4)]
    summary = list_datasets(ds).datasets
    assert [(s.name, s.latest_version, s.versions, s.record_count) for s in summary] == [("errors", 2, [1, 2], 4)]


def test_a_different_definition_under_an_existing_name_is_refused_unless_asked(fb: Backend) -> None:
    build(fb, name="errors", tags=["eval_candidate=error_case"])
    before = stored_counts(fb)
    with pytest.raises(ConflictError, match=r"Dataset 'errors' already exists \(latest version 1\) with a "
                                            r"different definition"):
        build(fb, name="errors", tags=["eval_candidate"])
    assert stored_counts(fb) == before
    allowed = build(fb, name="errors", tags=["eval_candidate"], new_version=True)
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
def test_bad_input_gets_a_clear_error_and_writes_nothing(fb: Backend, kwargs: dict, error: type,
                                                         message: str) -> None:
    build(fb, name="kept", tags=["eval_candidate=slow"])
    before = stored_counts(fb)
    with pytest.raises(error) as raised:
        build(fb, **{"name": "x", **kwargs})
    assert message in str(raised.value)
    assert stored_counts(fb) == before == (1, 1)


def test_unknown_names_and_versions_suggest_what_exists(fb: Backend) -> None:
    build(fb, name="regressions", tags=["eval_candidate"])
    with pytest.raises(NotFoundError, match=r"No dataset named 'regresions'. Did you mean 'regressions'\? "
                                            r"Existing: regressions."):
        get_dataset(ds_of(fb), GetDatasetInput(name="regresions"))
    with pytest.raises(NotFoundError, match=r"Dataset 'regressions' has no version 4. Versions: 1 \(latest 1\)."):
        get_dataset(ds_of(fb), GetDatasetInput(name="regressions@4"))
    assert ds_of(fb).records("regressions", 4) == [] and ds_of(fb).versions("nope") == []


def test_redaction_never_stores_a_seeded_secret(feature_backend: Backend) -> None:
    feature_backend.traces.write_traces([
        trace("p1", 30, question=f"My key is {SECRET} and mail is jane.doe@example.com", tags={"eval_candidate": "pii"},
              answer="I emailed jane.doe@example.com; card 4111 1111 1111 1111 noted."),
        trace("p2", 31, question="SSN 123-45-6789, call (415) 555-2671 from 10.1.2.3", tags={"eval_candidate": "pii"}),
    ])
    result = build(feature_backend, name="pii", tags=["eval_candidate=pii"])
    assert result.redaction.counts == {"CARD": 1, "EMAIL": 1, "IP": 1, "PHONE": 1, "SECRET": 1, "SSN": 1}
    stored = raw_records_text(feature_backend)
    assert "<SECRET_1>" in stored
    for leaked in (SECRET, "jane.doe@example.com", "4111 1111 1111 1111", "123-45-6789", "555-2671", "10.1.2.3"):
        assert leaked not in stored
    p1 = ds_of(feature_backend).records("pii", 1)[1]
    assert p1.inputs["messages"][0]["content"] == "My key is <SECRET_1> and mail is <EMAIL_1>"
    assert p1.outputs == {"content": "I emailed <EMAIL_1>; card <CARD_1> noted."}
    assert p1.redaction == {"CARD": 1, "EMAIL": 1, "SECRET": 1}


def test_near_identical_requests_can_be_collapsed(feature_backend: Backend) -> None:
    feature_backend.traces.write_traces([trace("d1", 30, question="Where is order 123?", tags={"c": "1"}),
                                         trace("d2", 31, question="where is ORDER 456 ?!", tags={"c": "1"}),
                                         trace("d3", 32, question="How do I reset my password?", tags={"c": "1"})])
    result = build(feature_backend, name="dups", tags=["c"], collapse_near_duplicates=True)
    assert (result.record_count, result.duplicates_collapsed) == (2, 1)
    assert {r.trace_id for r in ds_of(feature_backend).records("dups", 1)} == {"d2", "d3"}  # the newest is kept


def test_labels_become_expectations_and_edits_make_new_versions(fb: Backend) -> None:
    ds = ds_of(fb)
    add_label(fb, "l0", "t02", "correctness", "fail", 1)
    add_label(fb, "l1", "t02", "correctness", "pass", 2)  # the correction wins
    build(fb, name="errors", tags=["eval_candidate=error_case"])
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
    rebuilt = build(fb, name="errors", tags=["eval_candidate=error_case"], now_ms=5000)
    kept = {r.record_id: r for r in ds.records("errors", rebuilt.version)}
    assert kept["t05"].expectations["expected_facts"] == ["order shipped", "tracking sent"]
    assert any(r.trace_id is None for r in kept.values()) and "t11" not in kept
    assert rebuilt.expectations_carried_forward == 2


def test_edits_with_unknown_records_write_nothing(fb: Backend) -> None:
    ds = ds_of(fb)
    build(fb, name="errors", tags=["eval_candidate=error_case"])
    before = stored_counts(fb)
    with pytest.raises(NotFoundError, match=r"Dataset 'errors' has no record\(s\) 't5'. Did you mean 't05'\?"):
        set_expectations(ds, SetExpectationsInput(name="errors", record_ids=["t5"], expectations={"k": 1}), now_ms=2)
    with pytest.raises(NotFoundError, match=r"No trace with id 'nope'"):
        merge_records(ds, MergeRecordsInput(name="errors", records=[{"trace_id": "nope"}]), now_ms=2)
    with pytest.raises(NotFoundError, match="Pass create_if_missing=true"):
        merge_records(ds, MergeRecordsInput(name="eror", records=[{"inputs": {"q": "x"}}]), now_ms=2)
    with pytest.raises(InvalidInputError, match="expected_facts must be a list of strings"):
        merge_records(ds, MergeRecordsInput(name="errors", records=[
            {"trace_id": "t02", "expectations": {"expected_facts": "one"}}]), now_ms=2)
    assert stored_counts(fb) == before == (1, 3)


def test_pages_are_budgeted_and_say_how_to_read_the_rest(fb: Backend) -> None:
    fb.traces.set_tag(trace_ids=["t12"], expr=None, key="eval_candidate", value="long", by="t", now_ms=1)
    build(fb, name="long", tags=["eval_candidate=long", "eval_candidate=error_case"])
    page = get_dataset(ds_of(fb), GetDatasetInput(name="long", limit=2, max_chars=3000))
    assert page.next_offset == 2 and page.dataset.record_count == 4
    long = page.records[0]
    assert long.trace_id == "t12" and long.truncated
    assert "…[truncated: " in long.outputs and "call get_dataset(name='long', version=1, offset=0, limit=1" in long.outputs
    assert len(long.outputs) < 1200
    rest = get_dataset(ds_of(fb), GetDatasetInput(name="long", offset=2, limit=2))
    assert [r.trace_id for r in rest.records] == ["t05", "t02"] and rest.next_offset is None


def test_jsonl_export_reimports_to_the_same_records_and_stays_in_the_exports_folder(fb: Backend) -> None:
    ds = ds_of(fb)
    build(fb, name="golden", tags=["eval_candidate"])
    exported = export_dataset(ds, "golden", None, "jsonl")
    assert Path(exported.path or "").parent == ds.exports_dir and exported.record_count == 5
    path = confined_path(ds, "golden@v1.jsonl")
    imported = import_dataset(ds, "golden_copy", path, redact=True, new_version=False, description=None, now_ms=30)
    assert imported.content_hash == ds.versions("golden")[-1].content_hash
    assert [r.model_dump() for r in ds.records("golden_copy", 1)] == [r.model_dump() for r in ds.records("golden", 1)]
    with pytest.raises(InvalidInputError, match="plain file name inside the store's exports folder"):
        confined_path(ds, "../golden@v1.jsonl")


# -- concurrency: a version is visible only once its header commits; two writers never merge ---------------
def _header(name: str, version: int, records: list[DatasetRecord]) -> DatasetVersion:
    return DatasetVersion(name=name, version=version, created_at_ms=version, spec={"origin": "test"},
                          content_hash=f"h{version}-{records[0].record_id}", record_count=len(records),
                          redaction=RedactionReport(enabled=False))


def _records(tag: str, n: int) -> list[DatasetRecord]:
    """Records with the same ids across writers but different content, so a merge would show."""
    return [DatasetRecord(record_id=f"r{i}", inputs={"writer": tag, "i": i}) for i in range(n)]


def test_two_writers_of_one_version_at_once_get_one_version_holding_only_the_winners_records(
        feature_backend: Backend) -> None:
    ds = ds_of(feature_backend)
    both_ready = threading.Barrier(2, timeout=60)
    outcomes: dict[str, str] = {}

    def write(tag: str, n: int) -> None:
        both_ready.wait()
        try:
            ds.write_version(_header("race", 1, _records(tag, n)), _records(tag, n))
            outcomes[tag] = "written"
        except ConflictError:
            outcomes[tag] = "conflict"

    threads = [threading.Thread(target=write, args=(tag, n)) for tag, n in (("a", 3), ("b", 5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(outcomes.values()) == ["conflict", "written"]
    winner = next(tag for tag, outcome in outcomes.items() if outcome == "written")
    stored = ds.records("race", 1)
    assert [r.model_dump() for r in stored] == [r.model_dump() for r in _records(winner, 3 if winner == "a" else 5)]
    assert [v.record_count for v in ds.versions("race")] == [len(stored)]


def test_writers_that_repeat_after_a_conflict_get_distinct_versions_with_their_own_records(fb: Backend) -> None:
    ds = ds_of(fb)
    build(fb, name="shared", tags=["eval_candidate=error_case"])
    start = threading.Barrier(4, timeout=60)
    errors: list[BaseException] = []

    def add(i: int) -> None:
        start.wait()
        for _attempt in range(20):
            try:
                merge_records(ds, MergeRecordsInput(name="shared", records=[
                    {"inputs": {"question": f"writer {i}"}, "expectations": {"expected_response": str(i)}}]),
                              now_ms=2000 + i)
                return
            except ConflictError:
                continue
            except BaseException as error:  # noqa: BLE001 (reported below)
                errors.append(error)
                return

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    versions = ds.versions("shared")
    assert [v.version for v in versions] == [1, 2, 3, 4, 5]
    assert [v.record_count for v in versions] == [3, 4, 5, 6, 7]  # each holds its parent's plus its own
    for v in versions:
        records = ds.records("shared", v.version)
        assert len(records) == v.record_count  # never records of another version's write
        assert len({r.record_id for r in records}) == len(records)
    written = {r.expectations["expected_response"] for r in ds.records("shared", 5) if r.trace_id is None}
    assert written == {"0", "1", "2", "3"}
