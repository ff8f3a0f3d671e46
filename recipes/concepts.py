"""Concept extraction: ask an LLM for the key visual concepts of a benchmark's questions.

The paper had GPT-4 produce the concepts tied to its target benchmarks (MME, MMBench). This is that
step as an LLM task: ``format_input`` (a chunk of questions -> chat messages) and ``format_output``
(reply text -> concepts, or a reason when the reply cannot be parsed; the chunk is then skipped and
counted, never a crash). The model is injected (:class:`~svit_data.builders.llm.ChatModel`); the CLI
gives it the builders' OpenAI client with its SQLite response cache, so a rerun never pays twice.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svit_data.builders.llm import ChatModel, ChatRequest, RequestFailed
from svit_data.errors import InputError, SvitError
from svit_data.recipes.vocabulary import MAX_WORDS, normalize, parse_vocabulary

log = logging.getLogger(__name__)

QUESTION_FIELDS = ("question", "text", "prompt", "query", "instruction")
SYSTEM = (
    "You build concept vocabularies for evaluating vision-language models. Given questions from a "
    "benchmark, list the key visual concepts they test: objects, attributes, colors, counting, positions "
    "and spatial relations, scenes, text/OCR, actions, emotions, styles, and similar. Use short lowercase "
    f"phrases of at most {MAX_WORDS} words, singular nouns, and a few common synonyms."
)
INSTRUCTION = (
    'Reply with JSON only, in this form: {"concepts": [{"concept": "dog", "category": "object", '
    '"synonyms": ["puppy"]}]}\n\nQuestions:\n'
)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class ExtractConfig:
    model: str = field(
        default="gpt-4o", metadata={"help": "model name sent to the OpenAI-compatible endpoint"}
    )
    questions_per_request: int = field(default=150, metadata={"help": "questions sent in one request"})
    max_tokens: int = field(default=2048, metadata={"help": "reply token limit per request"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0: most repeatable)"})

    def __post_init__(self) -> None:
        if self.questions_per_request < 1 or self.max_tokens < 1:
            raise ValueError("questions_per_request and max_tokens must be >= 1")


def _question_of(item: Any, *, file: str, index: int) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in QUESTION_FIELDS:
            if isinstance(item.get(key), str):
                return item[key]
    raise InputError(f"needs a string field among {', '.join(QUESTION_FIELDS)}", file=file, record=index)


def read_questions(path: str | Path) -> list[str]:
    """Questions from JSON Lines, a JSON array, a TSV with a ``question`` column (MMBench), or text lines
    (MME's ``image<TAB>question<TAB>answer`` lines give their second column); unique, in file order."""
    path = Path(path)
    if not path.is_file():
        raise InputError("does not exist", file=str(path))
    text = path.read_text(encoding="utf-8")
    file = str(path)
    questions: list[str] = []
    if path.suffix == ".jsonl":
        for index, line in enumerate(text.splitlines()):
            if line.strip():
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InputError(f"not valid JSON ({error.msg})", file=file, record=index) from None
                questions.append(_question_of(item, file=file, index=index))
    elif path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON ({error.msg}, line {error.lineno})", file=file) from None
        if not isinstance(data, list):
            raise InputError("must be a JSON array of questions", file=file)
        questions = [_question_of(item, file=file, index=i) for i, item in enumerate(data)]
    elif path.suffix == ".tsv" and text and "question" in text.splitlines()[0].split("\t"):
        questions = [row["question"] for row in csv.DictReader(text.splitlines(), delimiter="\t")]
    else:
        for line in text.splitlines():
            columns = line.split("\t")
            questions.append(columns[1] if len(columns) >= 2 else columns[0])
    unique = list(dict.fromkeys(q.strip() for q in questions if q and q.strip()))
    if not unique:
        raise InputError("holds no questions", file=file)
    return unique


def format_input(questions: list[str]) -> list[dict[str, str]]:
    body = "\n".join(f"- {q}" for q in questions)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": INSTRUCTION + body}]


def format_output(text: str) -> tuple[list[dict[str, Any]], str]:
    """Concepts from a reply, or ``([], reason)`` when it holds none that parse."""
    match = _JSON_OBJECT.search(text)
    if not match:
        return [], "no JSON object in the reply"
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as error:
        return [], f"reply JSON does not parse ({error.msg})"
    items = data.get("concepts") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return [], "reply has no 'concepts' list"
    concepts = []
    for item in items:
        item = {"concept": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not isinstance(item.get("concept"), str):
            continue
        name = normalize(item["concept"])
        if not name or len(name.split()) > MAX_WORDS:
            continue
        synonyms = [
            normalize(s)
            for s in item.get("synonyms") or []
            if isinstance(s, str) and normalize(s) and len(normalize(s).split()) <= MAX_WORDS
        ]
        concepts.append({"concept": name, "category": str(item.get("category") or ""), "synonyms": synonyms})
    return concepts, "" if concepts else "reply lists no usable concepts"


def merge(batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per concept (first category wins, synonyms united), sorted by concept."""
    merged: dict[str, dict[str, Any]] = {}
    for concepts in batches:
        for c in concepts:
            entry = merged.setdefault(c["concept"], {**c, "synonyms": []})
            entry["synonyms"] = sorted(set(entry["synonyms"]) | set(c["synonyms"]) - {c["concept"]})
    return [merged[k] for k in sorted(merged)]


async def extract_concepts(
    questions: list[str], model: ChatModel, config: ExtractConfig
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Concepts of ``questions`` (chunked, requests in parallel) and counts of requests by outcome."""
    step = config.questions_per_request
    chunks = [questions[i : i + step] for i in range(0, len(questions), step)]
    requests = [
        ChatRequest.build(
            config.model, format_input(c), max_tokens=config.max_tokens, temperature=config.temperature
        )
        for c in chunks
    ]
    results = await asyncio.gather(*(model.complete(r) for r in requests), return_exceptions=True)
    batches, counts = [], {"requests": len(requests), "parsed": 0, "unparsed": 0, "failed": 0}
    for index, result in enumerate(results):
        if isinstance(result, RequestFailed):
            counts["failed"] += 1
            log.warning("concepts: request %d failed (%s); a rerun retries it", index, result.reason)
            continue
        if isinstance(result, BaseException):
            raise result
        concepts, reason = format_output(result.text)
        if reason:
            counts["unparsed"] += 1
            log.warning("concepts: reply %d skipped: %s: %.200r", index, reason, result.text)
            continue
        counts["parsed"] += 1
        batches.append(concepts)
    merged = merge(batches)
    if not merged:
        raise SvitError(f"the model gave no usable concepts ({counts})")
    return merged, counts


def vocabulary_document(
    concepts: list[dict[str, Any]], *, name: str, benchmark: str, model: str, questions: int
) -> dict[str, Any]:
    """The vocabulary file's content; checked by the same parser the recipes use."""
    document = {
        "name": name,
        "description": f"Concepts extracted by {model} from {questions:,} questions of {benchmark}.",
        "source": {"benchmark": benchmark, "model": model, "questions": questions},
        "concepts": concepts,
    }
    parse_vocabulary(document, file=name)
    return document
