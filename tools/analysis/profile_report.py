"""The words of a profile: findings (largest contributor first) and the markdown an agent shows."""

from __future__ import annotations

from tools.analysis.common import count_text, markdown_table, ms_text, pct_text, usd_text
from tools.analysis.profile_models import ProfileTracesResult, SpanGroupProfile


def findings(r: ProfileTracesResult) -> list[str]:
    """Short sentences an agent can act on, the largest contributor first."""
    if r.trace_count == 0:
        return [f"No traces match ({r.selection}). Widen the filter, or call describe_store to see what is stored."]
    lat = r.latency
    out = [f"{count_text(r.trace_count)} trace(s), {count_text(r.error_count)} error(s) ({pct_text(r.error_rate, 1)}); "
           f"latency p50 {ms_text(lat.p50_ms)}, p95 {ms_text(lat.p95_ms)}, p99 {ms_text(lat.p99_ms)}."]
    ranked = [row for row in r.by_span_type if row.share_of_wall]
    if ranked:
        out.append("Self time by span type: " + ", ".join(
            f"{row.key} {pct_text(row.share_of_wall)}" for row in ranked[:3]) + " of wall time.")
    tail = sorted((row for row in r.by_span_type if row.share_of_p95_tail), key=lambda x: -(x.share_of_p95_tail or 0))
    if tail and r.p95_tail.traces:
        out.append(f"{tail[0].key} is {pct_text(tail[0].share_of_p95_tail)} of p95-tail latency "
                   f"(the {r.p95_tail.traces} trace(s) at or above p95 = {ms_text(r.p95_tail.threshold_ms)}).")
    if r.by_span_name:
        top = r.by_span_name[0]
        out.append(f"Largest span: '{top.key}', {pct_text(top.share_of_wall)} of wall time over {top.calls} call(s), "
                   f"avg {ms_text(top.avg_ms)}, p95 {ms_text(top.p95_ms)}.")
    failing = sorted((row for row in r.by_tool if row.errors), key=lambda x: -x.errors)
    if failing:
        out.append(f"Tool '{failing[0].key}' failed {failing[0].errors} of {failing[0].calls} call(s).")
    if r.tokens.input_tokens or r.tokens.output_tokens:
        spend = f"; estimated cost {usd_text(r.cost_usd)}" if r.cost_usd is not None else ""
        priced = sorted((m for m in r.by_model if m.cost_usd), key=lambda m: -(m.cost_usd or 0))
        top_model = f", most of it {priced[0].key} ({usd_text(priced[0].cost_usd)})" if priced else ""
        out.append(f"Tokens: {count_text(r.tokens.input_tokens)} in / {count_text(r.tokens.output_tokens)} out"
                   f"{spend}{top_model}.")
    if r.unpriced_models:
        out.append("No price for model(s) " + ", ".join(r.unpriced_models[:5])
                   + ": their cost is left out; pass prices={model: [input, output]} (USD per 1M tokens) to add it.")
    out += _group_findings(r)
    return out


def _group_findings(r: ProfileTracesResult) -> list[str]:
    timed = [g for g in r.groups if g.p95_ms is not None]
    if len(timed) < 2:
        return []
    slow, fast = max(timed, key=lambda g: g.p95_ms or 0), min(timed, key=lambda g: g.p95_ms or 0)
    out = [f"By {r.group_by}: slowest p95 is {_name(slow.group)} at {ms_text(slow.p95_ms)} ({slow.traces} trace(s)), "
           f"fastest {_name(fast.group)} at {ms_text(fast.p95_ms)}."]
    worst = max(r.groups, key=lambda g: (g.error_rate, g.traces))
    if worst.errors:
        out.append(f"Highest error rate by {r.group_by}: {_name(worst.group)} {pct_text(worst.error_rate, 1)} "
                   f"({worst.errors} of {worst.traces}).")
    return out


def _name(group: str | None) -> str:
    return "(none)" if group is None else f"'{group}'"


_SPAN_HEAD = ["calls", "total", "avg", "p95", "self", "% wall", "% p95 tail", "tok in", "tok out",
              "p95 in", "p95 out", "est. cost"]


def _span_table(title: str, rows: list[SpanGroupProfile]) -> str:
    body = [[row.key, count_text(row.calls), ms_text(row.total_ms), ms_text(row.avg_ms), ms_text(row.p95_ms),
             ms_text(row.self_ms), pct_text(row.share_of_wall), pct_text(row.share_of_p95_tail),
             count_text(row.input_tokens), count_text(row.output_tokens), count_text(row.p95_input_tokens),
             count_text(row.p95_output_tokens), usd_text(row.cost_usd)] for row in rows]
    return markdown_table([title, *_SPAN_HEAD], body, right=range(1, 13))


def markdown(r: ProfileTracesResult, findings: list[str]) -> str:
    parts = [f"**Profile of {r.selection}**", "\n".join(f"- {f}" for f in findings)]
    if r.trace_count == 0:
        return "\n\n".join(parts)
    for title, rows in (("span type", r.by_span_type), ("span name", r.by_span_name), ("tool", r.by_tool),
                        ("model", r.by_model)):
        if rows:
            parts.append(_span_table(title, rows))
    if r.groups:
        body = [[_name(g.group).strip("'"), count_text(g.traces), pct_text(g.error_rate, 1), ms_text(g.p50_ms),
                 ms_text(g.p95_ms), ms_text(g.p99_ms), count_text(g.input_tokens), count_text(g.output_tokens),
                 usd_text(g.cost_usd), f"{g.top_span_type or '—'} {pct_text(g.top_span_type_share)}"]
                for g in r.groups]
        parts.append(markdown_table([r.group_by or "group", "traces", "error rate", "p50", "p95", "p99", "tok in",
                                     "tok out", "est. cost", "top span type"], body, right=range(1, 9)))
    parts.append("_Self time = time a span ran with none of its children running (parallel spans split it), so "
                 "no instant counts twice; % wall = self time / trace wall time; % p95 tail = the same over the "
                 "traces at or above p95. Costs are estimates._")
    return "\n\n".join(parts)
