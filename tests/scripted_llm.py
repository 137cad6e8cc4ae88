"""A real HTTP server on 127.0.0.1 that speaks OpenAI chat-completions and Anthropic Messages with
scripted answers, so provider tests exercise real sockets, status codes and timeouts offline.

By default it grades like a judge would: a prompt containing ``FAIL-ME`` gets score 0.1, any
other 0.9. ``script`` queues special answers (HTTP errors, malformed JSON, refusals, delays)
that are served first, in order. Every request is recorded for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    """One scripted reply: an HTTP status, a judge text (or refusal), and an optional delay."""

    status: int = 200
    text: str | None = None
    refusal: str | None = None
    delay_s: float = 0.0
    raw_body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ScriptedLLM:
    base_url: str = ""
    script: list[Answer] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    latency_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def default_text(self, prompt: str) -> str:
        score = 0.1 if "FAIL-ME" in prompt else 0.9
        return json.dumps({"score": score, "reason": "scripted grade"})

    def next_answer(self, prompt: str) -> Answer:
        with self.lock:
            if self.script:
                return self.script.pop(0)
        return Answer(text=self.default_text(prompt), delay_s=self.latency_s)

    @property
    def prompts(self) -> list[str]:
        return [r["prompt"] for r in self.requests]


def _handler(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            anthropic = self.path.endswith("/messages")
            prompt = (body.get("system") or "") + "\n" + "\n".join(
                m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
            with llm.lock:
                llm.requests.append({"path": self.path, "body": body, "prompt": prompt,
                                     "headers": dict(self.headers.items())})
            answer = llm.next_answer(prompt)
            if answer.delay_s:
                time.sleep(answer.delay_s)
            if answer.raw_body is not None:
                payload = answer.raw_body
            elif answer.status != 200:
                payload = json.dumps({"error": {"message": f"scripted {answer.status}"}})
            elif anthropic:
                payload = json.dumps({
                    "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                    "content": [{"type": "text", "text": answer.text or ""}] if answer.text is not None else [],
                    "stop_reason": "refusal" if answer.refusal else "end_turn",
                    "usage": {"input_tokens": len(prompt) // 4, "output_tokens": 12}})
            else:
                payload = json.dumps({
                    "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": answer.text, "refusal": answer.refusal}}],
                    "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 12}})
            data = payload.encode()
            try:
                self.send_response(answer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):   # the client timed out and left
                pass

    return Handler


@contextmanager
def scripted_llm() -> Iterator[ScriptedLLM]:
    """Serve on an ephemeral 127.0.0.1 port for the length of the block."""
    llm = ScriptedLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(llm))
    server.daemon_threads = True
    llm.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield llm
    finally:
        server.shutdown()
        server.server_close()
