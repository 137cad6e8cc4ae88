"""How the demo agent's steps look as spans: layout on one clock, JSON payloads, tool calls.

Split from ``generate.py`` so the story logic (who asks what, which failure is seeded) stays
apart from the mechanics of turning a step into a span. Spans go through normal pydantic
validation (in pydantic 2 that is faster than ``model_construct``'s Python loop).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from server.demo.catalog import DOCS_BY_TOPIC, KB_DOCS, TOOL_ERROR_WEIGHTS, TOOL_ERRORS, TOPICS, Doc
from tools.models import Span

NS_PER_MS = 1_000_000
#: The argument a malformed call gets wrong, per tool.
_PRIMARY_ARG = {"lookup_order": "order_id", "issue_refund": "order_id", "track_shipment": "order_id",
                "reset_password": "email", "search_products": "query"}

#: The one JSON encoder used for every payload (compact, keeps non-ASCII readable).
dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

#: Each KB doc pre-encoded up to its score, so a retriever output is a string join, not a dump.
_DOC_JSON_HEAD: dict[str, str] = {d.id: dumps({"id": d.id, "title": d.title, "text": d.text})[:-1] + ", \"score\": "
                                  for d in KB_DOCS}


def obj(**members: str) -> str:
    """A JSON object from already-encoded member values, so a long text is encoded only once."""
    return "{" + ", ".join(f'"{k}": {v}' for k, v in members.items()) + "}"


def messages(*turns: tuple[str, str]) -> str:
    """A chat ``messages`` array from ``(role, already-encoded content)`` pairs."""
    return "[" + ", ".join(f'{{"role": "{role}", "content": {content}}}' for role, content in turns) + "]"


def ms_to_ns(ms: float) -> int:
    """A duration in ms as ns, at least 1 ms so no span is ever empty."""
    return max(NS_PER_MS, int(ms * NS_PER_MS))


def retrieval_json(docs: list[Doc], scores: list[float]) -> str:
    """The ``search_kb`` output: ``[{"id", "title", "text", "score"}, ...]`` as JSON text."""
    return "[" + ", ".join(f"{_DOC_JSON_HEAD[d.id]}{s:.3f}}}" for d, s in zip(docs, scores)) + "]"


class SpanLayout:
    """Lays out a trace's spans on one clock: children run in sequence inside the root span."""

    def __init__(self, r: random.Random, ts_ms: int) -> None:
        self.r = r
        self.t0 = ts_ms * NS_PER_MS
        self.cur = self.t0 + r.randint(1, 8) * NS_PER_MS
        self.spans: list[Span] = []
        self.root_id = f"{r.getrandbits(64):016x}"

    def child(self, name: str, span_type: str, dur_ns: int, *, status: str = "OK", status_message: str | None = None,
              inputs: str | None = None, outputs: str | None = None, model: str | None = None,
              input_tokens: int | None = None, output_tokens: int | None = None, tool_name: str | None = None,
              attributes: dict[str, Any] | None = None, events: list[dict[str, Any]] | None = None) -> None:
        """Append a child of the root that starts at the cursor and lasts ``dur_ns``."""
        self.spans.append(Span(
            span_id=f"{self.r.getrandbits(64):016x}", parent_span_id=self.root_id, name=name, span_type=span_type,
            start_time_ns=self.cur, end_time_ns=self.cur + dur_ns, status=status, status_message=status_message,
            inputs=inputs, outputs=outputs, model=model, input_tokens=input_tokens, output_tokens=output_tokens,
            tool_name=tool_name, attributes=attributes or {}, events=events or []))
        self.cur += dur_ns
        self.gap(self.r.randint(2, 40))

    def gap(self, ms: int) -> None:
        """Idle time between spans (agent bookkeeping, a retry's back-off)."""
        self.cur += ms * NS_PER_MS

    def exc(self, message: str, dur_ms: float) -> list[dict[str, Any]]:
        """OTel-style exception event at the end of a span that starts at the cursor now."""
        etype, _, text = message.partition(": ")
        return [{"name": "exception", "timestamp_ns": self.cur + ms_to_ns(dur_ms),
                 "attributes": {"exception.type": etype, "exception.message": text}}]

    def close(self, request: str, response: str | None, error: str | None) -> tuple[list[Span], int]:
        """Add the root ``support_agent`` span around the children; return spans and duration (ms)."""
        end = self.cur + self.r.randint(1, 10) * NS_PER_MS
        events = []
        if error:
            events = [{"name": "exception", "timestamp_ns": end,
                       "attributes": {"exception.type": error.partition(":")[0], "exception.message": error}}]
        root = Span(
            span_id=self.root_id, parent_span_id=None, name="support_agent", span_type="AGENT", start_time_ns=self.t0,
            end_time_ns=end, status="ERROR" if error else "OK", status_message=error, inputs=request,
            outputs=response, model=None, input_tokens=None, output_tokens=None, tool_name=None,
            attributes={}, events=events)
        self.spans.insert(0, root)
        return self.spans, (end - self.t0) // NS_PER_MS



def guardrail_span(b: SpanLayout, trigger: tuple[str, str, str] | None, question_json: str) -> None:
    """The ``pii_guardrail`` check on the user message: OK, or ERROR with what it flagged."""
    r = b.r
    dur = r.lognormvariate(math.log(45), 0.5)
    if trigger is None:
        b.child("pii_guardrail", "GUARDRAIL", ms_to_ns(dur), status="OK", inputs=obj(text=question_json),
                outputs='{"flagged": false, "action": "allow"}')
        return
    _, action, entity = trigger
    what = "prompt injection" if action == "block" else entity
    msg = f"GuardrailTriggered: pii_guardrail flagged {what} in user message (action={action})"
    b.child("pii_guardrail", "GUARDRAIL", ms_to_ns(dur), status="ERROR", status_message=msg,
            inputs=obj(text=question_json),
            outputs=dumps({"flagged": True, "action": action, "entities": [entity]}),
            attributes={"guardrail.action": action})


def retrieve(b: SpanLayout, topic: str, query_json: str) -> list[Doc]:
    """``search_kb``: two docs of the question's topic and one near miss, best score first."""
    r = b.r
    own = DOCS_BY_TOPIC[topic]
    other = DOCS_BY_TOPIC[r.choice([t for t in TOPICS if t != topic])]
    docs = r.sample(own, 2) + [r.choice(other)]
    scores = [r.uniform(0.78, 0.93)]
    scores += [scores[0] - r.uniform(0.03, 0.15), scores[0] - r.uniform(0.18, 0.3)]
    b.child("search_kb", "RETRIEVER", ms_to_ns(r.lognormvariate(math.log(140), 0.5)),
            inputs=obj(query=query_json, top_k="3"), outputs=retrieval_json(docs, scores))
    return docs


def tool_spans(b: SpanLayout, tool: str, s: dict[str, str], fail: bool) -> bool:
    """One tool call or, if ``fail``, an ERROR call then a retry with adjusted arguments.

    Returns True if the retry failed too (the answer then apologises).
    """
    r = b.r
    args, result = tool_io(tool, s)
    if not fail:
        b.child(tool, "TOOL", ms_to_ns(r.lognormvariate(math.log(250), 0.8)), tool_name=tool, status="OK",
                inputs=dumps(args), outputs=dumps(result), attributes={"attempt": 1})
        return False
    template, kind = r.choices(TOOL_ERRORS, weights=TOOL_ERROR_WEIGHTS)[0]
    key = _PRIMARY_ARG[tool]
    bad_args, retry_args = dict(args), {**args, "attempt": 2}
    if kind == "bad_argument":
        value = args[key]
        bad_args[key] = (r.choice(("#", "A-", "order ")) + value if key == "order_id"
                         else value.upper() + " " if key == "email" else value.lower() + "??")
    elif kind == "timeout":
        retry_args["timeout_s"] = 30
    elif kind == "upstream":
        retry_args["use_fallback"] = True
    else:
        retry_args["backoff_s"] = r.randint(1, 8)
    timeout = r.choice((5, 8, 10, 10))
    req = f"{r.getrandbits(32):08x}"
    context = f"order {s['order_id']}" if key == "order_id" else f"request id {req}"
    msg = template.format(tool=tool, timeout=timeout, context=context, req=req, arg=key, bad=bad_args[key],
                          wait=r.randint(1, 30))
    dur = timeout * 1000.0 if kind == "timeout" else r.lognormvariate(math.log(120), 0.6)
    b.child(tool, "TOOL", ms_to_ns(dur), tool_name=tool, status="ERROR", status_message=msg,
            inputs=dumps(bad_args), events=b.exc(msg, dur), attributes={"attempt": 1})
    b.gap(r.randint(200, 1500) if kind == "rate_limit" else r.randint(20, 200))
    retry_failed = r.random() < 0.2
    dur = r.lognormvariate(math.log(300), 0.6)
    if retry_failed:
        msg2 = f"ConnectionError: {tool}: upstream service returned HTTP 503 (request id {r.getrandbits(32):08x})"
        b.child(tool, "TOOL", ms_to_ns(dur), tool_name=tool, status="ERROR", status_message=msg2,
                inputs=dumps(retry_args), events=b.exc(msg2, dur), attributes={"attempt": 2})
    else:
        b.child(tool, "TOOL", ms_to_ns(dur), tool_name=tool, status="OK", inputs=dumps(retry_args),
                outputs=dumps(result), attributes={"attempt": 2})
    return retry_failed

def tool_io(tool: str, s: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Arguments and result of a successful call of ``tool`` for the user's slots."""
    oid = s["order_id"]
    if tool == "lookup_order":
        return {"order_id": oid}, {"order_id": oid, "status": s["status_text"], "total": float(s["price"]),
                                   "items": [{"name": s["product"], "qty": 1, "price": float(s["price"])}],
                                   "carrier": s["carrier"]}
    if tool == "issue_refund":
        return ({"order_id": oid, "amount": float(s["amount"]), "reason": "customer_request"},
                {"refund_id": s["refund_id"], "status": "pending", "amount": float(s["amount"]), "eta_days": 5})
    if tool == "reset_password":
        return {"email": s["email"]}, {"sent": True, "channel": "email", "expires_in_min": 30}
    if tool == "track_shipment":
        return {"order_id": oid}, {"carrier": s["carrier"], "status": "in_transit", "last_scan": s["city"],
                                   "eta": s["eta"]}
    return ({"query": s["product"], "limit": 5},
            {"results": [{"name": s["product"], "price": float(s["price"]), "in_stock": s["stock_text"] == "in stock"}]})
