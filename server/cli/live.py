"""Live traces from the CLI: ``receive`` (an OTLP/HTTP endpoint) and ``sync`` (follow an MLflow server)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from server.cli.common import db_option
from server.errors import cli_errors
from server.storage.duckdb.store import DuckDBTraceStore

log = logging.getLogger("tracesieve.otlp")


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (off loopback, --token is required).")
@click.option("--port", default=4318, show_default=True, type=click.IntRange(1, 65535),
              help="Port (4318 is the OTLP/HTTP default).")
@click.option("--token", envvar="TRACESIEVE_TOKEN", default=None,
              help="Bearer token senders must send (env TRACESIEVE_TOKEN); required off loopback.")
@click.option("--max-body-mb", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Largest request body accepted, after gzip (larger: 413).")
def receive(db: Path, host: str, port: int, token: str | None, max_body_mb: int) -> None:
    """Receive OpenTelemetry traces over OTLP/HTTP (POST /v1/traces) into the store.

    Protobuf or JSON, gzip or not; each request is answered 200 only once its spans are committed.
    Spans are upserted, so retries and traces split over many requests are stored exactly once.
    Point an SDK at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318, or a Collector's
    otlphttp exporter with endpoint: http://127.0.0.1:4318. `tracesieve serve --http` answers the same
    path next to /mcp.

    Example:

        tracesieve receive --db traces.duckdb --port 4318
    """
    import uvicorn

    from server.http.otlp_receiver import OtlpReceiver
    from server.http.transport import BearerAuth, is_loopback
    from tools.errors import InvalidInputError

    with cli_errors():
        if not is_loopback(host) and not token:
            raise InvalidInputError(f"Refusing to receive on {host} without authentication: anyone who can reach it "
                                    "could write traces. Pass --token (or set TRACESIEVE_TOKEN), or bind to 127.0.0.1.")
        receiver = OtlpReceiver(DuckDBTraceStore(db), max_body_bytes=max_body_mb * 2**20)
        app = BearerAuth(receiver, token) if token else receiver
        click.echo(f"Receiving OTLP/HTTP traces at http://{host}:{port}/v1/traces into {db}"
                   f"{' (bearer token required)' if token else ''}", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
    sys.exit(0)


COMMANDS: list[click.Command] = [receive]
