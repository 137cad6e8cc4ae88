"""Judge model = the connected MCP client's own model, through MCP sampling (no API key here).

Two transports, chosen by the negotiated protocol:

* up to 2025-11-25 the server sends ``sampling/createMessage`` mid-call on the back-channel
  (``SessionSamplingJudge``);
* from 2026-07-28 there is no back-channel: the tool returns an ``InputRequiredResult`` holding a
  batch of sampling requests and the client calls again with the answers
  (``RoundTripSamplingJudge``). Prompts whose answer has not arrived raise ``DeferredCall``, the
  run leaves them unscored, and the next round asks for them; answers are keyed by prompt hash.
"""

from __future__ import annotations

import warnings
from typing import Any

from mcp import types
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from tools.errors import ProviderError
from tools.judges.ports import DeferredCall, JudgePrompt, ModelReply
from tools.judges.llm import prompt_hash

#: Sampling requests per round trip; the client answers a round's requests concurrently.
ROUND_BATCH = 25


def _request(prompt: JudgePrompt, max_tokens: int) -> types.CreateMessageRequestParams:
    return types.CreateMessageRequestParams(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt.user))],
        system_prompt=prompt.system, max_tokens=max_tokens, temperature=0,
        model_preferences=types.ModelPreferences(intelligence_priority=0.8, speed_priority=0.3))


def _reply(result: Any) -> ModelReply:
    content = result.content if not isinstance(result.content, list) else (result.content or [None])[0]
    text = getattr(content, "text", None)
    refusal = "the client returned no text" if text is None else None
    if getattr(result, "stop_reason", None) == "refusal":
        refusal = text or "refused"
    return ModelReply(text=text or "", refusal=refusal)


class SessionSamplingJudge:
    """Sampling over the session back-channel (handshake-era protocol)."""

    price_in_per_mtok = None
    price_out_per_mtok = None

    def __init__(self, session: Any, client_name: str) -> None:
        self.session = session
        self.name = f"sampling:{client_name}"

    async def grade(self, prompt: JudgePrompt, *, max_tokens: int) -> ModelReply:
        params = _request(prompt, max_tokens)
        with warnings.catch_warnings():   # sampling is deprecated in 2026-07-28 but still what clients do
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            call = self.session.create_message(params.messages, max_tokens=max_tokens,
                                               system_prompt=params.system_prompt, temperature=0,
                                               model_preferences=params.model_preferences)
        try:
            return _reply(await call)
        except MCPError as error:
            raise ProviderError(f"The MCP client declined the sampling request ({error}). Allow sampling in the "
                                "client, or configure a judge endpoint (TRACESIEVE_JUDGE_BASE_URL, "
                                "TRACESIEVE_JUDGE_MODEL).") from error


class RoundTripSamplingJudge:
    """Sampling through InputRequiredResult rounds: answers in, next batch of requests out."""

    price_in_per_mtok = None
    price_out_per_mtok = None

    def __init__(self, client_name: str, responses: dict[str, Any] | None, batch: int = ROUND_BATCH) -> None:
        self.name = f"sampling:{client_name}"
        self.responses = responses or {}
        self.batch = batch
        self.pending: dict[str, types.CreateMessageRequest] = {}

    @staticmethod
    def key(prompt: JudgePrompt) -> str:
        return "judge-" + prompt_hash(prompt)[:40]

    async def grade(self, prompt: JudgePrompt, *, max_tokens: int) -> ModelReply:
        key = self.key(prompt)
        answer = self.responses.get(key)
        if answer is not None:
            if isinstance(answer, types.ErrorData):
                raise ProviderError(f"The MCP client could not sample: {answer.message}", retryable=True)
            return _reply(answer)
        if len(self.pending) < self.batch:
            self.pending[key] = types.CreateMessageRequest(params=_request(prompt, max_tokens))
        raise DeferredCall(key)
