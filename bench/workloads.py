"""The questions both systems answer, in each one's own words (from seeds/003 and the issue).

A row pairs the tracesieve filter (or SQL) with the MLflow filter string the seed would write.
Where the two languages differ the row says so; ``note`` goes into the report verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 86_400_000
PAGE = 20                   # traces per page, what an agent asks for
PAGES = 10                  # "page-token paging to the 10th page"


@dataclass(frozen=True)
class Question:
    key: str
    title: str
    tracesieve: str
    mlflow: str | tuple[str, ...]
    note: str = ""


def search_questions(now_ms: int) -> list[Question]:
    day = now_ms - DAY_MS
    return [
        Question("search.no_filter", "search: no filter", "", ""),
        Question("search.status", "search: status", "attributes.status = 'ERROR'", "attributes.status = 'ERROR'"),
        Question("search.tag_eq", "search: tag equality", "tags.environment = 'production'",
                 "tags.environment = 'production'"),
        Question("search.tag_window", "search: tag + time window",
                 f"tags.environment = 'production' AND attributes.timestamp_ms > {day}",
                 f"tags.environment = 'production' AND attributes.timestamp_ms > {day}"),
        Question("search.span_predicate", "search: span predicate",
                 "span.type = 'TOOL' AND span.status = 'ERROR'", "span.type = 'TOOL' AND span.status = 'ERROR'",
                 "tracesieve: one span has both; MLflow: any TOOL span and any ERROR span"),
        Question("search.text", "search: text in request", "attributes.request ILIKE '%refund%'",
                 "trace.text ILIKE '%refund%'",
                 "MLflow has no request filter; trace.text searches every span's content"),
        Question("search.or_tags", "search: OR of two tags",
                 "tags.eval_candidate = 'error_case' OR tags.eval_candidate = 'slow_response'",
                 ("tags.eval_candidate = 'error_case'", "tags.eval_candidate = 'slow_response'"),
                 "MLflow has no OR: two searches merged by time, as the seed advises"),
    ]


def analysis_sql(now_ms: int, trace_id: str) -> dict[str, list[str]]:
    """The seed's analysis workflows as the query_sql calls an agent makes against tracesieve."""
    day = now_ms - DAY_MS
    return {
        "analysis.error_rate_24h": [
            f"""SELECT count(*) AS total, count(*) FILTER (WHERE status = 'ERROR') AS errors,
                   1 - count(*) FILTER (WHERE status = 'ERROR') / count(*) AS success_rate,
                   quantile_cont(execution_time_ms, 0.5) AS p50_ms, quantile_cont(execution_time_ms, 0.95) AS p95_ms
                FROM traces WHERE timestamp_ms >= {day}""",
            f"""SELECT trace_id, left(request, 200) AS request FROM traces
                WHERE timestamp_ms >= {day} AND status = 'ERROR' LIMIT 5""",
        ],
        "analysis.span_latency_trace": [
            f"""SELECT span_type, count(*) AS calls, sum(duration_ms) / 1000 AS total_s, avg(duration_ms) / 1000 AS avg_s
                FROM otel_spans WHERE trace_id = '{trace_id}' GROUP BY 1 ORDER BY 3 DESC""",
        ],
        "analysis.span_latency_window": [
            f"""SELECT s.span_type, count(*) AS calls, sum(s.end_time_ns - s.start_time_ns) / 1e9 AS total_s,
                   avg(s.end_time_ns - s.start_time_ns) / 1e9 AS avg_s
                FROM spans s JOIN traces t USING (trace_id) WHERE t.timestamp_ms >= {day}
                GROUP BY 1 ORDER BY 3 DESC""",
        ],
    }


TITLES = {
    "ingest": "ingest OTLP JSON (spans/s)",
    "search.page10": f"search: page-token paging to page {PAGES} ({PAGE}/page)",
    "analysis.error_rate_24h": "seed: error rate + p50/p95 latency, last 24 h",
    "analysis.span_latency_trace": "seed: latency by span type, one trace",
    "analysis.span_latency_window": "latency by span type, last 24 h",
    "dataset.from_tags": "seed: dataset from ~10k tagged traces",
    "tag.by_ids": "tagging by ids (tags/s)",
    "tag.by_filter": "tagging by filter (tags/s)",
}
#: Rows whose figure is a throughput (higher is better); the rest are seconds per call.
THROUGHPUT = {"ingest", "tag.by_ids", "tag.by_filter"}
