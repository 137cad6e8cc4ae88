"""Generate the demo traces: sessions of an Acme Store support agent, some of them failing.

Why a generator rather than a fixture file: demos and benchmarks need anything from a few
hundred to 100k traces anchored at "now", and tests need the exact failure each trace carries.
Everything is drawn from one seeded ``random.Random``, so a seed and ``now_ms`` pin the output.

Each seeded failure mode is decided *before* the trace is built and the spans are then made to
show it (an ERROR tool span and its retry, a citation of a doc that was not retrieved, ...), so
``metadata["demo_ground_truth"]`` is true by construction rather than inferred afterwards.
"""

from __future__ import annotations

import gc
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from server.demo import catalog as C
from server.demo.spans import SpanLayout, dumps, guardrail_span, messages, ms_to_ns, obj, retrieve, tool_spans
from tools.models import Label, Trace

#: Criterion names in ``metadata["demo_ground_truth"]``; "fail" marks the seeded failure.
DEMO_CRITERIA: tuple[str, ...] = ("tool_error", "citation_grounded", "correct_tool", "answer_length", "resubmission")
#: Share of all traces failing each criterion under prompt v12 (the long-running baseline).
FAILURE_RATES: dict[str, float] = {
    "tool_error": 0.06, "citation_grounded": 0.05, "correct_tool": 0.04, "answer_length": 0.04, "resubmission": 0.05,
}
#: Prompt v13 ("answer fully") regresses citation grounding and length: the story a gate should catch.
V13_FAILURE_RATES: dict[str, float] = {**FAILURE_RATES, "citation_grounded": 0.11, "answer_length": 0.07}
AGENT_CRASH_RATE = 0.03        # trace status ERROR: the agent itself failed
GUARDRAIL_TRIP_RATE = 0.025    # the pii_guardrail span flags the request (ERROR)
GUARDRAIL_SHARE = 0.35         # traces that run the guardrail at all
STAGING_SHARE = 0.20
CLAUDE_SHARE = 0.25
SESSION_TURNS: tuple[tuple[int, float], ...] = ((1, 0.40), (2, 0.25), (3, 0.15), (4, 0.10), (5, 0.06), (6, 0.04))
RESUBMIT_BOOST = 3.0           # users re-submit far more often after a visibly bad answer
_PREV_FAIL_SHARE = 0.22        # rough share of turns that look failed, to keep the overall rate
_DAY_MS = 86_400_000
_TOK_S = {"gpt-4o-mini": 0.0065, "claude-sonnet-4": 0.010}  # seconds per output token
_SYSTEM = {"gpt-4o-mini": "openai", "claude-sonnet-4": "anthropic"}
_SYSTEM_JSON = {version: dumps(prompt) for version, prompt in C.SYSTEM_PROMPTS.items()}


def _cum(weights: list[float] | tuple[float, ...]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


_INTENT_CUM = _cum([i.weight for i in C.INTENTS])
_TOOL_INTENT_SHARE = sum(i.weight for i in C.INTENTS if i.tools) / sum(i.weight for i in C.INTENTS)
_BLOCK_SHARE = GUARDRAIL_TRIP_RATE * sum(a == "block" for _, a, _ in C.GUARDRAIL_TRIGGERS) / len(C.GUARDRAIL_TRIGGERS)


class _Random(random.Random):
    """``random.Random`` whose choice/randint/randrange use one float draw instead of a bit loop.

    A quarter of the run time went to ``_randbelow``; the float form is ~3x cheaper and its bias
    (< 2**-40 for these small ranges) is irrelevant for demo data. Still fully seeded.
    """

    def choice(self, seq: Any) -> Any:  # type: ignore[override]
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:  # type: ignore[override]
        return a + int(self.random() * (b - a + 1))

    def randrange(self, start: int, stop: int | None = None) -> int:  # type: ignore[override]
        return int(self.random() * start) if stop is None else start + int(self.random() * (stop - start))


@dataclass(slots=True)
class _User:
    user_id: str
    email: str
    phone: str
    region: str


@dataclass(slots=True)
class _Turn:
    """What the user asked in one trace, kept so the next turn can re-submit it rephrased."""

    intent: C.Intent
    slots: dict[str, str]
    question: str
    model_question: str          # what the model saw (guardrail-redacted)
    template: int                # index into intent.questions; -1 for a guardrail trigger
    trigger: tuple[str, str, str] | None


def generate_demo_traces(n: int = 3000, *, seed: int = 7, now_ms: int, days: int = 21) -> list[Trace]:
    """Return ``n`` support-agent traces spread over the ``days`` before ``now_ms``, oldest first.

    Deterministic for a given ``(n, seed, now_ms, days)``; no network, no model, no global state.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    # Bulk allocation of ~n*7 acyclic objects: the cyclic GC would rescan them again and again
    # (a third of the run time at 100k) and can find nothing to free, so pause it meanwhile.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Generator(_Random(seed), now_ms, days, n).run(n)
    finally:
        if was_enabled:
            gc.enable()


def ground_truth(trace: Trace | Mapping[str, Any]) -> dict[str, str]:
    """The seeded ``{criterion: "pass"|"fail"}`` of a demo trace; ``{}`` for any other trace.

    Accepts a ``Trace`` or a stored row (whose metadata may still be JSON text).
    """
    meta = trace.metadata if isinstance(trace, Trace) else trace.get("metadata")
    if isinstance(meta, str):
        meta = json.loads(meta or "{}")
    truth = (meta or {}).get("demo_ground_truth") or {}
    return {str(k): str(v) for k, v in truth.items()}


def ground_truth_labels(trace: Trace, *, created_at_ms: int, reviewer: str = "demo-ground-truth",
                        criteria: tuple[str, ...] = DEMO_CRITERIA) -> list[Label]:
    """Human-style labels for ``trace`` taken from its known ground truth (for demo labelling)."""
    truth = ground_truth(trace)
    return [Label(trace_id=trace.trace_id, criterion=c, value=truth[c], reviewer=reviewer,
                  rationale="seeded by the demo generator", created_at_ms=created_at_ms, source="demo")
            for c in criteria if c in truth]


class _Generator:
    """One generation run: the RNG, the time window, the user pool and the traces built so far."""

    def __init__(self, rng: random.Random, now_ms: int, days: int, n: int) -> None:
        self.r = rng
        self.now_ms = now_ms
        self.start_ms = now_ms - days * _DAY_MS
        self.latest_session_ms = now_ms - 3 * 3_600_000   # sessions last < 2 h, so all stay before now
        v13_days = max(1, days // 7)
        self.v13_from = {"production": now_ms - v13_days * _DAY_MS,
                         "staging": max(self.start_ms, now_ms - (v13_days + 2) * _DAY_MS)}  # staging first
        self.app_patch_from = self.start_ms + days * _DAY_MS // 2
        first_day = self.start_ms // _DAY_MS
        self.hours = [(d * _DAY_MS + h * 3_600_000) for d in range(first_day, now_ms // _DAY_MS + 1) for h in range(24)]
        self.hours_cum = _cum([C.HOUR_WEIGHTS[(t // 3_600_000) % 24] * (0.7 if (t // _DAY_MS + 3) % 7 >= 5 else 1.0)
                               for t in self.hours])
        self.users = [self._user(f"cust_{100_000 + i}") for i in range(max(20, n // 6))]
        self.testers = [_User(f"qa-tester-{i:02d}", f"qa{i:02d}@acme.example.com", f"+1 (206) 555-01{i:02d}",
                              "us-east-1") for i in range(1, 9)]
        self.date_cache: dict[int, str] = {}
        self.mean_turns = sum(k * w for k, w in SESSION_TURNS)
        self.turns_cum = _cum([w for _, w in SESSION_TURNS])

    # ---- sessions and turns -------------------------------------------------------------
    def run(self, n: int) -> list[Trace]:
        out: list[Trace] = []
        while len(out) < n:
            self._session(out, n - len(out))
        out.sort(key=lambda t: (t.timestamp_ms, t.trace_id))
        return out

    def _session(self, out: list[Trace], limit: int) -> None:
        r = self.r
        env = "staging" if r.random() < STAGING_SHARE else "production"
        user = r.choice(self.testers) if env == "staging" else r.choice(self.users)
        session_id = f"sess-{r.getrandbits(48):012x}"
        channel = r.choices(C.CHANNELS, cum_weights=(0.6, 0.9, 1.0))[0][0]
        turns = min(limit, SESSION_TURNS[r.choices(range(len(SESSION_TURNS)), cum_weights=self.turns_cum)[0]][0])
        ts = self._session_start()
        prev: _Turn | None = None
        prev_failed = False
        prev_end = prev_ts = 0
        for i in range(turns):
            resubmit = False
            if prev is not None and prev_end - prev_ts < 100_000:
                q = FAILURE_RATES["resubmission"] / (1 - 1 / self.mean_turns)
                q = q * RESUBMIT_BOOST if prev_failed else q * (1 - _PREV_FAIL_SHARE * RESUBMIT_BOOST) / (1 - _PREV_FAIL_SHARE)
                resubmit = r.random() < q
            if resubmit:
                assert prev is not None
                ts = min(prev_end + r.randint(4_000, 60_000), prev_ts + 115_000)
                turn = self._rephrase(prev)
            else:
                if i:
                    ts = prev_end + min(900_000, int(20_000 + r.lognormvariate(math.log(150_000), 0.9)))
                turn = self._new_turn(user, ts)
            trace, prev_failed = self._trace(turn, ts, env, user, session_id, channel, resubmit)
            out.append(trace)
            prev, prev_ts, prev_end = turn, ts, ts + (trace.execution_time_ms or 0)

    def _session_start(self) -> int:
        """A start time following the daily rhythm, early enough for the session to end before now."""
        r = self.r
        while True:
            t = r.choices(self.hours, cum_weights=self.hours_cum)[0] + r.randrange(3_600_000)
            if self.start_ms <= t <= self.latest_session_ms:
                return t

    def _user(self, user_id: str) -> _User:
        r = self.r
        first, last = r.choice(C.FIRST_NAMES), r.choice(C.LAST_NAMES)
        email = f"{first}.{last}{r.randint(1, 99)}@{r.choice(C.EMAIL_DOMAINS)}"
        phone = f"+1 ({r.randint(201, 989)}) 555-01{r.randint(0, 99):02d}"
        region = r.choices(C.REGIONS, cum_weights=(0.5, 0.8, 1.0))[0][0]
        return _User(user_id, email, phone, region)

    def _date(self, ms: int) -> str:
        day = ms // _DAY_MS
        s = self.date_cache.get(day)
        if s is None:
            s = self.date_cache[day] = datetime.fromtimestamp(day * 86_400, tz=timezone.utc).strftime("%b %d")
        return s

    def _slots(self, user: _User, ts: int) -> dict[str, str]:
        r = self.r
        product, price = r.choice(C.PRODUCTS)
        name, domain = user.email.split("@")
        return {
            "order_id": str(r.randint(10_000, 999_999)), "product": product, "product2": r.choice(C.PRODUCTS)[0],
            "price": f"{price:.2f}", "amount": f"{price * r.choice((1, 1, 1, 2, 0.5)):.2f}",
            "days": str(r.randint(2, 14)), "email": user.email, "phone": user.phone,
            "masked_email": f"{name[0]}***@{domain}", "carrier": r.choice(C.CARRIERS), "city": r.choice(C.CITIES),
            "country": r.choice(C.COUNTRIES), "eta": self._date(ts + r.randint(1, 5) * _DAY_MS),
            "status_text": r.choice(C.ORDER_STATUS_TEXT), "refund_id": f"rf_{r.getrandbits(32):08x}",
            "stock_text": "in stock" if r.random() < 0.7 else "out of stock",
            "card": r.choice(C.CARDS), "ssn": f"{r.randint(100, 665)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
        }

    def _new_turn(self, user: _User, ts: int) -> _Turn:
        r = self.r
        slots = self._slots(user, ts)
        if r.random() < GUARDRAIL_TRIP_RATE:
            trig = r.choice(C.GUARDRAIL_TRIGGERS)
            intent = C.INTENT_BY_NAME["account_update" if trig[2] == "US_SSN" else "billing_issue"]
            question = trig[0].format_map(slots)
            masked = trig[0].format_map({**slots, "card": "[REDACTED_CREDIT_CARD]", "ssn": "[REDACTED_US_SSN]"})
            return _Turn(intent, slots, question, masked, -1, trig)
        intent = C.INTENTS[r.choices(range(len(C.INTENTS)), cum_weights=_INTENT_CUM)[0]]
        k = r.randrange(len(intent.questions))
        suffix = r.choice(C.PII_SUFFIXES) if r.random() < 0.08 else r.choice(C.QUESTION_SUFFIXES)
        question = _join(r.choice(C.QUESTION_PREFIXES), intent.questions[k].format_map(slots) + suffix.format_map(slots))
        return _Turn(intent, slots, question, question, k, None)

    def _rephrase(self, prev: _Turn) -> _Turn:
        """A re-submission: the same need and slots, in other words, with an impatient opener."""
        r = self.r
        choices = [k for k in range(len(prev.intent.questions)) if k != prev.template]
        k = r.choice(choices)
        question = _join(r.choice(C.REPHRASE_PREFIXES), prev.intent.questions[k].format_map(prev.slots))
        return _Turn(prev.intent, prev.slots, question, question, k, None)

    # ---- one trace ----------------------------------------------------------------------
    def _trace(self, turn: _Turn, ts: int, env: str, user: _User, session_id: str, channel: str,
               resubmit: bool) -> tuple[Trace, bool]:
        r = self.r
        pv = "v13" if ts >= self.v13_from[env] else "v12"
        rates = V13_FAILURE_RATES if pv == "v13" else FAILURE_RATES
        model = "claude-sonnet-4" if r.random() < (CLAUDE_SHARE * 1.6 if env == "staging" else CLAUDE_SHARE) else "gpt-4o-mini"
        intent = turn.intent
        blocked = turn.trigger is not None and turn.trigger[1] == "block"
        # Each mode only fits some traces (no answer, no tool error); dividing by the eligible share
        # keeps its rate over *all* traces at the table's value.
        ok = 1 - _BLOCK_SHARE
        crash = not blocked and r.random() < AGENT_CRASH_RATE / ok
        wrong = not blocked and r.random() < rates["correct_tool"] / ok
        calls = [] if blocked else ([intent.wrong_tool] if wrong else list(intent.tools))
        has_tools = _TOOL_INTENT_SHARE + (1 - _TOOL_INTENT_SHARE) * rates["correct_tool"] / ok
        tool_err = bool(calls) and r.random() < rates["tool_error"] / (ok * has_tools)
        answered = not blocked and not crash
        invented = answered and r.random() < rates["citation_grounded"] / (ok - AGENT_CRASH_RATE)
        too_long = answered and r.random() < rates["answer_length"] / (ok - AGENT_CRASH_RATE)

        b = SpanLayout(r, ts)
        qj = dumps(turn.question)   # each text is JSON-encoded once and spliced into every payload
        mq = qj if turn.model_question is turn.question else dumps(turn.model_question)
        guard = turn.trigger is not None or r.random() < (GUARDRAIL_SHARE - GUARDRAIL_TRIP_RATE) / (1 - GUARDRAIL_TRIP_RATE)
        if guard:
            guardrail_span(b, turn.trigger, qj)
        s = turn.slots
        in_tok = out_tok = 0
        answer: str | None
        crash_msg: str | None = None
        where = ""
        if blocked:
            answer = C.REFUSAL
            text_json = dumps(answer)
            in_tok, out_tok = r.randint(180, 260), len(answer) // 4
            b.child("answer", "CHAT_MODEL", ms_to_ns(r.lognormvariate(math.log(450), 0.3)), model=model,
                    input_tokens=in_tok, output_tokens=out_tok, attributes={"gen_ai.system": _SYSTEM[model]},
                    inputs=obj(messages=messages(("user", '"[blocked by pii_guardrail]"'))),
                    outputs=obj(content=text_json))
        else:
            p_in = int(r.lognormvariate(math.log(650), 0.25)) + len(turn.model_question) // 4
            p_out = r.randint(18, 90)
            in_tok, out_tok = p_in, p_out
            b.child("planner", "CHAT_MODEL", ms_to_ns(self._llm_ms(model, p_out, 0.35)), model=model,
                    input_tokens=p_in, output_tokens=p_out, attributes={"gen_ai.system": _SYSTEM[model]},
                    inputs=obj(messages=messages(("system", _SYSTEM_JSON[pv]), ("user", mq))),
                    outputs=obj(tool_calls=dumps(calls), search_query=mq))
            docs = retrieve(b, intent.topic, mq)
            retry_failed = False
            err_at = r.randrange(len(calls)) if tool_err else -1
            for k, tool in enumerate(calls):
                retry_failed |= tool_spans(b, tool, s, k == err_at)
            if crash:
                msg_t, where = r.choice(C.AGENT_CRASHES)
                timeout = r.choice((20, 30))
                crash_msg = msg_t.format(model=model, wait=r.randint(2, 30), timeout=timeout,
                                         tokens=r.randint(128_001, 180_000))
                answer = None
                if where == "answer":
                    dur = timeout * 1000.0 if "timed out" in msg_t else r.lognormvariate(math.log(300), 0.5)
                    b.child("answer", "CHAT_MODEL", ms_to_ns(dur), model=model, status="ERROR", status_message=crash_msg,
                            attributes={"gen_ai.system": _SYSTEM[model]}, events=b.exc(crash_msg, dur),
                            inputs=obj(messages=messages(("user", mq))))
            if not crash or where == "postprocess":
                text = self._answer(intent, s, docs, calls, wrong, retry_failed, invented, too_long)
                text_json = dumps(text)
                a_in = int(r.lognormvariate(math.log(1400), 0.35)) + sum(len(d.text) for d in docs) // 4 + 120 * len(calls)
                if r.random() < 0.02:   # long conversation history: context-window pressure
                    a_in *= r.randint(8, 25)
                a_out = max(12, len(text) // 4 + r.randint(-6, 14))
                in_tok, out_tok = in_tok + a_in, out_tok + a_out
                b.child("answer", "CHAT_MODEL", ms_to_ns(self._llm_ms(model, a_out, 0.5) + a_in / 40_000), model=model,
                        input_tokens=a_in, output_tokens=a_out, attributes={"gen_ai.system": _SYSTEM[model]},
                        inputs=obj(messages=messages(("user", mq)), context_doc_ids=dumps([d.id for d in docs])),
                        outputs=obj(content=text_json))
                answer = None if crash else text

        request = obj(messages=messages(("user", qj)))
        response = None if answer is None else obj(choices="[" + obj(
            index="0", message=obj(role='"assistant"', content=text_json), finish_reason='"stop"') + "]")
        spans, duration_ms = b.close(request, response, crash_msg)
        truth = {"tool_error": tool_err, "citation_grounded": invented, "correct_tool": wrong,
                 "answer_length": too_long, "resubmission": resubmit}
        version = "2.15.0" if pv == "v13" else ("2.14.1" if ts >= self.app_patch_from else "2.14.0")
        trace = Trace(
            trace_id=f"tr-{r.getrandbits(128):032x}", timestamp_ms=ts,
            execution_time_ms=duration_ms,
            status="ERROR" if crash else "OK", name="support_agent", request=request, response=response,
            session_id=session_id, user_id=user.user_id, model=model, prompt_version=pv, environment=env,
            input_tokens=in_tok, output_tokens=out_tok, source="demo", spans=spans, tags={"environment": env},
            metadata={"app_version": version, "region": user.region, "channel": channel, "intent": intent.name,
                      "demo_ground_truth": {c: "fail" if v else "pass" for c, v in truth.items()}},
        )
        failed = crash or blocked or tool_err or wrong or invented or too_long
        return trace, failed

    def _llm_ms(self, model: str, out_tokens: int, ttft_s: float) -> float:
        """Model latency in ms: time to first token, then a per-token rate, with rare slow calls."""
        r = self.r
        s = r.lognormvariate(math.log(ttft_s), 0.45) + out_tokens * _TOK_S[model] * r.uniform(0.8, 1.25)
        if r.random() < 0.04:     # provider hiccup: queueing before the first token
            s += r.uniform(0.8, 4.5)
        return s * 1000

    def _answer(self, intent: C.Intent, s: dict[str, str], docs: list[C.Doc], calls: list[str], wrong: bool,
                retry_failed: bool, invented: bool, too_long: bool) -> str:
        """The assistant's text: a body, cited KB sentences, and the seeded failure if any."""
        r = self.r
        if retry_failed:
            body = C.APOLOGY
        elif wrong:
            body = C.WRONG_TOOL_ANSWERS[calls[0]].format_map(s)
        else:
            body = r.choice(intent.answers).format_map(s)
        cited = [docs[0]] + ([docs[1]] if r.random() < 0.35 else [])
        parts = [r.choice(C.ANSWER_OPENERS) + body]
        parts += [f"{_first_sentence(d.text)} [{d.id}]." for d in cited]
        if invented:
            retrieved = {d.id for d in docs}
            if r.random() < 0.5:
                fake = f"kb-{intent.topic}-{r.randint(5, 14):03d}"   # an article that does not exist
            else:
                fake = r.choice([d.id for d in C.KB_DOCS if d.id not in retrieved])
            parts.insert(r.randint(1, len(parts)), f"{r.choice(C.INVENTED_CLAIMS)} [{fake}].")
        if too_long:
            target, extra = r.randint(2500, 5500), []
            size = sum(len(p) for p in parts)
            while size < target:
                d = r.choice(docs)
                sentence = f"{d.text} [{d.id}]" if r.random() < 0.3 else r.choice(C.FILLER)
                extra.append(sentence)
                size += len(sentence) + 1
            parts += extra
        return " ".join(parts) + r.choice(C.ANSWER_CLOSERS)


def _join(prefix: str, text: str) -> str:
    if prefix.endswith(", "):
        text = text[:1].lower() + text[1:]
    return prefix + text


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".")

