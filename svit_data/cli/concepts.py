"""``svit-recipe concepts``: extract a concept vocabulary from benchmark questions with an LLM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

from svit_data import paths
from svit_data.atomic import write_text
from svit_data.cli.client_flags import add_client_arguments, client_config
from svit_data.cli.dataclass_args import add_dataclass_arguments, from_args
from svit_data.errors import InputError

HELP = "ask an OpenAI-compatible model for the key concepts of benchmark questions; write a vocabulary"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from svit_data.recipes.concepts import ExtractConfig

    a = parser.add_argument
    a(
        "--benchmark",
        required=True,
        help="questions: .jsonl/.json (field question/text/prompt), MMBench .tsv, or MME text lines",
    )
    a("--out", required=True, help="vocabulary JSON to write (use it with build --concepts)")
    a(
        "--cache",
        default=None,
        help="SQLite response cache (default: $SVIT_CACHE/concepts/responses.sqlite); a rerun reuses answers",
    )
    a("--quiet", action="store_true", help="log warnings only")
    add_dataclass_arguments(parser.add_argument_group("extraction"), ExtractConfig)
    add_client_arguments(parser.add_argument_group("API client"))


async def _extract(questions, config, client_config, cache):
    from svit_data.builders.endpoints import make_chat
    from svit_data.recipes.concepts import extract_concepts

    llm = make_chat(client_config, cache=cache)
    try:
        return await extract_concepts(questions, llm, config)
    finally:
        await llm.aclose()


def run(args: argparse.Namespace) -> int:
    from svit_data.builders.cache import ResponseCache
    from svit_data.recipes.concepts import ExtractConfig, read_questions, vocabulary_document

    questions = read_questions(args.benchmark)
    try:
        config = from_args(ExtractConfig, args)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    client = client_config(args)
    cache = ResponseCache(args.cache or paths.cache_dir() / "concepts" / "responses.sqlite")
    log.info("concepts: %s questions from %s, model %s", f"{len(questions):,}", args.benchmark, config.model)
    concepts, counts = asyncio.run(_extract(questions, config, client, cache))
    out = Path(args.out)
    document = vocabulary_document(
        concepts,
        name=out.stem,
        benchmark=Path(args.benchmark).name,
        model=config.model,
        questions=len(questions),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(
        f"wrote {len(concepts):,} concepts to {out} "
        f"({counts['parsed']} of {counts['requests']} replies parsed, {counts['failed']} failed)"
    )
    return 0
