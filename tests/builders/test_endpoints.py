"""Several --base-url endpoints: least in-flight routing, own limits, a failing one paused, all down stops."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

import pytest
from builders_helpers import read_records, run_library
from fake_openai import echo_answer

from svit_data.builders.endpoints import AllEndpointsDown, MultiEndpointChat, make_chat
from svit_data.builders.llm import ChatRequest
from svit_data.builders.openai_client import ClientConfig, OpenAIChat
from svit_data.builders.output import OutputLayout
from svit_data.cli import generate
from svit_data.errors import InputError
from svit_data.tasks import TASKS


def _dead_url() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1"


def _answered(*fakes) -> int:
    return sum(1 for fake in fakes for e in fake.log if e.get("answered"))


def test_config_takes_one_or_many_urls():
    assert ClientConfig(base_url="http://a/v1").base_url == ("http://a/v1",)
    assert ClientConfig().base_url == () and ClientConfig().url is None
    assert isinstance(make_chat(ClientConfig(base_url="http://a/v1")), OpenAIChat)
    assert isinstance(make_chat(ClientConfig(base_url=("http://a/v1", "http://b/v1"))), MultiEndpointChat)


def test_routing_spreads_load_and_each_endpoint_learns_its_own_limits(fake_server):
    with (
        fake_server(answer=echo_answer, tpm=600_000, latency=0.05) as (a, url_a),
        fake_server(answer=echo_answer, tpm=300_000, latency=0.05) as (b, url_b),
    ):

        async def run():
            chat = MultiEndpointChat(ClientConfig(base_url=(url_a, url_b), timeout=5))
            requests = [
                ChatRequest.build("gpt-4o", [{"role": "user", "content": f"hello {i}"}], max_tokens=5)
                for i in range(20)
            ]
            try:
                results = await asyncio.gather(*(chat.complete(r) for r in requests))
            finally:
                await chat.aclose()
            return chat, results

        chat, results = asyncio.run(run())
    assert [r.text for r in results] == [f"echo: hello {i}" for i in range(20)]
    assert len(a.log) == len(b.log) == 10  # least in flight: 20 concurrent requests alternate
    limits = [e.chat.limiter.tokens.capacity for e in chat.endpoints]
    assert limits == [600_000, 300_000]
    assert chat.stats["endpoint_0_requests"] == chat.stats["endpoint_1_requests"] == 10


def test_a_dead_endpoint_is_paused_and_nothing_is_paid_twice(small_vg, tmp_path, fake_server):
    dead = _dead_url()
    with fake_server() as (a, url_a), fake_server(faults=["500"] * 200) as (b, url_b):
        summary = run_library(small_vg, tmp_path / "out", (url_a, dead, url_b), timeout=5, endpoint_pause=600)
    assert {t: len(read_records(tmp_path / "out", t)) for t in TASKS} == {t: 6 for t in TASKS}
    assert _answered(a, b) == 24 and _answered(b) == 0  # every request answered once, all by a
    assert summary["llm"]["endpoint_pauses"] == 2  # the dead one and the one answering 500
    assert summary["llm"]["endpoint_0_requests"] == 24
    assert summary["sent"] == 24 and summary["rejections"] == 0


def test_all_down_stops_cleanly_and_a_rerun_sends_only_the_rest(small_vg, tmp_path, fake_server):
    out = tmp_path / "out"
    with fake_server(faults=[None] * 8 + ["500"] * 500) as (a, url_a):
        with pytest.raises(AllEndpointsDown, match="every endpoint is down"):
            run_library(small_vg, out, (url_a, _dead_url()), timeout=5, chunk_size=1, concurrency=1)
    first = _answered(a)
    assert first == 8  # two chunks answered before the server broke
    assert {t: len(read_records(out, t)) for t in TASKS} == {t: 2 for t in TASKS}
    with fake_server() as (c, url_c):
        run_library(small_vg, out, url_c, timeout=5, chunk_size=1)
    assert _answered(c) == 24 - first  # what was received is never asked (or paid) again
    assert {t: len(read_records(out, t)) for t in TASKS} == {t: 6 for t in TASKS}


def test_cli_repeats_base_url_and_batch_refuses_several(small_vg, tmp_path, fake_server):
    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    with fake_server() as (a, url_a), fake_server() as (b, url_b):
        argv = ["--vg", str(small_vg), "--out", str(tmp_path / "o"), "--base-url", url_a, "--base-url", url_b]
        args = parser.parse_args([*argv, "--quiet", "--limit", "2"])
        assert tuple(args.base_url) == (url_a, url_b)
        assert generate.run(args) == 0
        assert len(a.log) > 0 and len(b.log) > 0 and _answered(a, b) == 8
        resolved = json.loads(OutputLayout(tmp_path / "o", 0, 1).config.read_text())
        with pytest.raises(InputError, match="single --base-url"):
            generate.run(parser.parse_args([*argv, "--batch"]))
    assert resolved["base_url"] == [url_a, url_b]
