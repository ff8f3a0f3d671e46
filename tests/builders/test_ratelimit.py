"""The limiter: bucket arithmetic, header adaptation, and a real run kept under the server's tokens/min."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from svit_data.builders.llm import ChatRequest
from svit_data.builders.openai_client import ClientConfig, OpenAIChat
from svit_data.builders.ratelimit import RELEASE_TICK_S, RateLimiter, TokenBucket, parse_duration


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_bucket_refills_continuously():
    clock = Clock()
    bucket = TokenBucket(600, clock)  # 10/s
    bucket.take(600)
    assert bucket.wait_time(100) == pytest.approx(10.0)
    clock.now = 5
    assert bucket.wait_time(100) == pytest.approx(5.0)
    clock.now = 1000
    bucket.refill()
    assert bucket.level == 600  # never above one minute of budget


@pytest.mark.parametrize(
    ("text", "seconds"), [("1s", 1), ("6m0s", 360), ("20ms", 0.02), ("2.5", 2.5), ("1h2m", 3720)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_headers_lower_limits_and_levels():
    clock = Clock()
    limiter = RateLimiter(rpm=None, tpm=100_000, clock=clock)
    limiter.observe(
        {
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "1200",
            "x-ratelimit-limit-requests": "500",
        }
    )
    assert limiter.tokens.capacity == 30000 and limiter.tokens.level == 1200 + 30000 / 60  # 1 s of slack
    assert limiter.requests is not None and limiter.requests.capacity == 500
    limiter.observe({"x-ratelimit-limit-tokens": "900000"})  # never raised above what the user set
    assert limiter.tokens.capacity == 30000


def test_pause_after_429_holds_everyone():
    async def go():
        limiter = RateLimiter(rpm=6000)
        limiter.pause(0.3)
        start = time.monotonic()
        await limiter.acquire(0)
        return time.monotonic() - start

    assert asyncio.run(go()) >= 0.29


def test_limiter_keeps_requests_under_tokens_per_minute(fake_server):
    """Server and client both at 12,000 tokens/min: what reaches the server never exceeds the limit's envelope
    (one minute of burst plus the refill rate), and the run is not faster than the limit allows."""
    tpm = 12_000
    request = ChatRequest.build(
        "gpt-4o", [{"role": "user", "content": "count these tokens " * 5}], max_tokens=170
    )

    async def go(url):
        client = OpenAIChat(ClientConfig(base_url=url, api_key="k", tpm=tpm, concurrency=8, backoff=0.05))
        cost = client.estimate_tokens(request)
        start = time.monotonic()
        await asyncio.gather(*(client.complete(request) for _ in range(70)))
        elapsed = time.monotonic() - start
        await client.aclose()
        return cost, start, elapsed, client.stats

    with fake_server(tpm=tpm, latency=0.01) as (fake, url):
        cost, start, elapsed, stats = asyncio.run(go(url))
    assert 190 <= cost <= 210
    accepted = [e["time"] for e in fake.log if e["status"] == 200]
    assert len(accepted) == 70 and stats["429"] <= 2  # 429s are rare and retried
    for count, when in enumerate(sorted(accepted), start=1):
        assert count * cost <= tpm + (when - start) * tpm / 60 + cost
    total = 70 * cost
    assert elapsed >= (total - tpm) / (tpm / 60) * 0.95
    assert elapsed <= (total - tpm) / (tpm / 60) + 10  # generous: CI machines may be loaded


def test_the_client_reads_headers_and_body_through_the_sdk_raw_call(fake_server):
    """OpenAIChat relies on the SDK's raw ``client.post(..., cast_to=<Response class>)``: the limiter learns
    the server's limit from the x-ratelimit headers, the reply is parsed, and the SDK's errors map to our
    reasons. Fails if the SDK changes that contract or where the Response class comes from."""
    import openai

    from svit_data.builders.openai_client import raw_response_type

    response_type = raw_response_type()
    assert response_type.__name__ == "Response" and hasattr(response_type, "content")
    assert issubclass(
        openai.DefaultAsyncHttpxClient, sys.modules[response_type.__module__.split(".")[0]].AsyncClient
    )
    request = ChatRequest.build("gpt-4o", [{"role": "user", "content": "hello"}], max_tokens=50)

    async def go(url):
        client = OpenAIChat(ClientConfig(base_url=url, api_key="k"))
        try:
            return await client.complete(request), client.limiter.tokens, client.stats
        finally:
            await client.aclose()

    with fake_server(tpm=50_000) as (fake, url):
        result, bucket, stats = asyncio.run(go(url))
    assert bucket is not None and bucket.capacity == 50_000  # learned from x-ratelimit-limit-tokens
    assert result.text and result.input_tokens > 0 and result.request_id
    assert stats["requests"] == 1 and fake.log[0]["body"]["max_tokens"] == 50
    with fake_server(faults=["500"]) as (fake, url):
        result, _, stats = asyncio.run(go(url))
    assert stats["500"] == 1 and stats["retries"] == 1 and result.text


def test_one_timer_releases_a_batch_of_waiters_in_fifo_order():
    """Twenty 10-token waiters at 1,000 tokens/s from an empty bucket: each fits 10 ms after the previous
    one, but the timer never fires sooner than RELEASE_TICK_S, so each firing releases several, in order."""

    async def go():
        limiter = RateLimiter(tpm=60_000)  # 1,000 tokens/s
        limiter.tokens.refill()
        limiter.tokens.level = 0.0
        firings, order = [], []
        release = limiter._release

        def counted_release():
            firings.append(time.monotonic())
            release()

        limiter._release = counted_release

        async def one(i):
            await limiter.acquire(10)
            order.append(i)

        await asyncio.gather(*(one(i) for i in range(20)))
        return firings, order, limiter.tokens.level

    firings, order, level = asyncio.run(go())
    assert order == list(range(20))
    # 200 tokens take 0.2 s to refill: the first check, then a firing every RELEASE_TICK_S (fewer if a loaded
    # machine delays them), where a timer per waiter would fire 20 times
    assert 1 <= len(firings) <= 0.2 / RELEASE_TICK_S + 2
    assert level >= -1e-6  # never spent more than was there


def test_a_cancelled_waiter_gives_its_budget_back_and_does_not_hold_up_the_queue():
    async def go():
        clock = Clock()
        limiter = RateLimiter(tpm=60_000, clock=clock)  # 1,000 tokens/s on a clock the test moves
        limiter.tokens.level = 0.0
        released_then_cancelled = asyncio.create_task(limiter.acquire(100))
        await asyncio.sleep(0)
        clock.now = 1.0  # 1,000 tokens refilled
        limiter._release()  # what the timer does: takes 100 for the waiter...
        released_then_cancelled.cancel()  # ...which is cancelled before it could send
        with pytest.raises(asyncio.CancelledError):
            await released_then_cancelled
        assert limiter.tokens.level == pytest.approx(1000)  # the 100 came back
        big = asyncio.create_task(limiter.acquire(5000))  # needs 4 s more; the timer is set for that
        small = asyncio.create_task(limiter.acquire(100))  # fits now, but FIFO: waits behind big
        await asyncio.sleep(0)
        assert not small.done()
        big.cancel()
        await asyncio.wait_for(small, 1.0)  # released at once, not when big's timer would have fired
        assert big.cancelled() and limiter.tokens.level == pytest.approx(900)
        assert not limiter._waiters

    asyncio.run(go())
