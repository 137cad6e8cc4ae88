"""Judge model providers, configured by the operator through environment variables.

    TRACESIEVE_JUDGE_PROVIDER       openai (any OpenAI-compatible chat-completions API) | anthropic
    TRACESIEVE_JUDGE_BASE_URL       e.g. https://api.openai.com/v1, http://127.0.0.1:8000/v1, https://api.anthropic.com
    TRACESIEVE_JUDGE_MODEL          e.g. gpt-4o-mini, claude-sonnet-4-5
    TRACESIEVE_JUDGE_API_KEY_ENV    NAME of the variable holding the key (default OPENAI_API_KEY / ANTHROPIC_API_KEY)
    TRACESIEVE_JUDGE_PRICE_IN/_OUT  USD per 1M input/output tokens, for cost figures (optional)
    TRACESIEVE_JUDGE_TIMEOUT_S, TRACESIEVE_JUDGE_ATTEMPTS, TRACESIEVE_JUDGE_RETRY_BASE_S   (optional)

The endpoint is deliberately not a tool argument: an agent must not be able to point the server
(and its API key) at a URL of its choosing. There is no default URL, so nothing calls a real
provider unless someone configured it. Without an endpoint, MCP sampling (the client's own
model) is used when the client supports it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from server.providers.anthropic import AnthropicJudge
from server.providers.openai_compat import OpenAICompatJudge
from server.providers.retry import RetryPolicy
from tools.errors import InvalidInputError

NO_ENDPOINT_HINT = ("Configure a judge endpoint: TRACESIEVE_JUDGE_BASE_URL (e.g. https://api.openai.com/v1 or a "
                    "local OpenAI-compatible server), TRACESIEVE_JUDGE_MODEL (e.g. gpt-4o-mini), "
                    "TRACESIEVE_JUDGE_PROVIDER (openai | anthropic) and the key in OPENAI_API_KEY / ANTHROPIC_API_KEY "
                    "(or the variable named by TRACESIEVE_JUDGE_API_KEY_ENV).")
NO_MODEL_HINT = NO_ENDPOINT_HINT[:-1] + "; or call run_judges from an MCP client that supports sampling."


@dataclass(frozen=True)
class EndpointConfig:
    provider: str
    base_url: str
    model: str
    key_env: str
    policy: RetryPolicy
    price_in: float | None
    price_out: float | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EndpointConfig | None:
        """The configured endpoint, or None when base URL or model is unset."""
        env = os.environ if env is None else env
        base_url, model = env.get("TRACESIEVE_JUDGE_BASE_URL", "").strip(), env.get("TRACESIEVE_JUDGE_MODEL", "").strip()
        if not base_url or not model:
            return None
        provider = env.get("TRACESIEVE_JUDGE_PROVIDER", "openai").strip().lower()
        if provider not in ("openai", "anthropic"):
            raise InvalidInputError(f"TRACESIEVE_JUDGE_PROVIDER={provider!r} is not supported. Use 'openai' (any "
                                    "OpenAI-compatible chat-completions API) or 'anthropic'.")

        def number(name: str) -> float | None:
            raw = env.get(name, "").strip()
            try:
                return float(raw) if raw else None
            except ValueError as error:
                raise InvalidInputError(f"{name}={raw!r} is not a number.") from error

        policy = RetryPolicy(attempts=int(number("TRACESIEVE_JUDGE_ATTEMPTS") or 4),
                             base_delay_s=number("TRACESIEVE_JUDGE_RETRY_BASE_S") or 0.5,
                             timeout_s=number("TRACESIEVE_JUDGE_TIMEOUT_S") or 60.0)
        default_key = "ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY"
        return cls(provider=provider, base_url=base_url, model=model,
                   key_env=env.get("TRACESIEVE_JUDGE_API_KEY_ENV", "").strip() or default_key, policy=policy,
                   price_in=number("TRACESIEVE_JUDGE_PRICE_IN"), price_out=number("TRACESIEVE_JUDGE_PRICE_OUT"))

    def build(self, env: Mapping[str, str] | None = None) -> OpenAICompatJudge | AnthropicJudge:
        env = os.environ if env is None else env
        kind = AnthropicJudge if self.provider == "anthropic" else OpenAICompatJudge
        return kind(base_url=self.base_url, model=self.model, api_key=env.get(self.key_env) or None,
                    key_env=self.key_env, policy=self.policy, price_in_per_mtok=self.price_in,
                    price_out_per_mtok=self.price_out)
