"""``svit-recipe concepts``: extract a concept vocabulary from benchmark questions with an LLM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from pathlib import Path

from svit_data import paths
from svit_data.atomic import write_text
from svit_data.errors import InputError

HELP = "ask an OpenAI-compatible model for the key concepts of benchmark questions; write a vocabulary"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--benchmark",
        required=True,
        help="questions: .jsonl/.json (field question/text/prompt), MMBench .tsv, or MME text lines",
    )
    a("--model", default="gpt-4o", help="model name sent to the API (default: gpt-4o)")
    a("--out", required=True, help="vocabulary JSON to write (use it with build --concepts)")
    a("--base-url", default=None, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    a("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    a("--questions-per-request", type=int, default=150, help="questions sent in one request (default 150)")
    a("--max-tokens", type=int, default=2048, help="reply token limit per request (default 2048)")
    a("--concurrency", type=int, default=4, help="requests in flight at most (default 4)")
    a(
        "--cache",
        default=None,
        help="SQLite response cache (default: $SVIT_CACHE/concepts/responses.sqlite); a rerun reuses answers",
    )
    a("--quiet", action="store_true", help="log warnings only")


def _api_key(args: argparse.Namespace) -> str:
    key = os.environ.get(args.api_key_env)
    if key:
        return key
    if args.base_url:
        return "EMPTY"
    raise InputError(f"no API key: set the environment variable {args.api_key_env} (or --api-key-env)")


async def _extract(questions, config, client_config, cache):
    from svit_data.builders.openai_client import OpenAIChat
    from svit_data.recipes.concepts import extract_concepts

    llm = OpenAIChat(client_config, cache=cache)
    try:
        return await extract_concepts(questions, llm, config)
    finally:
        await llm.aclose()


def run(args: argparse.Namespace) -> int:
    from svit_data.builders.cache import ResponseCache
    from svit_data.builders.openai_client import ClientConfig
    from svit_data.recipes.concepts import ExtractConfig, read_questions, vocabulary_document

    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    questions = read_questions(args.benchmark)
    config = ExtractConfig(args.model, args.questions_per_request, args.max_tokens)
    client_config = ClientConfig(base_url=args.base_url, api_key=_api_key(args), concurrency=args.concurrency)
    cache = ResponseCache(args.cache or paths.cache_dir() / "concepts" / "responses.sqlite")
    log.info("concepts: %s questions from %s, model %s", f"{len(questions):,}", args.benchmark, args.model)
    concepts, counts = asyncio.run(_extract(questions, config, client_config, cache))
    out = Path(args.out)
    document = vocabulary_document(
        concepts,
        name=out.stem,
        benchmark=Path(args.benchmark).name,
        model=args.model,
        questions=len(questions),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(
        f"wrote {len(concepts):,} concepts to {out} "
        f"({counts['parsed']} of {counts['requests']} replies parsed, {counts['failed']} failed)"
    )
    return 0
