"""profile_traces on real DuckDB files: percentiles against numpy, self time on hand-built span trees
with known answers (nesting, parallel siblings, a child outliving its parent), tokens and cost,
group_by, the empty selection, one trace, errors verbatim, the Langfuse fixtures, MCP and CLI."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mcp import Client

from server.cli.main import cli
from server.ingestion.pipeline import ingest
from server.ingestion import read_path
from server.mcp.app import build_app
from server.storage.duckdb.analytics_sql import DuckDBAnalytics
from server.storage.duckdb.store import DuckDBTraceStore
from tests.conftest import FIXTURES
from tests.factory import BASE_MS, span
from tools.errors import InvalidInputError, NotFoundError
from tools.models import Trace
from tools.analysis.profiling import ProfileTracesInput, ProfileTracesResult, profile_traces

NOW = BASE_MS + 30 * 86_400_000


def make(trace_id: str, spans: list, *, dur: int, minute: int = 0, status: str = "OK", env: str = "production",
         model: str = "gpt-4o-mini", tags: dict[str, str] | None = None, tokens: tuple[int, int] = (100, 10)) -> Trace:
    return Trace(trace_id=trace_id, timestamp_ms=BASE_MS + minute * 60_000, execution_time_ms=dur, status=status,
                 name="agent", environment=env, model=model, input_tokens=tokens[0], output_tokens=tokens[1],
                 spans=spans, tags=tags or {}, source="test")


def tree(trace_id: str, minute: int, parts: list[tuple], *, dur: int, **kw) -> Trace:
    """parts: (suffix, parent suffix | None, type, start_ms, dur_ms, extra kwargs) relative to the trace start."""
    start = BASE_MS + minute * 60_000
    spans = [span(f"{trace_id}-{sid}", f"{trace_id}-{parent}" if parent else None, kind, start + s, d, **extra)
             for sid, parent, kind, s, d, extra in parts]
    return make(trace_id, spans, dur=dur, minute=minute, **kw)


def analytics(tmp_path: Path, traces: list[Trace]) -> DuckDBAnalytics:
    store = DuckDBTraceStore(tmp_path / "p.duckdb")
    store.write_traces(traces)
    return DuckDBAnalytics(store)


def run(store: DuckDBAnalytics, **kw) -> ProfileTracesResult:
    return profile_traces(store, ProfileTracesInput(**kw), now_ms=NOW)


def rows(result_rows) -> dict[str, object]:
    return {r.key: r for r in result_rows}


#: root 0-1000 | llm 100-400 | tool 500-900 > retriever 600-800: every instant counted once.
NESTED = [("root", None, "AGENT", 0, 1000, {"name": "agent"}),
          ("llm", "root", "CHAT_MODEL", 100, 300, {"name": "chat", "model": "gpt-4o-mini", "tokens": (1000, 200)}),
          ("tool", "root", "TOOL", 500, 400, {"name": "search", "tool": "search"}),
          ("ret", "tool", "RETRIEVER", 600, 200, {"name": "vector_lookup"})]
#: root 0-1000 | tool A 100-500 and tool B 300-700 overlap | llm 800-900.
PARALLEL = [("root", None, "AGENT", 0, 1000, {"name": "agent"}),
            ("a", "root", "TOOL", 100, 400, {"name": "search", "tool": "search"}),
            ("b", "root", "TOOL", 300, 400, {"name": "fetch", "tool": "fetch"}),
            ("llm", "root", "LLM", 800, 100, {"name": "chat", "model": "gpt-4o", "tokens": (2000, 100)})]


def test_self_time_never_counts_nested_time_twice(tmp_path: Path) -> None:
    result = run(analytics(tmp_path, [tree("n1", 0, NESTED, dur=1000)]))
    by_type = rows(result.by_span_type)
    assert {k: r.self_ms for k, r in by_type.items()} == pytest.approx(
        {"AGENT": 300, "CHAT_MODEL": 300, "TOOL": 200, "RETRIEVER": 200})
    assert {k: r.total_ms for k, r in by_type.items()} == pytest.approx(
        {"AGENT": 1000, "CHAT_MODEL": 300, "TOOL": 400, "RETRIEVER": 200})
    assert {k: r.share_of_wall for k, r in by_type.items()} == pytest.approx(
        {"AGENT": 0.3, "CHAT_MODEL": 0.3, "TOOL": 0.2, "RETRIEVER": 0.2})
    assert [r.key for r in result.by_span_type][:2] == ["AGENT", "CHAT_MODEL"]  # ties: more calls, then name
    assert sum(r.share_of_wall for r in result.by_span_type) == pytest.approx(1.0)


def test_parallel_siblings_share_the_wall_clock_evenly(tmp_path: Path) -> None:
    result = run(analytics(tmp_path, [tree("p1", 0, PARALLEL, dur=1000)]))
    assert {k: r.self_ms for k, r in rows(result.by_span_name).items()} == pytest.approx(
        {"agent": 300, "search": 300, "fetch": 300, "chat": 100})
    assert {k: r.self_ms for k, r in rows(result.by_tool).items()} == pytest.approx({"search": 300, "fetch": 300})
    assert sum(r.self_ms for r in result.by_span_type) == pytest.approx(1000)


def test_a_child_outliving_its_parent_is_counted_once(tmp_path: Path) -> None:
    parts = [("root", None, "AGENT", 0, 500, {}), ("late", "root", "TOOL", 400, 300, {"tool": "slow"})]
    result = run(analytics(tmp_path, [tree("o1", 0, parts, dur=700)]))
    assert {k: r.self_ms for k, r in rows(result.by_span_type).items()} == pytest.approx({"AGENT": 400, "TOOL": 300})


def test_trace_percentiles_error_rate_and_tail_match_numpy(tmp_path: Path) -> None:
    rng = random.Random(7)
    durations = [rng.randint(200, 20_000) for _ in range(57)]
    traces = [tree(f"d{i:02d}", i, [("root", None, "AGENT", 0, d, {})], dur=d, status="ERROR" if i % 10 == 0 else "OK")
              for i, d in enumerate(durations)]
    result = run(analytics(tmp_path, traces))
    p50, p95, p99 = np.percentile(durations, [50, 95, 99])
    assert (result.latency.p50_ms, result.latency.p95_ms, result.latency.p99_ms) == pytest.approx((p50, p95, p99))
    assert (result.trace_count, result.error_count) == (57, 6)
    assert result.error_rate == pytest.approx(6 / 57)
    tail = [d for d in durations if d >= p95]
    assert (result.p95_tail.traces, result.p95_tail.wall_time_ms) == (len(tail), pytest.approx(sum(tail)))
    assert result.wall_time_ms == sum(durations)
    assert rows(result.by_span_type)["AGENT"].p95_ms == pytest.approx(p95)


def test_the_slow_tail_names_what_makes_it_slow(tmp_path: Path) -> None:
    fast = [tree(f"f{i:02d}", i, [("root", None, "AGENT", 0, 1000, {}),
                                 ("llm", "root", "LLM", 0, 900, {"model": "gpt-4o"})], dur=1000) for i in range(19)]
    slow = tree("slow", 30, [("root", None, "AGENT", 0, 10_000, {}),
                             ("ret", "root", "RETRIEVER", 1000, 6200, {"name": "vector_lookup"})], dur=10_000)
    result = run(analytics(tmp_path, [*fast, slow]))
    assert result.p95_tail.traces == 1
    assert rows(result.by_span_type)["RETRIEVER"].share_of_p95_tail == pytest.approx(0.62)
    assert "RETRIEVER is 62% of p95-tail latency (the 1 trace(s) at or above p95 = " in result.findings[2]
    assert result.by_span_type[0].key == "LLM"        # over all traces LLM still leads
    assert result.findings[1].startswith("Self time by span type: LLM ")


def test_tokens_skip_roll_ups_and_cost_uses_estimates_or_given_prices(tmp_path: Path) -> None:
    parts = [("root", None, "AGENT", 0, 1000, {"model": "gpt-4o", "tokens": (3000, 300)}),   # roll-up of the two
             ("a", "root", "LLM", 0, 400, {"model": "gpt-4o-mini-2024-07-18", "tokens": (1000, 200)}),
             ("b", "root", "LLM", 500, 400, {"model": "openai/my-finetune", "tokens": (2000, 100)})]
    store = analytics(tmp_path, [tree("c1", 0, parts, dur=1000)])
    result = run(store)
    llm = rows(result.by_span_type)["LLM"]
    assert (llm.input_tokens, llm.output_tokens) == (3000, 300)
    assert llm.p95_input_tokens == pytest.approx(np.percentile([1000, 2000], 95))
    assert rows(result.by_span_type)["AGENT"].input_tokens is None
    mini = (1000 * 0.15 + 200 * 0.60) / 1e6
    assert rows(result.by_model)["gpt-4o-mini-2024-07-18"].cost_usd == pytest.approx(mini)
    assert rows(result.by_model)["openai/my-finetune"].cost_usd is None
    assert (result.cost_usd, result.unpriced_models) == (pytest.approx(mini), ["openai/my-finetune"])
    priced = run(store, prices={"my-finetune": (1.0, 2.0), "GPT-4o-mini": (1.0, 1.0)})
    assert priced.cost_usd == pytest.approx((2000 * 1 + 100 * 2) / 1e6 + 1200 / 1e6)
    assert priced.unpriced_models == []


def test_group_by_environment_tag_and_day(tmp_path: Path) -> None:
    durations = {"prod": [1000, 2000, 3000, 9000], "staging": [500, 700]}
    traces = []
    for env, ds in durations.items():
        for i, d in enumerate(ds):
            traces.append(tree(f"{env}{i}", i * 60 * 24 + (0 if env == "prod" else 5),
                               [("root", None, "AGENT", 0, d, {}), ("llm", "root", "LLM", 0, d // 2, {})], dur=d,
                               env=env, status="ERROR" if (env, i) == ("staging", 1) else "OK",
                               tags={"tier": "gold"} if i == 0 else {}))
    store = analytics(tmp_path, traces)
    by_env = {g.group: g for g in run(store, group_by="environment").groups}
    assert list(by_env) == ["prod", "staging"]
    assert by_env["prod"].p95_ms == pytest.approx(np.percentile(durations["prod"], 95))
    assert (by_env["staging"].traces, by_env["staging"].error_rate) == (2, 0.5)
    assert (by_env["prod"].top_span_type, by_env["prod"].top_span_type_share) == ("AGENT", pytest.approx(0.5))
    by_tag = run(store, group_by="tag:tier")
    assert [(g.group, g.traces) for g in by_tag.groups] == [(None, 4), ("gold", 2)]
    assert by_tag.group_by == "tag:tier"
    by_day = run(store, group_by="day", limit=3)
    assert [g.group for g in by_day.groups] == ["2025-11-14", "2025-11-15", "2025-11-16"]   # newest 3, in time order
    assert by_day.more_groups == 1
    assert "| prod | 4 | 0.0% |" in run(store, group_by="env").markdown


def test_an_empty_selection_is_a_clear_result_not_an_error(tmp_path: Path) -> None:
    result = run(analytics(tmp_path, [tree("n1", 0, NESTED, dur=1000)]), filter="attributes.status = 'ERROR'",
                 group_by="model")
    assert (result.trace_count, result.span_count, result.latency.p95_ms, result.error_rate) == (0, 0, None, None)
    assert result.by_span_type == [] and result.groups == [] and result.cost_usd is None
    assert result.findings == ["No traces match (status is 'ERROR'). Widen the filter, or call describe_store to "
                               "see what is stored."]
    assert result.markdown.startswith("**Profile of status is 'ERROR'**")


def test_one_trace_by_id_and_its_errors(tmp_path: Path) -> None:
    store = analytics(tmp_path, [tree("n1", 0, NESTED, dur=1000), tree("p1", 1, PARALLEL, dur=1000)])
    result = run(store, trace_id="n1")
    assert (result.selection, result.trace_count, result.span_count) == ("trace n1", 1, 4)
    assert (result.latency.p50_ms, result.latency.p99_ms, result.p95_tail.traces) == (1000, 1000, 1)
    assert rows(result.by_span_type)["RETRIEVER"].share_of_p95_tail == pytest.approx(0.2)
    with pytest.raises(NotFoundError) as missing:
        run(store, trace_id="n2")
    assert str(missing.value).startswith("No trace with id 'n2'. Did you mean 'n1'")
    with pytest.raises(InvalidInputError) as both:
        run(store, trace_id="n1", filter="attributes.status = 'OK'")
    assert str(both.value) == ("Give either trace_id (one trace) or filter (a selection), not both. To profile one "
                               "trace inside a filter, pass only trace_id.")


@pytest.mark.parametrize(("group_by", "message"), [
    ("enviroment", "Unknown group_by 'enviroment'. Did you mean 'environment'? Use one of: environment, model, "
                   "prompt_version, day, hour, or a tag key as 'tag:<key>' (e.g. 'tag:customer_tier')."),
    ("week", "Unknown group_by 'week'. Use one of: environment, model, prompt_version, day, hour, or a tag key as "
             "'tag:<key>' (e.g. 'tag:customer_tier')."),
])
def test_a_bad_group_by_says_what_is_allowed(tmp_path: Path, group_by: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        run(analytics(tmp_path, []), group_by=group_by)
    assert str(error.value) == message


def test_limit_cuts_tables_and_says_how_much_was_left_out(tmp_path: Path) -> None:
    parts = [("root", None, "AGENT", 0, 1000, {})] + [
        (f"t{i}", "root", "TOOL", i * 100, 50 + i, {"tool": f"tool{i}"}) for i in range(6)]
    result = run(analytics(tmp_path, [tree("l1", 0, parts, dur=1000)]), limit=2)
    assert [r.key for r in result.by_tool] == ["tool5", "tool4"]
    assert result.more_rows == {"tool": 4}           # span names: "agent" and "tool" only


def test_langfuse_fixtures_profile_with_shares_that_add_up(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "lf.duckdb")
    ingest(store, read_path(FIXTURES / "langfuse"))
    with store.reading() as con:
        durations = [r[0] for r in con.execute("SELECT execution_time_ms FROM traces").fetchall()]
    result = run(DuckDBAnalytics(store), group_by="environment", limit=50)
    assert result.trace_count == len(durations) == 19
    assert result.latency.p95_ms == pytest.approx(np.percentile(durations, 95))
    # parallel spans are split, so shares add up to the covered time (a span may end 1 ms after its trace)
    assert 0.9 < sum(r.share_of_wall for r in result.by_span_type) < 1.001
    assert {"gpt-4o-mini", "gemini-2.5-flash"} <= {r.key for r in result.by_model if r.cost_usd}
    assert sum(g.traces for g in result.groups) == 19 and result.groups[0].group == "default"



@pytest.mark.anyio
async def test_through_the_mcp_client(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "m.duckdb")
    store.write_traces([tree("n1", 0, NESTED, dur=1000)])
    async with Client(build_app(store)) as client:
        ok = await client.call_tool("profile_traces", {"trace_id": "n1", "group_by": "model"})
        bad = await client.call_tool("profile_traces", {"group_by": "enviroment"})
    data = ok.structured_content
    assert data["by_span_type"][0]["key"] == "AGENT" and data["groups"][0]["group"] == "gpt-4o-mini"
    assert "| span type | calls |" in data["markdown"]
    assert bad.is_error and bad.content[0].text.startswith(
        "Error executing tool profile_traces: Unknown group_by 'enviroment'. Did you mean 'environment'?")


def test_cli_profile_prints_json_markdown_and_usage_errors(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    DuckDBTraceStore(db).write_traces([tree("p1", 0, PARALLEL, dur=1000)])
    as_json = CliRunner().invoke(cli, ["profile", "--db", str(db), "--price", "gpt-4o=1,1"])
    assert as_json.exit_code == 0 and '"trace_count": 1' in as_json.output
    assert '"cost_usd": 0.0021' in as_json.output
    as_md = CliRunner().invoke(cli, ["profile", "--db", str(db), "--markdown", "--group-by", "environment"])
    assert as_md.exit_code == 0 and as_md.output.startswith("**Profile of all traces**")
    bad = CliRunner().invoke(cli, ["profile", "--db", str(db), "--group-by", "week"])
    assert bad.exit_code == 2 and "Unknown group_by 'week'." in bad.output
    price = CliRunner().invoke(cli, ["profile", "--db", str(db), "--price", "gpt-4o"])
    assert price.exit_code == 2 and "'gpt-4o' is not MODEL=INPUT,OUTPUT" in price.output
