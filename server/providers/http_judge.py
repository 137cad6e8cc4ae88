"""What the HTTP judge providers share: one async client, retries, pricing and the grade() flow.

A provider only says where to POST, which headers authenticate, how the prompt is shaped on the
wire and how the answer is read back (``request_body`` / ``parse_response``).
"""

from __future__ import annotations

from typing import Any

import httpx

from server.providers.retry import RetryPolicy, post_with_retries
from tools.judges.ports import JudgePrompt, ModelReply


class HttpJudgeModel:
    provider = "http"

    def __init__(self, *, url: str, model: str, headers: dict[str, str], key_env: str | None,
                 policy: RetryPolicy, price_in_per_mtok: float | None, price_out_per_mtok: float | None) -> None:
        self.url = url
        self.model = model
        self.name = f"{self.provider}:{model}"
        self.key_env = key_env
        self.policy = policy
        self.price_in_per_mtok = price_in_per_mtok
        self.price_out_per_mtok = price_out_per_mtok
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(policy.timeout_s))

    def request_body(self, prompt: JudgePrompt, max_tokens: int) -> dict[str, Any]:
        raise NotImplementedError

    def parse_response(self, response: httpx.Response) -> ModelReply:
        raise NotImplementedError

    async def grade(self, prompt: JudgePrompt, *, max_tokens: int) -> ModelReply:
        body = self.request_body(prompt, max_tokens)
        response = await post_with_retries(lambda: self._client.post(self.url, json=body), url=self.url,
                                           policy=self.policy, key_env=self.key_env)
        return self.parse_response(response)

    async def aclose(self) -> None:
        await self._client.aclose()
