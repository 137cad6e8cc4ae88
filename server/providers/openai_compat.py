"""Judge model over any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, LiteLLM...).

POST ``{base_url}/chat/completions`` with the judge prompt at temperature 0. The reply's
``message.content`` is the judge answer; ``message.refusal`` (OpenAI's refusal field) makes the
verdict ``unknown``; ``usage`` gives the tokens for the run's cost.
"""

from __future__ import annotations

from typing import Any

import httpx

from server.providers.retry import RetryPolicy, post_with_retries
from tools.errors import ProviderError
from tools.judge_ports import JudgePrompt, ModelReply


class OpenAICompatJudge:
    def __init__(self, *, base_url: str, model: str, api_key: str | None, key_env: str | None = None,
                 policy: RetryPolicy = RetryPolicy(), price_in_per_mtok: float | None = None,
                 price_out_per_mtok: float | None = None) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = f"openai:{model}"
        self.key_env = key_env
        self.policy = policy
        self.price_in_per_mtok = price_in_per_mtok
        self.price_out_per_mtok = price_out_per_mtok
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(policy.timeout_s))

    async def grade(self, prompt: JudgePrompt, *, max_tokens: int) -> ModelReply:
        body = {"model": self.model, "temperature": 0, "max_tokens": max_tokens,
                "messages": [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]}
        response = await post_with_retries(lambda: self._client.post(self.url, json=body), url=self.url,
                                           policy=self.policy, key_env=self.key_env)
        return parse_response(response, self.url)

    async def aclose(self) -> None:
        await self._client.aclose()


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
