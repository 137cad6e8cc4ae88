"""Judge model over the Anthropic Messages API.

POST ``{base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version``; the system prompt
goes in ``system``. Text blocks of ``content`` are the judge answer; ``stop_reason ==
"refusal"`` makes the verdict ``unknown``; ``usage`` gives input/output tokens.
"""

from __future__ import annotations

from typing import Any

import httpx

from server.providers.http_judge import HttpJudgeModel
from server.providers.retry import RetryPolicy
from tools.errors import ProviderError
from tools.judges.ports import JudgePrompt, ModelReply

API_VERSION = "2023-06-01"


class AnthropicJudge(HttpJudgeModel):
    provider = "anthropic"

    def __init__(self, *, base_url: str, model: str, api_key: str | None, key_env: str | None = None,
                 policy: RetryPolicy = RetryPolicy(), price_in_per_mtok: float | None = None,
                 price_out_per_mtok: float | None = None) -> None:
        base = base_url.rstrip("/")
        headers = {"anthropic-version": API_VERSION, **({"x-api-key": api_key} if api_key else {})}
        super().__init__(url=base + ("/messages" if base.endswith("/v1") else "/v1/messages"), model=model,
                         headers=headers, key_env=key_env, policy=policy, price_in_per_mtok=price_in_per_mtok,
                         price_out_per_mtok=price_out_per_mtok)

    def request_body(self, prompt: JudgePrompt, max_tokens: int) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": max_tokens, "temperature": 0, "system": prompt.system,
                "messages": [{"role": "user", "content": prompt.user}]}

    def parse_response(self, response: httpx.Response) -> ModelReply:
        return parse_response(response, self.url)


def parse_response(response: httpx.Response, url: str) -> ModelReply:
    try:
        data: dict[str, Any] = response.json()
        blocks = data["content"]
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    except (ValueError, KeyError, TypeError) as error:
        raise ProviderError(f"Judge endpoint {url} returned a body that is not an Anthropic message "
                            f"({type(error).__name__}); check TRACESIEVE_JUDGE_BASE_URL.", retryable=True) from error
    usage = data.get("usage") or {}
    refusal = (text or "refused") if data.get("stop_reason") == "refusal" else None
    return ModelReply(text=text, refusal=refusal, input_tokens=usage.get("input_tokens"),
                      output_tokens=usage.get("output_tokens"))
