"""The analyses on every engine: ``profile_traces`` and ``error_patterns`` give the same answers over
DuckDB and ClickHouse (chdb always; a server when CLICKHOUSE_URL is set).

Two kinds of check. Known answers, on each engine: self time on hand-built trees (nesting, parallel
siblings, a child outliving its parent), percentiles against numpy, tokens and cost, and the error
windows and patterns of ``tests/test_error_patterns.py``'s known set. Parity: a generated set with
parallel and overlapping spans, orphans, several roots, roll-up tokens, priced and unpriced models,
tags, sessions and failures of every kind is loaded into DuckDB and into ClickHouse, and the stores'
aggregates must agree: counts exactly, sums and percentiles to 1e-9 (the same quantile definition,
linear interpolation, on both; only float summation order differs). Plus the two tools through a
real MCP client over chdb.
"""

from __future__ import annotations

import json
import math
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from mcp import Client

from server.cli.main import cli
from server.mcp.app import build_app
from server.storage.backend import Backend
from server.storage.factory import StoreUrl, build_backend, parse_store_url
from tests.factory import BASE_MS, small_set, span
from tests.test_error_patterns import NOW as ERRORS_NOW
from tests.test_error_patterns import known_set
from tests.test_profiling import NESTED, PARALLEL, tree
from tools.analysis.error_patterns import ErrorPatternsInput, ErrorRequest, error_patterns
from tools.analysis.profile_models import GroupBy, ModelPrice, ProfileRequest
from tools.analysis.profiling import DEFAULT_PRICES, ProfileTracesInput, profile_traces
from tools.filters import parser
from tools.models import Span, Trace

HOUR = 3_600_000
PROFILE_NOW = BASE_MS + 30 * 86_400_000


# -- stores ------------------------------------------------------------------------------------
def _open(engine: str, folder: Path, chdb_folder: Path, traces: list[Trace]) -> Iterator[Backend]:
    """A new store of ``engine`` holding ``traces`` (a ClickHouse server's database dropped after)."""
    database = f"a_{uuid.uuid4().hex[:12]}"
    if engine == "duckdb":
        url = StoreUrl("duckdb", path=folder / f"{database}.duckdb")
    elif engine == "chdb":
        url = StoreUrl("chdb", path=chdb_folder, database=database)
    else:
        url = replace(parse_store_url(os.environ["CLICKHOUSE_URL"]), database=database)
    backend = build_backend(url)
    backend.traces.write_traces(traces)
    yield backend
    if engine == "clickhouse":
        backend.traces.client.command(f"DROP DATABASE IF EXISTS {database}")  # type: ignore[attr-defined]


def analytics(backend: Backend) -> Any:
    return backend.require_features("the analyses", "analytics").analytics


# -- the generated set ---------------------------------------------------------------------------
ERROR_MESSAGES = (
    "Timeout after {n}s for order {id}",
    "ConnectionRefusedError: http://svc-{n}.internal:8080/v1/items refused",
    "upstream returned status {code} for req_{id}",
    "ValueError: bad value '{word}' at /srv/app/handlers/{word}.py",
    "rate limit exceeded for key {hex}",
    "  spaced   out\tmessage {n}  ",
)
MODELS = ("gpt-4o-mini", "gpt-4o-2024-08-06", "openai/gpt-4o", "claude-sonnet-4-5-20250929", "my-finetune",
          "anthropic/claude-3-5-haiku-latest", "gemini-2.5-flash")
KINDS = ("LLM", "CHAT_MODEL", "TOOL", "RETRIEVER", "EMBEDDING", "PARSER")


def _message(rng: random.Random) -> str:
    return rng.choice(ERROR_MESSAGES).format(n=rng.randint(1, 99_999), id=rng.randint(10_000, 9_999_999),
                                            code=rng.choice((429, 500, 503)), word=rng.choice(("alpha", "beta")),
                                            hex=f"{rng.getrandbits(48):012x}")


def generated_set(count: int = 150, seed: int = 15) -> list[Trace]:
    """Traces 17 minutes apart (distinct timestamps: the newest examples are never a tie) over ~42 h."""
    rng = random.Random(seed)
    traces = []
    for i in range(count):
        trace_id = f"g{i:03d}"
        start = BASE_MS + i * 17 * 60_000
        dur = rng.randint(200, 12_000)
        spans = [_span(trace_id, "root", None, "AGENT", start, dur, name="agent",
                       tokens=(5000, 500) if rng.random() < 0.3 else None)]
        failed_tools: set[str] = set()
        for k in range(rng.randint(0, 6)):
            parent = rng.choice([s for s in spans if s.span_type in ("AGENT", "TOOL")])
            p_start, p_end = parent.start_time_ns // 1_000_000, parent.end_time_ns // 1_000_000
            s = rng.randint(p_start - (50 if rng.random() < 0.1 else 0), p_end)
            d = rng.randint(0, max(1, p_end - s + (400 if rng.random() < 0.15 else 0)))
            kind = rng.choice(KINDS)
            tool = rng.choice(("search", "lookup_order", "fetch", "refund")) if kind == "TOOL" else None
            model = rng.choice(MODELS) if kind in ("LLM", "CHAT_MODEL") else None
            fails = rng.random() < 0.12 and (tool is None or tool not in failed_tools)
            if fails and tool:
                failed_tools.add(tool)
            spans.append(_span(trace_id, f"s{k}", parent.span_id, kind, s, d, name=tool or kind.lower(), tool=tool,
                               model=model, tokens=(rng.randint(10, 4000), rng.randint(1, 900)) if model else None,
                               fails=fails, rng=rng))
        if rng.random() < 0.05:     # a second root: its self time overlaps the first's
            spans.append(_span(trace_id, "root2", None, "AGENT", start + 10, dur // 2, name="side_agent"))
        if rng.random() < 0.05:     # an orphan: its parent never arrived
            spans.append(_span(trace_id, "orphan", "missing-parent", "TOOL", start + 5, 40, name="late",
                               tool="late"))
        failed = any(s.status == "ERROR" for s in spans)
        status = "ERROR" if (failed and rng.random() < 0.6) or rng.random() < 0.04 else "OK"
        if status == "ERROR" and failed and rng.random() < 0.5:
            spans[0] = spans[0].model_copy(update={"status": "ERROR"})    # the agent fails with its child
        traces.append(Trace(
            trace_id=trace_id, timestamp_ms=start, execution_time_ms=dur if rng.random() > 0.03 else None,
            status=status, name=rng.choice(("agent", "agent", "")), session_id=f"s{i % 23}",
            environment=rng.choice(("production", "staging", None)), model=rng.choice(MODELS),
            prompt_version=rng.choice(("v1", "v2")), input_tokens=rng.choice((None, rng.randint(10, 9000))),
            output_tokens=rng.randint(1, 2000),
            request=json.dumps({"messages": [{"role": "user", "content": f"question {i}"}]}),
            tags={"tier": rng.choice(("free", "pro"))} if rng.random() < 0.7 else {}, spans=spans, source="test"))
    return traces


def _span(trace_id: str, sid: str, parent: str | None, kind: str, start_ms: int, dur_ms: int, *, name: str,
          tool: str | None = None, model: str | None = None, tokens: tuple[int, int] | None = None,
          fails: bool = False, rng: random.Random | None = None) -> Span:
    made = span(f"{trace_id}-{sid}", parent, kind, start_ms, dur_ms, name=name, tool=tool, model=model,
                tokens=tokens, status="ERROR" if fails else "OK",
                message=_message(rng) if fails and rng and rng.random() < 0.85 else None)
    if fails and rng is not None:
        roll = rng.random()
        if roll < 0.2:
            made = made.model_copy(update={"attributes": {"error.type": rng.choice(("ProviderError", "QuotaError"))}})
        elif roll < 0.35:
            made = made.model_copy(update={"events": [{"name": "log"}, {"name": "exception", "attributes": {
                "exception.type": "KeyError", "exception.message": "k"}}]})
    return made


# -- comparing aggregates ------------------------------------------------------------------------
def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 relative (or 1e-6 absolute): the engines sum floats in different orders."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} rows != {len(b)} rows\n{a}\n{b}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), \
            f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def profile_rows(data: Any) -> dict[str, Any]:
    """A profile's rows keyed by their key (the order is checked apart, on rounded self time: two keys
    whose self times differ only by float noise may fall either way)."""
    dumped = data.model_dump()
    dumped["breakdowns"] = {dim: {r["key"]: r for r in rows} for dim, rows in dumped["breakdowns"].items()}
    return dumped


def breakdown_order(data: Any) -> dict[str, list[str]]:
    return {dim: [r.key for r in sorted(rows, key=lambda r: (-round(r.self_ms, 6), -r.calls, r.key))]
            for dim, rows in data.breakdowns.items()}


# -- parity --------------------------------------------------------------------------------------
PARITY_ENGINES = ("chdb", "clickhouse")
PRICES = tuple(ModelPrice(m, i, o) for m, (i, o) in DEFAULT_PRICES.items())


@pytest.fixture(scope="module")
def parity_traces() -> list[Trace]:
    return generated_set() + small_set()


@pytest.fixture(scope="module")
def reference(parity_traces: list[Trace], tmp_path_factory: pytest.TempPathFactory,
              chdb_folder: Path) -> Iterator[Backend]:
    yield from _open("duckdb", tmp_path_factory.mktemp("reference"), chdb_folder, parity_traces)


@pytest.fixture(scope="module", params=PARITY_ENGINES)
def candidate(request: pytest.FixtureRequest, parity_traces: list[Trace], tmp_path_factory: pytest.TempPathFactory,
              chdb_folder: Path) -> Iterator[Backend]:
    if request.param == "clickhouse" and not os.environ.get("CLICKHOUSE_URL"):
        pytest.skip("no ClickHouse server: set CLICKHOUSE_URL=clickhouse://USER:PASS@HOST:8123/DB to run "
                    "the parity test against one")
    yield from _open(request.param, tmp_path_factory.mktemp("candidate"), chdb_folder, parity_traces)


PROFILE_CASES = {
    "everything": dict(),
    "by environment": dict(group_by=GroupBy("environment")),
    "by day": dict(group_by=GroupBy("day")),
    "by hour, top 5": dict(group_by=GroupBy("hour"), top=5),
    "by tag": dict(group_by=GroupBy("tag", "tier")),
    "by prompt version, a filter": dict(group_by=GroupBy("prompt_version"),
                                        filter="attributes.environment = 'production'"),
    "spans filter, no prices": dict(filter="span.type = 'TOOL'", prices=()),
    "one trace": dict(trace_id="g007"),
    "nothing selected": dict(filter="attributes.name = 'no such trace'", group_by=GroupBy("model")),
}


@pytest.mark.parametrize("case", PROFILE_CASES)
def test_profiles_agree_with_duckdb(case: str, reference: Backend, candidate: Backend) -> None:
    spec = dict(PROFILE_CASES[case])
    text = spec.pop("filter", "")
    request = ProfileRequest(expr=parser.parse(text), trace_id=spec.pop("trace_id", None),
                             group_by=spec.pop("group_by", None), top=spec.pop("top", 50),
                             prices=spec.pop("prices", PRICES), now_ms=PROFILE_NOW)
    want, got = analytics(reference).profile_data(request), analytics(candidate).profile_data(request)
    if case != "nothing selected":
        assert want.overview.traces > 0 and want.overview.spans > 0 and want.breakdowns["span_type"]
    assert_same(profile_rows(got), profile_rows(want), case)
    assert breakdown_order(got) == breakdown_order(want)
    assert [g.group for g in got.groups] == [g.group for g in want.groups]


def test_the_generated_set_exercises_what_the_parity_test_claims(reference: Backend) -> None:
    """The parity test is only as good as its data: parallel traces, unpriced models, roll-ups, errors."""
    data = analytics(reference).profile_data(ProfileRequest(expr=None, trace_id=None, group_by=None, top=50,
                                                            prices=PRICES, now_ms=PROFILE_NOW))
    assert data.overview.traces == 162 and data.overview.errors >= 15
    assert {"my-finetune"} <= set(data.unpriced_models) and data.cost_usd and data.cost_usd > 0
    assert len(data.breakdowns["tool"]) >= 4 and len(data.breakdowns["model"]) >= 5
    self_total = sum(r.self_ms for r in data.breakdowns["span_type"])
    inclusive = sum(r.total_ms for r in data.breakdowns["span_type"])
    assert 0 < self_total < inclusive          # nesting: self time is less than inclusive time


@pytest.mark.parametrize("window_h,filter_text,top", [(24, "", 50), (6, "", 3), (24, "attributes.environment = "
                                                                                    "'production'", 50)])
def test_error_patterns_agree_with_duckdb(window_h: int, filter_text: str, top: int, reference: Backend,
                                          candidate: Backend) -> None:
    end = BASE_MS + 149 * 17 * 60_000
    request = ErrorRequest(expr=parser.parse(filter_text), now_ms=end, previous_start_ms=end - 2 * window_h * HOUR,
                           current_start_ms=end - window_h * HOUR, end_ms=end, top=top)
    want, got = analytics(reference).error_data(request), analytics(candidate).error_data(request)
    assert want.current.traces > 0 and want.patterns
    assert_same(got.model_dump(), want.model_dump(), f"{window_h}h {filter_text!r}")
    if window_h == 24 and not filter_text:
        types = {p.error_type for p in want.patterns}
        assert {"KeyError", "ProviderError", "unknown"} & types and any(t.startswith("HTTP ") for t in types)


def test_newest_timestamp_and_slow_counts_agree(reference: Backend, candidate: Backend) -> None:
    expr = parser.parse("attributes.environment = 'staging'")
    newest = analytics(reference).newest_timestamp(expr, PROFILE_NOW)
    assert newest is not None and analytics(candidate).newest_timestamp(expr, PROFILE_NOW) == newest
    nothing = parser.parse("attributes.name = 'no such trace'")
    assert analytics(candidate).newest_timestamp(nothing, PROFILE_NOW) is None
    monitors = reference.features.monitors  # type: ignore[union-attr]
    slow = monitors.count_slower(None, PROFILE_NOW, BASE_MS, newest, 5000.0)
    assert slow > 0 and analytics(candidate).count_slower(None, PROFILE_NOW, BASE_MS, newest, 5000.0) == slow


def test_a_server_without_materialized_ctes_gives_the_same_answers(reference: Backend, candidate: Backend) -> None:
    """ClickHouse before 25.x has no ``AS MATERIALIZED``: the adapter then sends plain CTEs."""
    from server.storage.clickhouse.analytics_profile_sql import SETTINGS
    from server.storage.clickhouse.analytics_store import ClickHouseAnalytics

    plain = ClickHouseAnalytics(candidate.traces)  # type: ignore[arg-type]
    plain._settings = SETTINGS
    request = ProfileRequest(expr=parser.parse("attributes.environment = 'staging'"), trace_id=None,
                             group_by=GroupBy("tag", "tier"), top=50, prices=PRICES, now_ms=PROFILE_NOW)
    assert_same(profile_rows(plain.profile_data(request)), profile_rows(analytics(reference).profile_data(request)))
    end = BASE_MS + 149 * 17 * 60_000
    errors = ErrorRequest(expr=None, now_ms=end, previous_start_ms=end - 48 * HOUR, current_start_ms=end - 24 * HOUR,
                          end_ms=end, top=50)
    assert_same(plain.error_data(errors).model_dump(), analytics(reference).error_data(errors).model_dump())


def big_trace(count: int = 2500) -> Trace:
    """One trace of ``count`` spans in a random tree: parallel siblings, children past their parent."""
    rng = random.Random(3)
    spans = [span("big-root", None, "AGENT", BASE_MS, 100_000, name="agent")]
    for i in range(count):
        parent = "big-root" if i < 40 else f"big-{rng.randrange(0, i)}"
        spans.append(span(f"big-{i}", parent, rng.choice(KINDS), BASE_MS + rng.randint(0, 95_000),
                          rng.randint(0, 6000), name=f"step{i % 9}", tool=f"t{i % 5}" if i % 3 == 0 else None,
                          model=rng.choice(MODELS) if i % 4 == 0 else None,
                          tokens=(rng.randint(1, 900), rng.randint(1, 90)) if i % 4 == 0 else None))
    return Trace(trace_id="big", timestamp_ms=BASE_MS, execution_time_ms=100_000, status="OK", spans=spans,
                 source="test")


def test_a_trace_of_thousands_of_spans_agrees(tmp_path: Path, chdb_folder: Path) -> None:
    """Self time works inside one trace's arrays: it must stay right (and linear) for big traces too."""
    request = ProfileRequest(expr=None, trace_id=None, group_by=None, top=50, prices=PRICES, now_ms=PROFILE_NOW)
    results = []
    for engine in ("duckdb", "chdb"):
        for backend in _open(engine, tmp_path, chdb_folder, [big_trace()]):
            results.append(analytics(backend).profile_data(request))
    want, got = results
    assert want.overview.spans == 2501 and sum(r.self_ms for r in want.breakdowns["span_type"]) > 0
    assert_same(profile_rows(got), profile_rows(want), "big trace")


# -- known answers, on every engine --------------------------------------------------------------
KNOWN_ENGINES = ("duckdb", "chdb", "clickhouse")


@pytest.fixture(scope="module", params=KNOWN_ENGINES)
def known_engine(request: pytest.FixtureRequest) -> str:
    if request.param == "clickhouse" and not os.environ.get("CLICKHOUSE_URL"):
        pytest.skip("no ClickHouse server: set CLICKHOUSE_URL to run the known answers against one")
    return request.param


@pytest.fixture(scope="module")
def trees(known_engine: str, tmp_path_factory: pytest.TempPathFactory, chdb_folder: Path) -> Iterator[Backend]:
    late = [("root", None, "AGENT", 0, 500, {}), ("late", "root", "TOOL", 400, 300, {"tool": "slow"})]
    rng = random.Random(7)
    durations = [rng.randint(200, 20_000) for _ in range(57)]
    flat = [tree(f"d{i:02d}", 100 + i, [("root", None, "AGENT", 0, d, {"name": "flat"})], dur=d,
                 status="ERROR" if i % 10 == 0 else "OK", env="perf") for i, d in enumerate(durations)]
    yield from _open(known_engine, tmp_path_factory.mktemp("trees"), chdb_folder,
                     [tree("n1", 0, NESTED, dur=1000), tree("p1", 1, PARALLEL, dur=1000), tree("o1", 2, late, dur=700),
                      *flat])


def _profile(backend: Backend, **kw: Any) -> Any:
    return profile_traces(analytics(backend), ProfileTracesInput(**kw), now_ms=PROFILE_NOW)


def test_self_time_on_known_trees(trees: Backend) -> None:
    nested = {r.key: r.self_ms for r in _profile(trees, trace_id="n1").by_span_type}
    assert nested == pytest.approx({"AGENT": 300, "CHAT_MODEL": 300, "TOOL": 200, "RETRIEVER": 200})
    parallel = _profile(trees, trace_id="p1")
    assert {r.key: r.self_ms for r in parallel.by_span_name} == pytest.approx(
        {"agent": 300, "search": 300, "fetch": 300, "chat": 100})
    late = {r.key: r.self_ms for r in _profile(trees, trace_id="o1").by_span_type}
    assert late == pytest.approx({"AGENT": 400, "TOOL": 300})


def test_percentiles_error_rate_and_tail_match_numpy(trees: Backend) -> None:
    rng = random.Random(7)
    durations = [rng.randint(200, 20_000) for _ in range(57)]
    result = _profile(trees, filter="attributes.environment = 'perf'")
    p50, p95, p99 = np.percentile(durations, [50, 95, 99])
    assert (result.latency.p50_ms, result.latency.p95_ms, result.latency.p99_ms) == pytest.approx((p50, p95, p99))
    assert (result.trace_count, result.error_count) == (57, 6)
    tail = [d for d in durations if d >= p95]
    assert (result.p95_tail.traces, result.p95_tail.wall_time_ms) == (len(tail), pytest.approx(sum(tail)))


def test_tokens_skip_roll_ups_and_cost_uses_the_longest_price(trees: Backend) -> None:
    result = _profile(trees, trace_id="p1", prices={"gpt-4": [1.0, 1.0], "gpt-4o": [2.0, 4.0]})
    chat = {r.key: r for r in result.by_model}["gpt-4o"]
    assert (chat.input_tokens, chat.output_tokens) == (2000, 100)
    assert chat.cost_usd == pytest.approx((2000 * 2.0 + 100 * 4.0) / 1e6)


@pytest.fixture(scope="module")
def windows(known_engine: str, tmp_path_factory: pytest.TempPathFactory, chdb_folder: Path) -> Iterator[Backend]:
    yield from _open(known_engine, tmp_path_factory.mktemp("windows"), chdb_folder, known_set())


def test_error_windows_and_patterns_on_the_known_set(windows: Backend) -> None:
    result = error_patterns(analytics(windows), ErrorPatternsInput(), now_ms=ERRORS_NOW)
    assert (result.current.traces, result.current.errors, result.previous.traces, result.previous.errors) == \
        (20, 7, 10, 1)
    got = [(p.error_type, p.location, p.message, p.traces, p.failed_traces, p.previous_traces)
           for p in result.patterns]
    assert got == [
        ("Timeout", "lookup_order", "Timeout after <n> for order <n>", 3, 2, 1),
        ("unknown", "support_agent", None, 2, 2, 0),
        ("RateLimitError", "chat", "RateLimitError: <n> for <id> <str>", 2, 2, 0),
        ("ProviderError", "chat", "upstream said no", 1, 1, 0),
    ]
    timeout = result.patterns[0]
    assert timeout.example_trace_ids == ["b14", "b13", "b12"]
    assert timeout.sample_input == "I am <EMAIL_1>, call me at <PHONE_1>"
    assert timeout.example_message == "Timeout after 2.5s for order 42"


# -- the MCP tools over chdb ---------------------------------------------------------------------
@pytest.fixture
def chdb_and_duckdb(tmp_path: Path, chdb_folder: Path) -> Iterator[tuple[Backend, Backend]]:
    for chdb in _open("chdb", tmp_path, chdb_folder, small_set()):
        for duck in _open("duckdb", tmp_path, chdb_folder, small_set()):
            yield chdb, duck


@pytest.mark.anyio
async def test_the_tools_through_an_mcp_client_over_chdb(chdb_and_duckdb: tuple[Backend, Backend]) -> None:
    chdb, duck = chdb_and_duckdb
    calls = [("profile_traces", {"group_by": "environment"}), ("error_patterns", {"anchor": "latest", "window": "1h"})]
    answers = []
    for backend in (chdb, duck):
        async with Client(build_app(backend, toolsets=("traces", "analysis"))) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"profile_traces", "error_patterns"} <= names
            answers.append([(await client.call_tool(name, args)).structured_content for name, args in calls])
            bad = await client.call_tool("profile_traces", {"group_by": "enviroment"})
            assert bad.is_error and "Did you mean 'environment'?" in bad.content[0].text
    (profile, errors), (duck_profile, duck_errors) = answers
    assert profile["trace_count"] == 12 and profile["error_count"] == 3
    assert [g["group"] for g in profile["groups"]] == ["production", "staging"]
    assert [(p["error_type"], p["location"], p["traces"]) for p in errors["patterns"]] == [
        ("TimeoutError", "lookup_order", 2), ("unknown", "support_agent", 2)]
    for data in (profile, duck_profile, errors, duck_errors):
        data.pop("markdown")
        data.pop("findings")
    assert_same(profile, duck_profile, "profile_traces")
    assert_same(errors, duck_errors, "error_patterns")


def test_the_cli_commands_over_chdb(chdb_and_duckdb: tuple[Backend, Backend]) -> None:
    chdb, _ = chdb_and_duckdb
    store = f"chdb://{chdb.path}?database={chdb.traces.url.database}"  # type: ignore[attr-defined]
    profile = CliRunner().invoke(cli, ["profile", "--store", store, "--group-by", "tag:environment"])
    assert profile.exit_code == 0, profile.output
    data = json.loads(profile.output)
    assert (data["trace_count"], data["error_count"]) == (12, 3)
    assert [g["group"] for g in data["groups"]] == ["production", "staging"]
    errors = CliRunner().invoke(cli, ["errors", "--store", store, "--anchor", "latest", "--window", "1h", "--markdown"])
    assert errors.exit_code == 0 and "TimeoutError" in errors.output and "lookup_order" in errors.output
