"""Judge model over any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, LiteLLM...).

POST ``{base_url}/chat/completions`` with the judge prompt at temperature 0. The reply's
``message.content`` is the judge answer; ``message.refusal`` (OpenAI's refusal field) makes the
verdict ``unknown``; ``usage`` gives the tokens for the run's cost.
"""

from __future__ import annotations

from typing import Any

import httpx

from server.providers.http_judge import HttpJudgeModel
from server.providers.retry import RetryPolicy
from tools.errors import ProviderError
from tools.judges.ports import JudgePrompt, ModelReply


class OpenAICompatJudge(HttpJudgeModel):
    provider = "openai"

    def __init__(self, *, base_url: str, model: str, api_key: str | None, key_env: str | None = None,
                 policy: RetryPolicy = RetryPolicy(), price_in_per_mtok: float | None = None,
                 price_out_per_mtok: float | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(url=base_url.rstrip("/") + "/chat/completions", model=model, headers=headers,
                         key_env=key_env, policy=policy, price_in_per_mtok=price_in_per_mtok,
                         price_out_per_mtok=price_out_per_mtok)

    def request_body(self, prompt: JudgePrompt, max_tokens: int) -> dict[str, Any]:
        return {"model": self.model, "temperature": 0, "max_tokens": max_tokens,
                "messages": [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]}

    def parse_response(self, response: httpx.Response) -> ModelReply:
        return parse_response(response, self.url)


def parse_response(response: httpx.Response, url: str) -> ModelReply:
    try:
        data: dict[str, Any] = response.json()
        message = data["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ProviderError(f"Judge endpoint {url} returned a body that is not a chat completion "
                            f"({type(error).__name__}); is TRACESIEVE_JUDGE_BASE_URL an OpenAI-compatible API?",
                            retryable=True) from error
    usage = data.get("usage") or {}
    return ModelReply(text=message.get("content") or "", refusal=message.get("refusal") or None,
                      input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens"))
