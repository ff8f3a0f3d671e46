"""Several OpenAI-compatible endpoints (e.g. vLLM replicas) behind one :class:`ChatModel`.

Each ``--base-url`` gets its own :class:`OpenAIChat` (its own rate limiter, learned from that server's
``x-ratelimit-*`` headers, and its own concurrency bound) that makes a single attempt per call; this
module does the retrying across endpoints:

- a request goes to the usable endpoint with the fewest requests in flight (ties: the first given);
- a failed attempt that is the endpoint's fault (refused connection, 5xx, timeout) counts against it;
  after ``PAUSE_AFTER_FAILURES`` in a row it is paused for ``endpoint_pause`` seconds and its requests go
  to the others (a 429 only slows that endpoint down; a 4xx is the request's fault and is not retried);
- when every endpoint is paused the run stops with :class:`AllEndpointsDown`: answers already received
  are in the response cache, so a rerun sends only what is missing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from svit_data.builders.cache import ResponseCache
from svit_data.builders.llm import ChatModel, ChatRequest, ChatResult, LLMFatalError, RequestFailed
from svit_data.builders.openai_client import ClientConfig, EndpointDown, OpenAIChat
from svit_data.builders.tokens import TokenCounter

log = logging.getLogger(__name__)

PAUSE_AFTER_FAILURES = 2


class AllEndpointsDown(LLMFatalError):
    """Every endpoint is paused after repeated failures: the run stops, keeping what it received."""


@dataclass
class Endpoint:
    url: str
    chat: OpenAIChat
    in_flight: int = 0
    failures: int = 0  # consecutive failed attempts
    paused_until: float = 0.0
    pauses: int = 0


class MultiEndpointChat:
    """:class:`ChatModel` over several base URLs; see the module docstring."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        cache: ResponseCache | None = None,
        counter: TokenCounter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if len(config.base_url) < 2:
            raise ValueError("MultiEndpointChat needs at least two base URLs")
        self.config, self.cache, self.clock = config, cache, clock
        self.endpoints = [
            Endpoint(
                url, OpenAIChat(replace(config, base_url=(url,), max_retries=0), cache=cache, counter=counter)
            )
            for url in config.base_url
        ]
        self._stats: Counter[str] = Counter()

    @property
    def stats(self) -> Counter[str]:
        """The endpoints' counters summed, plus ours (pauses, reroutes) and per-endpoint request counts."""
        total = sum((e.chat.stats for e in self.endpoints), Counter())
        total.update(self._stats)
        for index, endpoint in enumerate(self.endpoints):
            total[f"endpoint_{index}_requests"] = endpoint.chat.stats["requests"]
        return total

    def _choose(self) -> Endpoint:
        now = self.clock()
        usable = [e for e in self.endpoints if e.paused_until <= now]
        if not usable:
            raise AllEndpointsDown(
                f"every endpoint is down ({', '.join(e.url for e in self.endpoints)} each failed "
                f"{PAUSE_AFTER_FAILURES} times in a row); the answers received so far are in the cache, "
                "rerun to continue"
            )
        return min(usable, key=lambda e: e.in_flight)  # min keeps the first of equals

    def _failed(self, endpoint: Endpoint, reason: str) -> None:
        endpoint.failures += 1
        if endpoint.failures >= PAUSE_AFTER_FAILURES and endpoint.paused_until <= self.clock():
            endpoint.paused_until = self.clock() + self.config.endpoint_pause
            endpoint.pauses += 1
            self._stats["endpoint_pauses"] += 1
            log.warning(
                "endpoint %s paused for %.0f s after %d failures in a row (%s); its requests go to the others",
                endpoint.url,
                self.config.endpoint_pause,
                endpoint.failures,
                reason,
            )

    async def complete(self, request: ChatRequest) -> ChatResult:
        if self.cache is not None:
            cached = self.cache.get(request.key)
            if cached is not None:
                self._stats["cache_hits"] += 1
                return cached
        last = "no attempt"
        for attempt in range(self.config.max_retries + 1):
            endpoint = self._choose()
            endpoint.in_flight += 1
            try:
                result = await endpoint.chat.complete(request)
            except EndpointDown as exc:
                endpoint.chat.resume()
                endpoint.failures = max(endpoint.failures, PAUSE_AFTER_FAILURES - 1)  # refused: pause now
                self._failed(endpoint, str(exc))
                last = str(exc)
            except RequestFailed as exc:
                if exc.kind == "permanent":
                    raise
                if exc.kind == "transient":
                    self._failed(endpoint, exc.reason)
                last = exc.reason
            else:
                endpoint.failures = 0
                return result
            finally:
                endpoint.in_flight -= 1
            self._stats["rerouted"] += 1
            others = [e for e in self.endpoints if e is not endpoint and e.paused_until <= self.clock()]
            if not others and attempt < self.config.max_retries:
                delay = min(self.config.max_backoff, self.config.backoff * 2**attempt)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        raise RequestFailed(f"gave up after {self.config.max_retries + 1} attempts: {last}", "transient")

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.chat.aclose()


def make_chat(
    config: ClientConfig, *, cache: ResponseCache | None = None, counter: TokenCounter | None = None
) -> ChatModel:
    """One endpoint: :class:`OpenAIChat`; several: :class:`MultiEndpointChat`."""
    if len(config.base_url) > 1:
        return MultiEndpointChat(config, cache=cache, counter=counter)
    return OpenAIChat(config, cache=cache, counter=counter)
