"""Throughput of the builders' LLM client against a loopback OpenAI-compatible server with a tokens/min limit.

Starts ``tests/builders/fake_openai.py`` in its own process (300 ms latency, tokens/min enforced with 429 +
Retry-After, x-ratelimit-* headers), then sends N distinct chat requests through ``OpenAIChat`` (SQLite cache,
limiter set to the same tokens/min) and prints:

- achieved fraction of the limit, sustained: tokens sent after the initial one-minute burst was used up,
  divided by what the limit refills over that window (and overall, burst included);
- the share of 429 responses;
- client overhead per request: CPU time of this process (HTTP client + our code) per request, and of our
  own code alone (token estimate, limiter, cache write) measured without the network.

``--layers`` then measures the CPU floor of each HTTP layer against a second server without a limit, in
interleaved rounds (medians): a bare asyncio-streams keep-alive client, the client's http:// path
(builders/http11.py), raw httpx with its default pool, the openai SDK's raw ``post`` (httpx + httpcore)
and ``OpenAIChat.complete`` on each path.

Usage: python benchmarks/bench_llm_client.py --requests 10000 --latency 0.3 --tpm 600000 [--layers]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from svit_data.builders.cache import ResponseCache
from svit_data.builders.http11 import usable_for
from svit_data.builders.llm import ChatRequest, ChatResult
from svit_data.builders.openai_client import ClientConfig, OpenAIChat
from svit_data.builders.ratelimit import RateLimiter
from svit_data.builders.tokens import TokenCounter

REPO = Path(__file__).resolve().parents[1]
MIN_WINDOW_S = 20.0  # seconds past the initial burst before a sustained fraction is printed


def request(i: int, max_tokens: int) -> ChatRequest:
    return ChatRequest.build(
        "gpt-4o",
        [
            {"role": "system", "content": "You describe images."},
            {"role": "user", "content": f"Benchmark request number {i}: describe it."},
        ],
        max_tokens=max_tokens,
        temperature=0.7,
    )


async def run_client(url: str, args: argparse.Namespace, cache: ResponseCache) -> dict:
    client = OpenAIChat(
        ClientConfig(
            base_url=url,
            api_key="bench",
            tpm=args.tpm,
            concurrency=args.concurrency,
            timeout=30,
            max_retries=8,
        ),
        cache=cache,
        counter=TokenCounter("gpt-4o"),
        transport=args.transport,
    )
    sends: list[tuple[float, int]] = []
    first_wait: list[float] = []
    acquire = client.limiter.acquire

    async def timed_acquire(tokens: int) -> None:
        await acquire(tokens)
        now = time.monotonic()
        if not first_wait and client.limiter.tokens.level < tokens:  # the one-minute burst is used up
            first_wait.append(now)
        sends.append((now, tokens))

    client.limiter.acquire = timed_acquire  # type: ignore[method-assign]
    requests = [request(i, args.max_tokens) for i in range(args.requests)]
    cpu0, start = time.process_time(), time.monotonic()
    await asyncio.gather(*(client.complete(r) for r in requests))
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu0
    await client.aclose()
    rate = args.tpm / 60
    total = sum(t for _, t in sends)
    t_a = first_wait[0] if first_wait else start
    window = sends[-1][0] - t_a
    sustained_tokens = sum(t for when, t in sends if when > t_a)
    # the sustained fraction means something only once the burst is spent and over a long enough window
    measured = bool(first_wait) and window >= MIN_WINDOW_S
    return {
        "elapsed_s": elapsed,
        "requests": args.requests,
        "http_requests": client.stats["requests"],
        "429": client.stats["429"],
        "tokens": total,
        "fraction_overall": total / (args.tpm + rate * elapsed),
        "fraction_sustained": sustained_tokens / (rate * window) if measured else None,
        "window_s": window if first_wait else 0.0,
        "burst_spent": bool(first_wait),
        "cpu_ms_per_request": 1000 * cpu / args.requests,
    }


def own_overhead(n: int, cache: ResponseCache) -> float:
    """CPU ms per request of our code around the SDK: token estimate, limiter, cache write."""
    counter, limiter = TokenCounter("gpt-4o"), RateLimiter(tpm=1e12)
    result = ChatResult("ok " * 20, 20, 20, "r")

    async def go() -> None:
        for i in range(n):
            r = request(10**9 + i, 100)
            await limiter.acquire(counter.count_messages(r.message_dicts()) + r.max_tokens)
            cache.get(r.key)
            cache.put(r, result)

    cpu0 = time.process_time()
    asyncio.run(go())
    return 1000 * (time.process_time() - cpu0) / n


def start_server(latency: float, tpm: float | None) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, str(REPO / "tests" / "builders" / "fake_openai.py"), "--latency", str(latency)]
    command += ["--hard-timeout", "1200"] + (["--tpm", str(tpm)] if tpm else [])
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    return server, server.stdout.readline().strip()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000, help="requests to send")
    parser.add_argument("--latency", type=float, default=0.3, help="server latency per request, seconds")
    parser.add_argument("--tpm", type=float, default=600_000, help="tokens/min limit of server and client")
    parser.add_argument("--concurrency", type=int, default=128, help="client requests in flight at most")
    parser.add_argument(
        "--max-tokens", type=int, default=100, help="max_tokens per request (counts toward the limit)"
    )
    parser.add_argument(
        "--transport",
        choices=("auto", "sdk"),
        default="auto",
        help="auto: builders/http11.py for http:// (what generate uses); sdk: the openai SDK's transport (A/B)",
    )
    parser.add_argument("--layers", action="store_true", help="then measure the CPU floor of each HTTP layer")
    parser.add_argument("--layers-requests", type=int, default=2000, help="requests per layer and round")
    parser.add_argument("--layers-rounds", type=int, default=3, help="interleaved rounds per layer")
    args = parser.parse_args()
    path = (
        "builders/http11.py"
        if args.transport == "auto" and usable_for("http://127.0.0.1/v1")
        else "openai SDK"
    )
    server, url = start_server(args.latency, args.tpm)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cache = ResponseCache(Path(tmp) / "cache.sqlite")
            result = asyncio.run(run_client(url, args, cache))
            ours = own_overhead(2000, cache)
            cache.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"{result['requests']} requests in {result['elapsed_s']:.1f} s at {args.latency * 1000:.0f} ms latency, "
        f"limit {args.tpm:.0f} tokens/min, concurrency {args.concurrency}"
    )
    if result["fraction_sustained"] is None:
        why = (
            f"the run ended {result['window_s']:.1f} s after the one-minute burst was spent"
            if result["burst_spent"]
            else f"the run never spent the one-minute burst ({result['tokens']} of {args.tpm:.0f} tokens)"
        )
        print(
            f"achieved fraction of the limit: not measured: {why}; the sustained fraction needs at least "
            f"{MIN_WINDOW_S:.0f} s past the burst, raise --requests "
            f"({result['fraction_overall']:.3f} overall, initial burst included)"
        )
    else:
        print(
            f"achieved fraction of the limit: {result['fraction_sustained']:.3f} sustained over "
            f"{result['window_s']:.0f} s ({result['fraction_overall']:.3f} overall, initial burst included)"
        )
    print(
        f"429 responses: {result['429']} of {result['http_requests']} HTTP requests "
        f"({100 * result['429'] / result['http_requests']:.2f}%)"
    )
    print(
        f"client CPU per request: {result['cpu_ms_per_request']:.2f} ms (HTTP client + ours; path: {path}); "
        f"our code alone: {ours:.3f} ms"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    if args.layers:
        from bench_http_layers import print_layers

        print_layers(start_server, args.layers_requests, args.concurrency, args.layers_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
