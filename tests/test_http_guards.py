"""HTTP hardening against a real server process: Host/Origin checked on every bind, a token
needed off 127.0.0.1/::1/localhost, RFC 6750 token handling, and deadlines for slow clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from server.http.transport import http_app
from server.mcp.app import build_app
from server.storage.duckdb.store import DuckDBTraceStore
from tests.test_transports import REPO, free_port
from tools.errors import InvalidInputError
from tests.live_server import stop_process

TOKEN = "t0k3n-for-the-guards-test"
HOST = "127.0.0.2"  # loopback, but not one of the names that may serve without a token
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("guards") / "traces.duckdb"
    DuckDBTraceStore(db).release()
    port = free_port()
    env = {**os.environ, "TRACESIEVE_TOKEN": TOKEN, "TRACESIEVE_HTTP_HEADER_TIMEOUT_S": "1",
           "TRACESIEVE_HTTP_BODY_TIMEOUT_S": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--db", str(db), "--http", "--host", HOST,
                             "--port", str(port)], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read()
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
    yield f"http://{HOST}:{port}/mcp"
    stop_process(proc)


def post(url: str, headers: list[tuple[str, str]]) -> httpx2.Response:
    return httpx2.post(url, json=INIT, headers=[*MCP_HEADERS.items(), *headers], timeout=30)


@pytest.mark.parametrize("host", ["127.0.0.2", "0.0.0.0", "10.1.2.3"])
def test_binds_other_than_the_loopback_names_need_a_token(db_path: Path, host: str) -> None:
    with pytest.raises(InvalidInputError, match=f"Refusing to serve on {host} without authentication"):
        http_app(build_app(DuckDBTraceStore(db_path)), host=host, token=None)


@pytest.mark.parametrize("token, words", [("   ", "The bearer token is blank."),
                                          ("two words", "contains whitespace")])
def test_a_blank_or_spaced_token_is_refused_at_start(db_path: Path, token: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        http_app(build_app(DuckDBTraceStore(db_path)), host="127.0.0.1", token=token)


def test_a_foreign_host_or_origin_is_refused_even_with_the_token(server: str) -> None:
    auth = ("authorization", f"Bearer {TOKEN}")
    assert post(server, [auth]).status_code == 200
    assert post(server, [auth, ("host", "evil.example")]).status_code == 421
    assert post(server, [auth, ("origin", "http://evil.example")]).status_code == 403
    assert post(server, [auth, ("origin", f"http://{HOST}:1234")]).status_code == 200


@pytest.mark.parametrize("headers, status, challenge", [
    ([], 401, 'Bearer realm="tracesieve"'),
    ([("authorization", "Bearer wrong")], 401, 'Bearer realm="tracesieve", error="invalid_token"'),
    ([("authorization", "Bearer")], 400, 'Bearer realm="tracesieve", error="invalid_request"'),
    ([("authorization", f"Basic {TOKEN}")], 400, 'Bearer realm="tracesieve", error="invalid_request"'),
    ([("authorization", "Bearer wrong"), ("authorization", f"Bearer {TOKEN}")], 400,
     'Bearer realm="tracesieve", error="invalid_request"'),
    ([("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")], 400,
     'Bearer realm="tracesieve", error="invalid_request"'),
])
def test_missing_wrong_blank_or_duplicate_credentials_are_refused(server: str, headers: list, status: int,
                                                                   challenge: str) -> None:
    response = post(server, headers)
    assert response.status_code == status
    assert response.headers["www-authenticate"] == challenge


@pytest.mark.anyio
async def test_the_bearer_scheme_is_case_insensitive_through_the_real_client(server: str) -> None:
    for scheme in ("bearer", "BEARER"):
        authed = httpx2.AsyncClient(headers={"Authorization": f"{scheme} {TOKEN}"})
        async with authed, Client(streamable_http_client(server, http_client=authed)) as client:
            result = await client.call_tool("describe_store", {})
        assert result.structured_content["trace_count"] == 0


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(20)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def test_half_sent_headers_are_cut_off(server: str) -> None:
    port = int(server.split(":")[2].split("/")[0])
    with socket.create_connection((HOST, port)) as sock:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.2\r\n")  # ...and never the rest
        assert _read_all(sock) == b"", "the server closed the connection without a response"


def test_a_body_that_never_finishes_gets_408(server: str) -> None:
    port = int(server.split(":")[2].split("/")[0])
    with socket.create_connection((HOST, port)) as sock:
        sock.sendall(f"POST /mcp HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":".encode())
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"the request body did not arrive within 1s" in answer
