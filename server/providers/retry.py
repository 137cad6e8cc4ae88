"""Retries for judge model HTTP calls: back off on 429 and 5xx, bounded by attempts and timeouts.

A 429 or 5xx is worth retrying (with exponential backoff and full jitter, honouring a short
``Retry-After``); so is a read timeout. Other 4xx answers are the caller's configuration (key,
model name, URL) and fail at once with a message that says what to check. A connection that
cannot be opened at all stops the run: every other item would fail the same way.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import httpx

from tools.errors import ProviderError

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4          # total tries per call
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    timeout_s: float = 60.0    # per try

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_delay_s)
            except ValueError:
                pass
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** attempt))


def describe_status(response: httpx.Response, url: str, key_env: str | None) -> ProviderError:
    """A non-retryable HTTP answer, explained for the person configuring the endpoint."""
    body = " ".join(response.text.split())[:200]
    code = response.status_code
    if code in (401, 403):
        where = f"the key in ${key_env}" if key_env else "the API key"
        return ProviderError(f"Judge endpoint {url} rejected the request (HTTP {code}): check {where} "
                             f"(TRACESIEVE_JUDGE_API_KEY_ENV names the variable). Response: {body}")
    if code == 404:
        return ProviderError(f"Judge endpoint {url} answered HTTP 404: check TRACESIEVE_JUDGE_BASE_URL (for "
                             "OpenAI-compatible servers it usually ends in /v1) and TRACESIEVE_JUDGE_MODEL. "
                             f"Response: {body}")
    return ProviderError(f"Judge endpoint {url} refused the request (HTTP {code}). Response: {body}")


async def post_with_retries(send: Callable[[], Awaitable[httpx.Response]], *, url: str, policy: RetryPolicy,
                            key_env: str | None = None) -> httpx.Response:
    """``send()`` until it returns a 2xx, retrying what is retryable; raise ProviderError otherwise."""
    last = ""
    for attempt in range(policy.attempts):
        retry_after = None
        try:
            with anyio.fail_after(policy.timeout_s):
                response = await send()
        except (TimeoutError, httpx.TimeoutException):
            last = f"no answer within {policy.timeout_s:g}s"
        except httpx.ConnectError as error:
            raise ProviderError(f"Cannot connect to judge endpoint {url} ({error}). Check TRACESIEVE_JUDGE_BASE_URL "
                                "and that the server is running and reachable from here.") from error
        except httpx.TransportError as error:
            last = f"connection failed ({type(error).__name__}: {error})"
        else:
            if response.is_success:
                return response
            if response.status_code not in RETRY_STATUS:
                raise describe_status(response, url, key_env)
            retry_after = response.headers.get("retry-after")
            last = f"HTTP {response.status_code}"
        if attempt + 1 < policy.attempts:
            await anyio.sleep(policy.delay(attempt, retry_after))
    raise ProviderError(f"Judge endpoint {url} failed {policy.attempts} times (last: {last}); the item is left "
                        "unknown and a resumed run retries it.", retryable=True)
