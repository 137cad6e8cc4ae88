"""Rule-judge pushdown parity: every rule spec of ``tests/test_rule_spec_parity.py`` scored inside
ClickHouse (``server/storage/clickhouse/rule_sql.py``) gives the verdicts, scores and reasons that
DuckDB's SQL and the Python reference give on the same traces (demo traffic, ``small_set`` and
answers missing in each way exporters write "nothing"). Also: a dataset version's records are
judged only once its header has committed in the control plane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.demo.generate import generate_demo_traces
from server.storage.backend import Backend
from server.storage.clickhouse.client import next_version
from server.storage.factory import StoreUrl, build_backend
from tests.factory import small_set, trace
from tests.test_rule_spec_parity import NO_OUTPUT, SPECS
from tools.datasets.models import DatasetRecord, DatasetVersion
from tools.privacy.redaction import RedactionReport
from tools.errors import NotFoundError
from tools.judges import registry, rules
from tools.judges import specs as S
from tools.judges.ports import Target

NOW = 1_763_000_000_000
ALL = Target(filter=None, now_ms=NOW)
TRACES = generate_demo_traces(80, seed=5, now_ms=NOW) + small_set() + [
    trace(tid, 20 + i).model_copy(update={"response": answer}) for i, (tid, answer) in enumerate(NO_OUTPUT.items())]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, chdb_folder: Path) -> dict[str, Backend]:
    folder = tmp_path_factory.mktemp("parity")
    out = {"duckdb": build_backend(StoreUrl("duckdb", path=folder / "p.duckdb")),
           "chdb": build_backend(StoreUrl("chdb", path=chdb_folder, database="judges_parity"))}
    for backend in out.values():
        backend.traces.write_traces(TRACES)
    return out


def _stored(js, run_id: str) -> dict[str, tuple]:
    return {r["item_id"]: (r["verdict"], r["score"], r["rationale"])
            for r in js.run_results(run_id, judge=None, verdict=None, after=None, limit=1000)}


@pytest.mark.parametrize("name", SPECS)
def test_clickhouse_duckdb_and_python_agree_on_every_rule_spec(stores: dict[str, Backend], name: str) -> None:
    results = {}
    for engine, backend in stores.items():
        js = backend.features.judges
        ref = registry.define_judge(js, registry.DefineJudgeInput(
            name=name.replace("-", "_"), kind="rule", criterion=name, spec=SPECS[name]), now_ms=NOW).judge.ref
        judge = registry.resolve(js, ref)
        assert js.bulk_rule_scores(f"run-{name}", judge, ALL, NOW) == 97, engine
        assert js.bulk_rule_scores(f"run-{name}", judge, ALL, NOW) == 0, f"{engine}: scored items are skipped"
        results[engine] = _stored(js, f"run-{name}")
    items = stores["chdb"].features.judges.items(ALL, after=None, limit=1000)
    assert items == stores["duckdb"].features.judges.items(ALL, after=None, limit=1000)
    spec = S.parse_spec("rule", SPECS[name])
    python = {i.item_id: rules.evaluate(spec, i) for i in items}
    expected = {k: (v.label, v.score, v.reason) for k, v in python.items()}
    for engine, stored in results.items():
        assert {k: (v[0], v[2]) for k, v in stored.items()} == {k: (v[0], v[2]) for k, v in expected.items()}, engine
        assert all(stored[k][1] == pytest.approx(v[1]) for k, v in expected.items()), engine
    assert {"pass", "fail"} <= {v.label for v in python.values()}, f"{name} must pass and fail something"


def test_a_regex_re2_rejects_is_left_to_python(stores: dict[str, Backend]) -> None:
    js = stores["chdb"].features.judges
    ref = registry.define_judge(js, registry.DefineJudgeInput(name="lookbehind", kind="rule", criterion="c", spec={
        "type": "regex", "pattern": "(?<=order )\\d+"}), now_ms=NOW).judge.ref
    assert js.bulk_rule_scores("run-re2", registry.resolve(js, ref), ALL, NOW) is None


def test_a_dataset_target_reads_only_the_records_its_committed_header_names(stores: dict[str, Backend]) -> None:
    """A writer killed before its header committed leaves records under the version number the next
    writer takes: a judge run on that version must read the committed writer's records only."""
    backend = stores["chdb"]
    js, datasets = backend.features.judges, backend.features.datasets
    orphans = [("early", 1, "killed-writer", f"o{i}", t.trace_id, json.dumps({"question": "orphan"}), None, None,
                None, None, None, i, next_version(), 0) for i, t in enumerate(TRACES[:5])]
    backend.traces.client.insert("dataset_records", orphans, (
        "name", "version", "records_batch", "record_id", "trace_id", "inputs", "outputs", "expectations", "strata",
        "selection_probability", "redaction", "position", "row_version", "is_deleted"))
    with pytest.raises(NotFoundError, match="No dataset named 'early'"):
        js.resolve(Target(dataset="early@1"))   # records alone are no version
    records = [DatasetRecord(record_id=f"r{i}", trace_id=t.trace_id, inputs={"question": f"q{i}"},
                             outputs={"answer": t.response}) for i, t in enumerate(TRACES[:3])]
    datasets.write_version(DatasetVersion(name="early", version=1, created_at_ms=NOW, spec={}, content_hash="h",
                                          record_count=3, redaction=RedactionReport(enabled=False)), records)
    resolved = js.resolve(Target(dataset="early"))
    items = js.items(resolved.target, after=None, limit=10)
    assert (resolved.target.dataset, resolved.items) == ("early@1", 3)
    assert [(i.item_id, i.input, i.trace_id) for i in items] == [
        (f"r{i}", f"q{i}", t.trace_id) for i, t in enumerate(TRACES[:3])]
