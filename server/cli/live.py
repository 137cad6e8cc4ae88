"""Live traces from the CLI: ``receive`` (an OTLP/HTTP endpoint) and ``sync`` (follow an MLflow server)."""

from __future__ import annotations

import click

from server.cli.common import open_backend, store_option
from server.errors import cli_errors
from server.storage.factory import StoreUrl


@click.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (off loopback, --token is required).")
@click.option("--port", default=4318, show_default=True, type=click.IntRange(1, 65535),
              help="Port (4318 is the OTLP/HTTP default).")
@click.option("--token", envvar="TRACESIEVE_TOKEN", default=None,
              help="Bearer token senders must send (env TRACESIEVE_TOKEN); required off loopback.")
@click.option("--max-body-mb", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Largest request body accepted, after gzip (larger: 413).")
def receive(db: StoreUrl, host: str, port: int, token: str | None, max_body_mb: int) -> None:
    """Receive OpenTelemetry traces over OTLP/HTTP (POST /v1/traces) into the store.

    Protobuf or JSON, gzip or not; each request is answered 200 only once its spans are committed.
    Spans are upserted, so retries and traces split over many requests are stored exactly once.
    Point an SDK at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318, or a Collector's
    otlphttp exporter with endpoint: http://127.0.0.1:4318. `tracesieve serve --http` answers the same
    path next to /mcp.

    Example:

        tracesieve receive --db traces.duckdb --port 4318
        tracesieve receive --store chdb:///data/traces --port 4318
    """
    import uvicorn

    from server.http.guards import BearerAuth, BodyDeadline, HeaderDeadlineProtocol, body_timeout, checked_token
    from server.http.otlp_receiver import OtlpReceiver

    with cli_errors():
        token = checked_token(host, token)   # the same token rules (and refusals) as serve --http
        backend = open_backend(db)
        receiver = OtlpReceiver(backend.traces, max_body_bytes=max_body_mb * 2**20)
        app = BodyDeadline(BearerAuth(receiver, token) if token else receiver, timeout_s=body_timeout(),
                           max_bytes=receiver.max_body_bytes)
        click.echo(f"Receiving OTLP/HTTP traces at http://{host}:{port}/v1/traces into {backend.location}"
                   f"{' (bearer token required)' if token else ''}", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on", http=HeaderDeadlineProtocol)


def _duration_ms(text: str) -> int:
    units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise click.BadParameter(f"'{text}' is not a duration; use a whole number and s, m, h or d (30s, 5m, 1h).")
    return int(text[:-1]) * units[text[-1]]


@click.command()
@store_option
@click.option("--from-mlflow", "uri", required=True, help="MLflow tracking URI (http://127.0.0.1:5000, sqlite:///mlflow.db).")
@click.option("--experiment", default=None, help="Experiment name or id (default: all experiments).")
@click.option("--follow", is_flag=True, help="Keep syncing every --every until interrupted (Ctrl-C).")
@click.option("--every", default="30s", show_default=True, help="With --follow: time between rounds (30s, 5m, 1h).")
@click.option("--overlap", default="1h", show_default=True,
              help="Each round re-reads this far before the newest trace seen, for late traces, spans and tags.")
@click.option("--push", is_flag=True, help="Also write tags and labels set in tracesieve back to the MLflow traces.")
def sync(db: StoreUrl, uri: str, experiment: str | None, follow: bool, every: str, overlap: str, push: bool) -> None:
    """Keep the store in step with an MLflow tracking server: new traces, late spans, changed tags,
    new assessments (HUMAN -> labels, LLM_JUDGE/CODE -> scores), incrementally and idempotently.

    A watermark per source is kept in the store (over ClickHouse, in its control plane); each round reads from it minus --overlap. With
    --push, tags and labels set here go back to MLflow (set_trace_tag, log_feedback as HUMAN with the
    reviewer as source). A progress line goes to stderr; one JSON report per round to stdout.

    Example:

        tracesieve sync --from-mlflow http://127.0.0.1:5000 --experiment support-agent --follow --every 30s --push
    """
    import json
    import os
    import time

    from server.ingestion.mlflow_sync import push_to_mlflow, source_key, sync_from_mlflow
    from server.storage.factory import open_sync_state

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # an unreachable server fails in seconds
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    pause_s, overlap_ms = _duration_ms(every) / 1000, _duration_ms(overlap)
    with cli_errors():
        backend = open_backend(db)
        store = backend.traces
        state = open_sync_state(db, backend, source_key(uri, experiment))
        while True:
            report = sync_from_mlflow(store, state, uri, experiment, overlap_ms=overlap_ms, on_batch=lambda r: click.echo(
                f"\rsynced {r.traces} traces ({r.spans_new} new spans, {r.spans_updated} updated)", err=True, nl=False))
            out = report.model_dump()
            if push:
                out["push"] = push_to_mlflow(state, uri).model_dump()
            click.echo(f"\rsync round done: {report.ingest.traces} traces written, {report.ingest.spans_new} new "
                       f"spans, watermark {report.watermark_ms}", err=True)
            click.echo(json.dumps(out))
            if not follow:
                break
            store.release()  # type: ignore[attr-defined]  # let other processes at a DuckDB file between rounds
            time.sleep(pause_s)


COMMANDS: list[click.Command] = [receive, sync]
