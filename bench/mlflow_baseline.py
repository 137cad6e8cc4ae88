"""The baseline: the same OTLP files in MLflow 3.x (sqlite tracking store), asked the seed's way.

Loading uses MLflow's own fastest path for these files: what its OTLP endpoint (``/v1/traces``,
``mlflow/server/otel_api.py``) does per request, minus HTTP: ids hex->base64, protobuf JSON
``Parse``, ``Span.from_otel_proto``, then ``SqlAlchemyStore.log_spans`` for 100 traces at a time
(one DB session per call; larger batches measured slower per trace). The client-side tracing
SDK (``mlflow.start_span``) is slower still, so it is not used.

Questions use the public APIs the seed uses: ``MlflowClient.search_traces`` (metadata only,
``include_spans=False``, its cheapest form) for one page of a plain search,
``mlflow.search_traces`` + pandas for the analysis workflows, ``mlflow.set_trace_tag`` for tags.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.datagen import Dataset
from bench.measure import Timing, measure
from bench.workloads import DAY_MS, PAGE, PAGES, search_questions
from tools.span_types import canonical_span_type

EXPERIMENT = "bench"


#: No network here, and a benchmark must not depend on one: MLflow would otherwise fetch the model
#: price catalog over HTTP on the first log_spans (14 s of retries offline) and send telemetry.
OFFLINE_ENV = {"MLFLOW_MODEL_CATALOG_URI": "", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "LITELLM_LOCAL_MODEL_COST_MAP": "True", "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false"}


def _quiet() -> None:
    os.environ.update(OFFLINE_ENV)
    warnings.filterwarnings("ignore")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)


def mlflow_id(hex_id: str) -> str:
    return f"tr-{hex_id}"


class MlflowSide:
    def __init__(self, ds: Dataset, store_dir: Path) -> None:
        _quiet()
        import mlflow
        from mlflow.tracking import MlflowClient

        self.ds = ds
        self.dir = store_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.mlflow = mlflow
        mlflow.set_tracking_uri(f"sqlite:///{self.dir / 'mlflow.db'}")
        self.client = MlflowClient()
        exp = mlflow.get_experiment_by_name(EXPERIMENT)
        self.eid = exp.experiment_id if exp else mlflow.create_experiment(
            EXPERIMENT, artifact_location=(self.dir / "artifacts").as_uri())
        mlflow.set_experiment(experiment_id=self.eid)
        self.store = self.client._tracking_client.store

    @property
    def complete_marker(self) -> Path:
        return self.dir / ".complete"

    # ---- loading ---------------------------------------------------------------------------
    def load(self, *, reuse: bool, log: Any = print) -> dict[str, Any] | None:
        """Log every trace with ``log_spans`` (timed). Returns None when a complete store is reused."""
        if reuse and self.complete_marker.exists():
            return None
        from google.protobuf.json_format import Parse
        from mlflow.entities import Span
        from mlflow.server.otel_api import _convert_otlp_json_ids_to_base64
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        def log_line(line: bytes) -> tuple[int, int]:
            request = ExportTraceServiceRequest()
            Parse(_convert_otlp_json_ids_to_base64(line), request, ignore_unknown_fields=True)
            spans = [Span.from_otel_proto(s, resource=rs.resource) for rs in request.resource_spans
                     for ss in rs.scope_spans for s in ss.spans]
            self.store.log_spans(self.eid, spans)
            return len(request.resource_spans), len(spans)

        # Warm-up: MLflow's first log_spans pays one-time set-up (lazy imports, the bundled model
        # price catalog). Log the first request untimed; the rate is over the rest.
        lines = (line for path in self.ds.files for line in path.open("rb"))
        warm_traces, warm_spans = log_line(next(lines))
        spans_done = traces_done = 0
        started = time.perf_counter()
        last_log = started
        for line in lines:
            t, s = log_line(line)
            traces_done += t
            spans_done += s
            if time.perf_counter() - last_log > 60:
                last_log = time.perf_counter()
                log(f"  mlflow loaded {traces_done:,}/{self.ds.n:,} traces "
                    f"({spans_done / (last_log - started):,.0f} spans/s)")
        seconds = time.perf_counter() - started
        self.complete_marker.write_text(str(time.time()))
        if not traces_done:  # a tiny store: the warm-up line was all there was
            traces_done, spans_done = warm_traces, warm_spans
        return {"ingest": {"seconds": seconds, "traces": traces_done, "spans": spans_done,
                           "rate": spans_done / max(seconds, 1e-9), "warmup_traces": warm_traces},
                "db_bytes": (self.dir / "mlflow.db").stat().st_size}

    # ---- questions -------------------------------------------------------------------------
    def search(self, filter_text: str, *, token: str | None = None):
        return self.client.search_traces(experiment_ids=[self.eid], filter_string=filter_text or None,
                                         max_results=PAGE, order_by=["timestamp_ms DESC"], page_token=token,
                                         include_spans=False)

    def search_or(self, filters: tuple[str, ...]) -> list[Any]:
        """No OR in MLflow filters: one search per branch, merged newest first (the seed's advice)."""
        merged = {t.info.trace_id: t for f in filters for t in self.search(f)}
        return sorted(merged.values(), key=lambda t: t.info.timestamp_ms, reverse=True)[:PAGE]

    def page_to(self, filter_text: str, pages: int = PAGES) -> int:
        token, seen = None, 0
        for _ in range(pages):
            page = self.search(filter_text, token=token)
            seen += len(page)
            token = page.token
            if not token:
                break
        return seen

    def error_rate_24h(self) -> dict[str, Any]:
        """seeds/003 "Detect Error Patterns Across Traces", verbatim apart from 3.x column names."""
        yesterday = self.ds.now_ms - DAY_MS
        traces = self.mlflow.search_traces(filter_string=f"attributes.timestamp_ms >= {yesterday}",
                                           locations=[self.eid])
        status = "state" if "state" in traces.columns else "status"
        duration = "execution_duration" if "execution_duration" in traces.columns else "execution_time_ms"
        total = len(traces)
        errors = traces[traces[status] == "ERROR"]
        samples = [row["request"] for _, row in errors.head(5).iterrows()]
        return {"total": total, "errors": len(errors), "success_rate": (total - len(errors)) / total if total else 0,
                "p50_ms": float(traces[duration].median()), "p95_ms": float(traces[duration].quantile(0.95)),
                "samples": len(samples)}

    def span_latency_trace(self, hex_id: str) -> dict[str, tuple[int, float]]:
        """seeds/003 "Profile Trace Performance by Span Type": search by trace id, then search_spans."""
        traces = self.mlflow.search_traces(filter_string=f"tags.`mlflow.traceId` = '{mlflow_id(hex_id)}'",
                                           return_type="list", locations=[self.eid])
        if not traces:  # 3.x no longer mirrors the id into a tag: read the trace directly
            traces = [self.mlflow.get_trace(mlflow_id(hex_id))]
        return _by_type(traces[0].data.spans)

    def span_latency_window(self) -> dict[str, tuple[int, float]]:
        traces = self.mlflow.search_traces(filter_string=f"attributes.timestamp_ms >= {self.ds.now_ms - DAY_MS}",
                                           return_type="list", locations=[self.eid])
        return _by_type([s for t in traces for s in t.data.spans])

    def dataset_from_tags(self) -> int:
        """seeds/003 "Build Datasets from Tagged Traces" for all ~10k tagged traces."""
        tagged = self.mlflow.search_traces(filter_string="tags.eval_candidate IS NOT NULL", max_results=10_000,
                                           locations=[self.eid])
        eval_data = [{"inputs": row["request"], "outputs": row["response"]} for _, row in tagged.iterrows()]
        return len(eval_data)

    def run(self, *, repeats: int, budget_s: float, dataset: bool = True) -> dict[str, Timing]:
        out: dict[str, Timing] = {}
        for q in search_questions(self.ds.now_ms):
            if isinstance(q.mlflow, tuple):
                out[q.key] = measure(lambda q=q: len(self.search_or(q.mlflow)), repeats=repeats, budget_s=budget_s)
            else:
                out[q.key] = measure(lambda q=q: len(self.search(q.mlflow)), repeats=repeats, budget_s=budget_s)
        out["search.page10"] = measure(lambda: self.page_to(""), repeats=repeats, budget_s=budget_s)
        out["analysis.error_rate_24h"] = measure(self.error_rate_24h, repeats=repeats, budget_s=budget_s)
        out["analysis.span_latency_trace"] = measure(lambda: self.span_latency_trace(self.ds.sample_ids[0]),
                                                     repeats=repeats, budget_s=budget_s)
        out["analysis.span_latency_window"] = measure(self.span_latency_window, repeats=repeats, budget_s=budget_s)
        if dataset:
            out["dataset.from_tags"] = measure(self.dataset_from_tags, repeats=min(repeats, 3), budget_s=budget_s)
        out.update(self.tagging(repeats=repeats, budget_s=budget_s))
        return out

    def tagging(self, *, repeats: int, budget_s: float, cap: int = 200) -> dict[str, Timing]:
        """Tags/s with ``mlflow.set_trace_tag`` (one call per trace: MLflow has no batch tag API).
        At most ``cap`` traces per run; by filter includes finding the ids with search_traces."""
        ids = [mlflow_id(h) for h in list(self.ds.tagged)[:cap]]
        rounds = iter(range(10**9))

        def by_ids() -> int:
            value = f"v{next(rounds)}"
            for trace_id in ids:
                self.mlflow.set_trace_tag(trace_id, "bench_ids", value)
            return len(ids)

        def by_filter() -> int:
            value = f"v{next(rounds)}"
            found, token = [], None
            while len(found) < cap:
                page = self.client.search_traces(experiment_ids=[self.eid], filter_string="attributes.status = 'ERROR'",
                                                 max_results=min(500, cap - len(found)), page_token=token,
                                                 include_spans=False)
                found += [t.info.trace_id for t in page]
                token = page.token
                if not token:
                    break
            for trace_id in found:
                self.mlflow.set_trace_tag(trace_id, "bench_filter", value)
            return len(found)

        return {"tag.by_ids": measure(by_ids, repeats=min(repeats, 3), budget_s=budget_s),
                "tag.by_filter": measure(by_filter, repeats=min(repeats, 3), budget_s=budget_s)}


def _by_type(spans: list[Any]) -> dict[str, tuple[int, float]]:
    durations: dict[str, list[float]] = defaultdict(list)
    for s in spans:
        # named as tracesieve stores them (one name per kind: MLflow's CHAT_MODEL is LLM; tools.span_types)
        name = canonical_span_type(str(s.span_type)) or str(s.span_type)
        durations[name].append((s.end_time_ns - s.start_time_ns) / 1e9)
    return {k: (len(v), sum(v)) for k, v in durations.items()}
