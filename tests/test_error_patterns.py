"""error_patterns on real DuckDB files: two windows with known error counts (rates, change, Fisher p,
latency against numpy), grouping by type / origin / folded message, where a failure is counted,
redacted samples, empty windows, bad windows verbatim, the ingest fixtures, MCP and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mcp import Client
from scipy.stats import fisher_exact

from server.cli.main import cli
from server.ingestion.pipeline import ingest
from server.ingestion import read_path
from server.mcp.app import build_app
from server.storage.duckdb.analytics_sql import DuckDBAnalytics
from server.storage.duckdb.store import DuckDBTraceStore
from tests.conftest import FIXTURES
from tests.factory import BASE_MS, span
from tools.analysis.error_patterns import ErrorPatternsInput, ErrorPatternsResult, error_patterns
from tools.errors import InvalidInputError
from tools.models import Span, Trace

HOUR = 3_600_000
NOW = BASE_MS + 48 * HOUR          # current 24h window: (BASE + 24h, BASE + 48h]
DATA = Path(__file__).parent / "data" / "ingest"


def make(trace_id: str, hours: float, *, dur: int = 1000, status: str = "OK", fail: Span | None = None,
         agent_fails: bool = False, question: str = "Where is my order?", env: str = "production") -> Trace:
    start = BASE_MS + int(hours * HOUR)
    spans = [span(f"{trace_id}-root", None, "AGENT", start, dur, name="support_agent",
                  status="ERROR" if agent_fails else "OK")]
    if fail is not None:
        spans.append(fail.model_copy(update={"span_id": f"{trace_id}-f", "parent_span_id": f"{trace_id}-root",
                                             "start_time_ns": start * 1_000_000 + 10_000_000,
                                             "end_time_ns": start * 1_000_000 + 20_000_000}))
    return Trace(trace_id=trace_id, timestamp_ms=start, execution_time_ms=dur, status=status, name="support_agent",
                 request=json.dumps({"messages": [{"role": "user", "content": question}]}), environment=env,
                 spans=spans, source="test")


def tool_fail(message: str, tool: str = "lookup_order") -> Span:
    return span("x", None, "TOOL", 0, 1, name=tool, tool=tool, status="ERROR", message=message)


def llm_fail(message: str, **attrs: object) -> Span:
    return span("x", None, "CHAT_MODEL", 0, 1, name="chat", model="gpt-4o", status="ERROR",
                message=message).model_copy(update={"attributes": attrs})


def known_set() -> list[Trace]:
    """Previous window: 10 traces, 1 failure. Current window: 20 traces, 8 with failures."""
    previous = [make(f"a{i:02d}", 2 + i, dur=500 + 10 * i) for i in range(9)]
    previous.append(make("a09", 20, status="ERROR", fail=tool_fail("Timeout after 30s for order 12345"),
                         agent_fails=True))
    current = [make(f"b{i:02d}", 25 + i, dur=1000 + 100 * i) for i in range(12)]
    current += [   # same failure, different ids / numbers / quotes -> one pattern
        make("b12", 37, status="ERROR", fail=tool_fail("Timeout after 30s for order 12345"), agent_fails=True),
        make("b13", 38, status="ERROR", fail=tool_fail("Timeout after 31s for order 998877"), agent_fails=True),
        make("b14", 39, fail=tool_fail("Timeout after 2.5s for order 42"),               # recovered: trace OK
             question="I am bob@example.com, call me at +1 415 555 0199"),
        make("b15", 40, status="ERROR", fail=llm_fail("RateLimitError: 429 for req_8f3a2b91 'gpt-4o'")),
        make("b16", 41, status="ERROR", fail=llm_fail("RateLimitError: 429 for req_77aa1234 'gpt-4o-mini'")),
        make("b17", 42, status="ERROR", fail=llm_fail("upstream said no", **{"error.type": "ProviderError"})),
        make("b18", 43, status="ERROR", agent_fails=True),                  # no message: counted at the agent
        make("b19", 44, status="ERROR"),                                     # no failed span at all
    ]
    return previous + current


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> DuckDBAnalytics:
    store = DuckDBTraceStore(tmp_path_factory.mktemp("errors") / "e.duckdb")
    store.write_traces(known_set())
    return DuckDBAnalytics(store)


def run(store: DuckDBAnalytics, now: int = NOW, **kw) -> ErrorPatternsResult:
    return error_patterns(store, ErrorPatternsInput(**kw), now_ms=now)


def test_error_rate_against_the_previous_window(known: DuckDBAnalytics) -> None:
    result = run(known)
    assert (result.current.traces, result.current.errors, result.previous.traces, result.previous.errors) == \
        (20, 7, 10, 1)
    assert (result.current.start, result.current.end) == ("2025-11-14T02:13:20.000Z", "2025-11-15T02:13:20.000Z")
    assert result.error_rate_change_pp == pytest.approx((7 / 20 - 1 / 10) * 100)
    assert result.p_value == pytest.approx(fisher_exact([[7, 13], [1, 9]])[1])
    assert result.verdict == "no significant change"
    durations = [1000 + 100 * i for i in range(12)] + [1000] * 8
    assert (result.current.p50_ms, result.current.p95_ms) == pytest.approx(tuple(np.percentile(durations, [50, 95])))
    assert result.previous.p95_ms == pytest.approx(np.percentile([500 + 10 * i for i in range(9)] + [1000], 95))


def test_failures_group_by_type_origin_and_folded_message(known: DuckDBAnalytics) -> None:
    result = run(known)
    got = [(p.error_type, p.location, p.message, p.traces, p.failed_traces, p.previous_traces)
           for p in result.patterns]
    assert got == [   # most traces first; ties: most occurrences, then most recent
        ("Timeout", "lookup_order", "Timeout after <n> for order <n>", 3, 2, 1),
        ("unknown", "support_agent", None, 2, 2, 0),           # failed agent span (b18) + ERROR trace (b19)
        ("RateLimitError", "chat", "RateLimitError: <n> for <id> <str>", 2, 2, 0),
        ("ProviderError", "chat", "upstream said no", 1, 1, 0),  # type from the span's error.type attribute
    ]
    assert result.pattern_count == 4
    timeout = result.patterns[0]
    assert timeout.example_trace_ids == ["b14", "b13", "b12"]        # newest first
    assert (timeout.first_seen, timeout.last_seen) == ("2025-11-14T15:13:20.000Z", "2025-11-14T17:13:20.000Z")
    assert (timeout.occurrences, timeout.share_of_traffic, timeout.span_type) == (3, pytest.approx(3 / 20), "TOOL")


def test_samples_and_messages_are_redacted(known: DuckDBAnalytics) -> None:
    timeout = run(known).patterns[0]
    assert timeout.sample_input == "I am <EMAIL_1>, call me at <PHONE_1>"
    assert timeout.example_message == "Timeout after 2.5s for order 42"
    assert "bob@example.com" not in run(known).markdown


def test_findings_lead_with_the_change_and_the_top_pattern(known: DuckDBAnalytics) -> None:
    result = run(known, limit=2)
    assert result.findings[0] == ("Last 24h (to 2025-11-15T02:13:20.000Z): 20 traces, 7 errors (35.0%) vs 10.0% in "
                                  f"the previous 24h (+25.0 pp, p={result.p_value:.2g}): no significant change.")
    assert result.findings[2].startswith("Timeout at 'lookup_order': Timeout after <n> for order <n> — 3 trace(s), "
                                         "15.0% of traffic, 2 ended in ERROR; 1 trace(s) in the previous window.")
    assert result.findings[-1] == "2 more pattern(s); raise limit to see them."
    assert "| 1 | Timeout | lookup_order | Timeout after <n> for order <n> | 3 | 15.0% |" in result.markdown


def test_a_spike_is_significant(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "s.duckdb")
    store.write_traces([make(f"p{i}", 1 + i * 0.5) for i in range(40)] +
                       [make(f"c{i}", 25 + i * 0.5, status="ERROR" if i < 20 else "OK",
                             fail=tool_fail(f"HTTP status 503 from /v1/orders/{i}") if i < 20 else None)
                        for i in range(40)])
    result = run(DuckDBAnalytics(store))
    assert (result.verdict, result.error_rate_change_pp) == ("error rate rose", pytest.approx(50.0))
    assert [(p.error_type, p.message, p.traces) for p in result.patterns] == [
        ("HTTP 503", "HTTP status <n> from <path>", 20)]


@pytest.mark.parametrize(("same", "messages"), [
    (True, ["Order 8f14e45f-ceea-467f-a3b2-1c2d3e4f5a6b not found",
            "Order 0e7b2c1a-1111-4222-8333-944445555666 not found"]),
    (True, ["open('/tmp/a/b.txt') failed", "open('/var/x/y.txt') failed"]),
    (True, ["GET https://api.example.com/v1/u/1 -> 500", "GET http://other.host/x?y=2 -> 502"]),
    (True, ['KeyError: "user_name"', 'KeyError: "session"']),
    (True, ["deadline exceeded after 1500ms (attempt 3)", "deadline exceeded after 20ms (attempt 1)"]),
    (True, ["blob 9f86d081884c7d65 missing", "blob 2c26b46b68ffc68f missing"]),
    (False, ["Timeout calling search", "Timeout calling fetch"]),
    (False, ["can't parse the date", "can't parse the amount"]),
])
def test_message_folding_groups_the_same_failure(tmp_path: Path, same: bool, messages: list[str]) -> None:
    store = DuckDBTraceStore(tmp_path / "f.duckdb")
    store.write_traces([make(f"m{i}", 30 + i, status="ERROR", fail=tool_fail(m)) for i, m in enumerate(messages)])
    assert (len(run(DuckDBAnalytics(store)).patterns) == 1) is same


def test_an_empty_window_is_a_clear_result_and_latest_anchors_old_data(known: DuckDBAnalytics) -> None:
    empty = run(known, now=NOW + 30 * 24 * HOUR, window="7d", filter="tags.environment = 'production'")
    assert (empty.verdict, empty.current.traces, empty.patterns, empty.p_value) == ("no traces", 0, [], None)
    assert empty.findings == ["No traces in the last 7d before now for tag 'environment' is 'production'. Try a "
                              "longer window, anchor='latest' (ends at the newest matching trace), or a wider filter."]
    latest = run(known, now=NOW + 30 * 24 * HOUR, anchor="latest")
    assert (latest.current.end, latest.current.traces, latest.previous.traces) == ("2025-11-14T22:13:20.000Z", 20, 10)
    none = run(known, anchor="latest", filter="attributes.environment = 'nowhere'")
    assert (none.verdict, none.current.start) == ("no traces", None)


@pytest.mark.parametrize(("window", "message"), [
    ("24 hours", "Invalid window '24 hours'. Use a whole number and a unit: m (minutes), h (hours), d (days), "
                 "w (weeks), e.g. '24h', '7d' or '30m'."),
    ("5s", "Invalid window '5s'. Use a whole number and a unit: m (minutes), h (hours), d (days), w (weeks), "
           "e.g. '24h', '7d' or '30m'."),
    ("0h", "Invalid window '0h'. Use a whole number and a unit: m (minutes), h (hours), d (days), w (weeks), "
           "e.g. '24h', '7d' or '30m'."),
    ("400d", "Window '400d' is longer than 366 days. Use at most '366d' (or '52w')."),
])
def test_a_bad_window_says_how_to_write_one(known: DuckDBAnalytics, window: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        run(known, window=window)
    assert str(error.value) == message


def test_error_types_come_from_exception_events_on_ingested_mlflow_traces(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "ml.duckdb")
    ingest(store, read_path(DATA / "mlflow_v2.json"))
    result = run(DuckDBAnalytics(store), window="52w", anchor="latest")
    assert "RateLimitError" in {p.error_type for p in result.patterns}
    assert result.current.errors >= 1


def test_langfuse_fixtures_have_no_errors_and_latency_matches_numpy(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "lf.duckdb")
    ingest(store, read_path(FIXTURES / "langfuse"))
    with store.reading() as con:
        newest, = con.execute("SELECT max(timestamp_ms) FROM traces").fetchone()
        durations = [r[0] for r in con.execute("SELECT execution_time_ms FROM traces WHERE timestamp_ms > $s",
                                               {"s": newest - 26 * 7 * 24 * HOUR}).fetchall()]
    result = run(DuckDBAnalytics(store), window="26w", anchor="latest")
    assert (result.current.traces, result.current.errors, result.patterns) == (len(durations), 0, [])
    assert result.current.p95_ms == pytest.approx(np.percentile(durations, 95))
    assert result.findings[-1] == "No failed spans or ERROR traces in this window."


@pytest.mark.anyio
async def test_through_the_mcp_client(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "m.duckdb")
    store.write_traces(known_set())
    async with Client(build_app(store)) as client:
        ok = await client.call_tool("error_patterns", {"window": "1w", "anchor": "latest", "limit": 1})
        bad = await client.call_tool("error_patterns", {"window": "yesterday"})
    assert ok.structured_content["patterns"][0]["location"] == "lookup_order"
    assert ok.structured_content["pattern_count"] == 4
    assert bad.is_error and bad.content[0].text == (
        "Error executing tool error_patterns: Invalid window 'yesterday'. Use a whole number and a unit: "
        "m (minutes), h (hours), d (days), w (weeks), e.g. '24h', '7d' or '30m'.")


def test_cli_errors_prints_json_markdown_and_usage_errors(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    DuckDBTraceStore(db).write_traces(known_set())
    as_json = CliRunner().invoke(cli, ["errors", "--db", str(db), "--window", "2d", "--anchor", "latest"])
    assert as_json.exit_code == 0 and json.loads(as_json.output)["current"]["traces"] == 30
    as_md = CliRunner().invoke(cli, ["errors", "--db", str(db), "--anchor", "latest", "--markdown"])
    assert as_md.exit_code == 0 and as_md.output.startswith("**Error patterns, all traces, last 24h**")
    bad = CliRunner().invoke(cli, ["errors", "--db", str(db), "--window", "24 hours"])
    assert bad.exit_code == 2 and "Invalid window '24 hours'." in bad.output
