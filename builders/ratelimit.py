"""Client-side requests/min and tokens/min limits, tightened by the server's x-ratelimit-* headers.

Each limit is a token bucket whose capacity is one minute of budget and which refills continuously,
the way OpenAI meters: a request takes 1 from the request bucket and (input + max_tokens) from the token
bucket before it is sent. Headers lower the limits (``x-ratelimit-limit-*``) or the current level
(``x-ratelimit-remaining-*``, allowing one second of staleness), never raise them; a 429 empties the buckets and pauses until Retry-After.
A reserve of :data:`RESERVE_S` seconds of refill stays unspent (see there).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable, Mapping

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# x-ratelimit-remaining-* is a snapshot taken before the reply travelled and was processed; clamping to it
# exactly throws away the refill since then (measured: 0.86 instead of 0.99 of the limit). Allow 1 s of it.
HEADER_SLACK_S = 1.0
# The client and the server count the same tokens, so once both buckets run dry they sit level at zero, and
# a request that reaches the server a little ahead of its predecessor's refill is refused: measured, 1-2% 429s
# at 0.99 of the limit. Leaving this many seconds of refill unspent at the start keeps the server's bucket
# that far ahead of ours; it costs those seconds once, not a share of the rate.
RESERVE_S = 2.0
# The shortest wait between two releases of queued requests. At 77 requests/s each one would otherwise wake
# the event loop on its own (about 0.3 ms of CPU each); waiting at least this long lets the refill meanwhile
# release a batch. A per-minute budget does not notice 50 ms of granularity.
RELEASE_TICK_S = 0.05


def parse_duration(text: str) -> float | None:
    """``"1s"``, ``"6m0s"``, ``"20ms"``, ``"2.5"`` -> seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    return sum(float(v) * _UNIT[u] for v, u in parts) if parts else None


class TokenBucket:
    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic):
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_minute}")
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.clock = clock
        self.updated = clock()

    @property
    def rate(self) -> float:
        return self.capacity / 60.0

    def refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self, amount: float) -> float:
        self.refill()
        need = min(amount, self.capacity) - self.level
        return max(0.0, need / self.rate)

    def take(self, amount: float) -> None:
        self.refill()
        self.level -= amount

    def set_capacity(self, per_minute: float) -> None:
        self.refill()
        self.capacity = float(per_minute)
        self.level = min(self.level, self.capacity)


class RateLimiter:
    """Waits before each request until both budgets allow it; see the module docstring.

    Waiters queue in FIFO order behind one timer (no task, no sleep per request): when it fires it releases
    every waiter at the head whose budget fits at that moment, so at a high rate one wakeup sends a batch
    and the replies come back together. A waiter cancelled after its budget was taken gives it back.
    """

    def __init__(
        self, rpm: float | None = None, tpm: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.clock = clock
        self.requests = self._bucket(rpm) if rpm else None
        self.tokens = self._bucket(tpm) if tpm else None
        self._waiters: deque[tuple[asyncio.Future[None], int]] = deque()
        self._timer: asyncio.Handle | None = None  # set whenever someone waits
        self._resume_at = 0.0
        self.waited = 0.0

    def _bucket(self, per_minute: float) -> TokenBucket:
        bucket = TokenBucket(per_minute, self.clock)
        bucket.level -= bucket.rate * RESERVE_S
        return bucket

    def _buckets(self, tokens: int) -> list[tuple[TokenBucket, float]]:
        return [(b, a) for b, a in ((self.requests, 1), (self.tokens, tokens)) if b is not None]

    def _delay(self, tokens: int) -> float:
        return max([self._resume_at - self.clock(), *(b.wait_time(a) for b, a in self._buckets(tokens))])

    def _take(self, tokens: int, sign: float = 1.0) -> None:
        for bucket, amount in self._buckets(tokens):
            bucket.take(sign * amount)

    async def acquire(self, tokens: int) -> None:
        if not self._waiters and self._delay(tokens) <= 0:  # nobody ahead and the budget is there
            self._take(tokens)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((waiter, tokens))
        if self._timer is None:
            self._release()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._take(tokens, -1.0)  # released, but this request is never sent: give the budget back
            self._wake()  # the head may have left: whoever is next need not wait for its timer
            raise

    def _release(self) -> None:
        """Release the waiters at the head whose budget fits now, then set the timer for the next one."""
        self._timer = None
        waiters = self._waiters
        while waiters:
            waiter, tokens = waiters[0]
            if waiter.done():  # cancelled while waiting
                waiters.popleft()
                continue
            delay = self._delay(tokens)
            if delay > 0:
                # never sooner than RELEASE_TICK_S: the refill in between releases several waiters at once
                wait = max(delay, RELEASE_TICK_S)
                self.waited += wait
                self._timer = asyncio.get_running_loop().call_later(wait, self._release)
                return
            waiters.popleft()
            self._take(tokens)
            waiter.set_result(None)

    def _wake(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_soon(self._release)

    def pause(self, seconds: float) -> None:
        """After a 429: nobody sends for ``seconds``, and the buckets restart empty (the refused requests,
        counted here but not by the server, leave it ahead of us again)."""
        self._resume_at = max(self._resume_at, self.clock() + seconds)
        for bucket, _ in self._buckets(0):
            bucket.refill()
            bucket.level = min(bucket.level, 0.0)

    def observe(self, headers: Mapping[str, str]) -> None:
        for kind in ("requests", "tokens"):
            limit = headers.get(f"x-ratelimit-limit-{kind}")
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            bucket = getattr(self, kind)
            if limit is not None:
                try:
                    value = float(limit)
                except ValueError:
                    continue
                if value > 0 and bucket is None:
                    bucket = self._bucket(value)
                    setattr(self, kind, bucket)
                elif value > 0 and value < bucket.capacity:
                    bucket.set_capacity(value)
            if bucket is not None and remaining is not None:
                try:
                    bucket.refill()
                    bucket.level = min(bucket.level, float(remaining) + bucket.rate * HEADER_SLACK_S)
                except ValueError:
                    continue
