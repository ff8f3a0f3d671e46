"""Prices, the dry-run estimate and the hard spending cap.

Prices are USD per million tokens (list prices; the user overrides them with --price-input /
--price-output). The Batch API costs half. Output tokens of a dry run are estimated per task from the
typical length of SVIT replies (``TaskSpec.output_tokens``, our estimate), capped at max_tokens.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from svit_data.errors import SvitError

if TYPE_CHECKING:
    from svit_data.builders.cache import ResponseCache
    from svit_data.builders.llm import ChatModel, ChatRequest, ChatResult
    from svit_data.builders.tokens import TokenCounter

# USD per 1M tokens (input, output); looked up by the longest matching model-name prefix.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}
BATCH_DISCOUNT = 0.5


@dataclass(frozen=True)
class Price:
    input_per_m: float
    output_per_m: float
    known: bool = True

    def cost(self, input_tokens: int, output_tokens: int, *, batch: bool = False) -> float:
        usd = (input_tokens * self.input_per_m + output_tokens * self.output_per_m) / 1e6
        return usd * BATCH_DISCOUNT if batch else usd


def price_for(model: str, input_per_m: float | None = None, output_per_m: float | None = None) -> Price:
    name = model.lower()
    match = max((p for p in PRICES if name.startswith(p)), key=len, default=None)
    base = PRICES.get(match, (0.0, 0.0)) if match else (0.0, 0.0)
    known = match is not None or (input_per_m is not None and output_per_m is not None)
    return Price(
        base[0] if input_per_m is None else input_per_m,
        base[1] if output_per_m is None else output_per_m,
        known,
    )


class BudgetExhausted(SvitError):
    """The next request could cost more than what is left of --max-cost."""


class Budget:
    """A hard cap: each request reserves its worst case (input + max_tokens) before it is sent."""

    def __init__(self, max_cost: float | None, price: Price, *, batch: bool = False):
        self.max_cost, self.price, self.batch = max_cost, price, batch
        self.spent = 0.0
        self.reserved = 0.0
        self._lock = asyncio.Lock()

    def reserve(self, input_tokens: int, max_tokens: int) -> float:
        worst = self.price.cost(input_tokens, max_tokens, batch=self.batch)
        if self.max_cost is not None and self.spent + self.reserved + worst > self.max_cost:
            raise BudgetExhausted(
                f"stopping before exceeding --max-cost ${self.max_cost:.2f} "
                f"(spent ${self.spent:.4f}, next request up to ${worst:.4f})"
            )
        self.reserved += worst
        return worst

    def settle(self, reserved: float, input_tokens: int, output_tokens: int) -> float:
        actual = self.price.cost(input_tokens, output_tokens, batch=self.batch)
        self.reserved -= reserved
        self.spent += actual
        return actual

    def release(self, reserved: float) -> None:
        self.reserved -= reserved

    async def complete(
        self, llm: ChatModel, request: ChatRequest, counter: TokenCounter, cache: ResponseCache | None
    ) -> ChatResult:
        """One call under the cap: a cached answer is free; any other reserves its worst case first,
        then pays what the server reports (raises :class:`BudgetExhausted` before sending)."""
        if cache is not None and request.key in cache:
            return await llm.complete(request)
        reserved = self.reserve(request.prompt_tokens(counter), request.max_tokens)
        try:
            result = await llm.complete(request)
        except BaseException:
            self.release(reserved)
            raise
        if result.from_cache:
            self.release(reserved)
        else:
            self.settle(reserved, result.input_tokens, result.output_tokens)
        return result
