"""Writing traces to ClickHouse: spans upserted by ``(trace_id, span_id)``, trace rows re-derived.

Exporters send a long trace in several batches, children before the root, sometimes twice
(DESIGN.md, "Spans arrive in pieces"). So a batch only ever *adds versions* of spans: a span it
does not mention stays, a repeated one replaces its copy (``ReplacingMergeTree``, read ``FINAL``).
After the spans land, each touched trace's row is written again from all its spans, those stored
and every copy in the batch (``merge.py``: token sums, counts, tool names, the request found in a
user message, the source's own statements; a copy holding the root re-states the trace). When that
moves the trace to another day (a late root started earlier than the first pieces), a tombstone
under the old ``(day, trace_id)`` key retires the old row, because ``ReplacingMergeTree`` only
folds rows with equal keys.

``replace_before_ms`` (``tracesieve ingest --replace``) replaces traces whose row was written
before then (an earlier load) whole: the batch's spans are written first, as always, then the
earlier load's spans the batch did not resend and its imported scores get tombstones
(``is_deleted = 1`` under a newer version), and the trace row takes the batch's header. Traces
written by the same load (an earlier batch of it) are merged with, not replaced.

Order of writes: spans, then feedback and tags, then tombstones of a replaced load, then traces.
A crash in between leaves spans whose trace row is stale or missing (or, under --replace, old spans
not yet retired) until the trace's next batch; no span is ever lost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from server.storage.clickhouse.client import ClickHouseClient, next_version
from server.storage.clickhouse.merge import SPAN_CONTENT, fold, rollup_counts, stored_span
from tools.models import Trace
from tools.ports import WriteOutcome
from tools.traces.span_checks import span_problems

SPAN_COLUMNS = ("trace_id", *SPAN_CONTENT, "version")
#: The trace row's header: what the reader assembled, as opposed to what is derived from spans.
HEADER_COLUMNS = ("timestamp_ms", "execution_time_ms", "status", "name", "request", "response", "session_id",
                  "user_id", "model", "prompt_version", "environment", "input_tokens", "output_tokens",
                  "metadata", "source", "source_id")
TRACE_COLUMNS = ("trace_id", *HEADER_COLUMNS, "has_root", "span_count", "error_count", "tool_names",
                 "ingested_at_ms", "version", "is_deleted")
TAG_COLUMNS = ("trace_id", "key", "value", "set_at_ms", "set_by", "version")
LABEL_COLUMNS = ("label_id", "trace_id", "criterion", "value", "numeric_value", "reviewer", "rationale",
                 "created_at_ms", "source", "version")
SCORE_COLUMNS = ("run_id", "judge", "trace_id", "verdict", "score", "value", "rationale", "created_at_ms",
                 "version")


def write_traces(client: ClickHouseClient, traces: Sequence[Trace], *, now_ms: int,
                 replace_before_ms: int | None = None) -> WriteOutcome:
    """Store ``traces`` (copies of one trace in the batch are folded in order, a span sent twice keeps
    its last copy); says what was stored: new, updated and unchanged spans, counted against the
    stored copies (a replaced trace's are all new)."""
    copies: dict[str, list[Trace]] = {}
    for t in traces:
        copies.setdefault(t.trace_id, []).append(t)
    if not copies:
        return WriteOutcome()
    version = next_version()
    ids = list(copies)
    replaced = set() if replace_before_ms is None else {r[0] for r in client.read(
        "SELECT trace_id FROM traces WHERE trace_id IN {ids:Array(String)} AND ingested_at_ms < {before:Int64}",
        {"ids": ids, "before": replace_before_ms})}
    stored = {r["trace_id"]: r for r in client.read_dicts(
        f"SELECT trace_id, {', '.join(HEADER_COLUMNS)}, has_root, intDiv(timestamp_ms, 86400000) AS day_number "
        "FROM traces WHERE trace_id IN {ids:Array(String)}", {"ids": ids})}
    stored_spans = _stored_spans(client, [i for i in ids if i not in replaced])
    rows_sent = list({(t.trace_id, s.span_id): _span_row(t.trace_id, s, version)
                      for t in traces for s in t.spans}.values())
    outcome = _outcome(stored_spans, rows_sent)
    outcome.traces = len(copies)
    client.insert("spans", rows_sent, SPAN_COLUMNS)
    _write_feedback(client, traces, version, now_ms)
    if replaced:
        _retire_earlier_load(client, sorted(replaced), version)

    def fold_stored(trace_id: str, spans: list[dict[str, Any]]) -> tuple[dict, list]:
        return fold(copies[trace_id], None if trace_id in replaced else stored.get(trace_id),
                    [stored_span(r) for r in spans])

    folded = {trace_id: fold_stored(trace_id, stored_spans.get(trace_id, [])) for trace_id in ids
              if len(copies[trace_id]) > 1 or trace_id in stored_spans
              or (trace_id in stored and trace_id not in replaced)}
    for trace_id, spans in _stale(client, copies, folded).items():
        folded[trace_id] = fold_stored(trace_id, spans)
    rows: list[tuple] = []
    # The row's version is taken now, not with the spans': of two writers folding the same trace, the
    # row written last was computed from the most spans, and must win.
    version = next_version()
    for trace_id, batch_copies in copies.items():
        old = stored.get(trace_id)
        if trace_id in folded:
            fields, spans = folded[trace_id]
            header = tuple(_json(fields["metadata"]) if c == "metadata" else fields.get(c) for c in HEADER_COLUMNS)
        else:  # a new trace sent once (nearly all of a bulk load): the batch's copy is all there is
            t = batch_copies[0]
            spans = list({s.span_id: s for s in t.spans}.values())
            header = _header(t)
        outcome.warnings += span_problems(trace_id, spans)
        has_root = int(not spans or any(s.parent_span_id is None for s in spans))
        span_count, error_count, tools = rollup_counts(spans)
        rows.append((trace_id, *header, has_root, span_count, error_count, tools, now_ms, version, 0))
        if old is not None and old["day_number"] != _day_number(header[0]):
            # The trace moved to another day: retire the row under the old key.
            rows.append((trace_id, *(old[c] for c in HEADER_COLUMNS), old["has_root"], 0, 0, [], now_ms,
                         version, 1))
    client.insert("traces", rows, TRACE_COLUMNS)
    return outcome


def _stored_spans(client: ClickHouseClient, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The stored spans of ``ids`` by trace (one read; a bulk load of new traces finds none)."""
    found: dict[str, list[dict[str, Any]]] = {}
    if ids:
        for row in client.read_dicts(f"SELECT trace_id, {', '.join(SPAN_CONTENT)} FROM spans "
                                     "WHERE trace_id IN {ids:Array(String)}", {"ids": ids}):
            found.setdefault(row.pop("trace_id"), []).append(row)
    return found


def _stale(client: ClickHouseClient, copies: dict[str, list[Trace]],
           folded: dict[str, tuple[dict, list]]) -> dict[str, list[dict[str, Any]]]:
    """Another writer (a second receiver behind the same load balancer) may have added spans to a
    trace between this batch's read and its insert: where the stored count says so (a read of key
    columns only), every span now stored of those traces, to fold again. What is left is a window of
    one step (the other writer's row written after this check and after this row); the trace's next
    write corrects it, and no span is lost either way."""
    expected = {trace_id: len(folded[trace_id][1]) if trace_id in folded else len({s.span_id for s in c[0].spans})
                for trace_id, c in copies.items()}
    counts = dict(client.read("SELECT trace_id, toInt64(count()) FROM spans WHERE trace_id IN {ids:Array(String)} "
                              "GROUP BY trace_id", {"ids": list(expected)}))
    stale = [trace_id for trace_id, n in expected.items() if counts.get(trace_id, 0) != n]
    return _stored_spans(client, stale) if stale else {}


def _retire_earlier_load(client: ClickHouseClient, trace_ids: list[str], version: int) -> None:
    """Tombstones (under a newer version) for what an earlier load stored of ``trace_ids`` and this
    batch (written at ``version``) did not replace: its other spans and its imported scores. Each is
    one ``INSERT … SELECT`` of the rows themselves, so the tombstone keeps the row's sort key."""
    params = {"ids": trace_ids, "written": version, "tombstone": next_version()}
    # Filtered in a subquery: in ClickHouse the REPLACE alias ``version`` would shadow the column in WHERE.
    tombstones = ("INSERT INTO {table} SELECT * REPLACE ({{tombstone:UInt64}} AS version, 1 AS is_deleted) "
                  "FROM (SELECT * FROM {table} WHERE trace_id IN {{ids:Array(String)}} AND version < {{written:UInt64}}"
                  "{also})")
    client.command(tombstones.format(table="spans", also=""), params)
    client.command(tombstones.format(table="scores", also=" AND startsWith(run_id, 'imported')"), params)


def _outcome(stored_spans: dict[str, list[dict[str, Any]]], rows_sent: list[tuple]) -> WriteOutcome:
    """Spans new, updated or unchanged, against the copies stored before this write."""
    stored = {(trace_id, r["span_id"]): tuple(r[c] for c in SPAN_CONTENT)
              for trace_id, rows in stored_spans.items() for r in rows}
    outcome = WriteOutcome()
    for row in rows_sent:
        before = stored.get((row[0], row[1]))
        if before is None:
            outcome.spans_new += 1
        elif before == tuple(row[1:-1]):
            outcome.spans_unchanged += 1
        else:
            outcome.spans_updated += 1
    return outcome


def _day_number(timestamp_ms: int) -> int:
    return timestamp_ms // 86_400_000


def _header(t: Trace) -> tuple:
    return (t.timestamp_ms, t.execution_time_ms, t.status, t.name, t.request, t.response, t.session_id, t.user_id,
            t.model, t.prompt_version, t.environment, t.input_tokens, t.output_tokens, _json(t.metadata), t.source,
            t.source_id)


def _span_row(trace_id: str, s: Any, version: int) -> tuple:
    return (trace_id, s.span_id, s.parent_span_id, s.name, s.span_type, s.start_time_ns, s.end_time_ns, s.status,
            s.status_message, s.inputs, s.outputs, s.model, s.input_tokens, s.output_tokens, s.tool_name,
            _json(s.attributes), _json(s.events), version)


def _write_feedback(client: ClickHouseClient, batch: Sequence[Trace], version: int, now_ms: int) -> None:
    """Tags, labels and scores that arrived with the traces (tags people set later are kept)."""
    tags = [(t.trace_id, k, v, now_ms, f"ingest:{t.source}", version) for t in batch for k, v in t.tags.items()]
    labels = [(f"{t.trace_id}:{label.source}:{i}", t.trace_id, label.criterion, label.value, label.numeric_value,
               label.reviewer, label.rationale, label.created_at_ms, label.source, version)
              for t in batch for i, label in enumerate(t.labels)]
    scores = [(s.run_id, s.judge, t.trace_id, s.verdict, s.score, s.value, s.rationale, s.created_at_ms, version)
              for t in batch for s in t.scores]
    client.insert("tags", tags, TAG_COLUMNS)
    client.insert("labels", labels, LABEL_COLUMNS)
    client.insert("scores", scores, SCORE_COLUMNS)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
