"""The verification pass: a vision model judges, per QA pair, whether the answer is supported by the image.

Samples come from a pool in pool order (``tasks`` and ``limit`` narrow them; samples that already carry
an excluding flag are skipped unless ``judge_flagged``, since recipes leave them out anyway). Each QA
pair is one request (the image as an ``image_url`` part, see :mod:`.judge` for the prompt and the reply
formats) through the same client, response cache, limits and cost cap as ``generate``
(:meth:`Budget.complete`). A sample is unsupported at its first unsupported pair (later pairs are not
asked), supported when every pair is, and *unclear* when a reply stays neither yes nor no after
``reask`` re-asks. Samples whose image is missing or does not decode are skipped and counted. With
source annotations (``grounding``), referring boxes are checked against them first (:mod:`.grounding`): a
sample with an ungrounded box is flagged ``ungrounded_box`` without a request.

The reply format starts at ``json_schema``; a server that rejects ``response_format`` (HTTP 4xx naming it)
moves the run to the next format (``json_object``, then plain text). Answers are looked up in the
cache under every format first, so a rerun of a run that fell back repeats no request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from svit_data.builders.cache import ResponseCache
from svit_data.builders.cost import Budget, BudgetExhausted, Price
from svit_data.builders.grounding import SourceBoxes, ungrounded
from svit_data.builders.judge import FORMATS, REASK, Judgment, judge_messages, parse_judgment, qa_pairs
from svit_data.builders.judge import response_format as format_param
from svit_data.builders.llm import ChatModel, ChatRequest, RequestFailed
from svit_data.builders.pipeline import GenerateConfig
from svit_data.builders.pipeline import _chunks as chunks
from svit_data.builders.tokens import TokenCounter
from svit_data.builders.validators import ValidationConfig
from svit_data.builders.vision import DETAILS, ImageFinder, ImageInput, ImageUnavailable
from svit_data.errors import ConfigError
from svit_data.pool import Pool
from svit_data.quality import is_excluding
from svit_data.tasks import NO_TASK_LABEL, TASKS
from svit_data.verified import UNGROUNDED, UNSUPPORTED

log = logging.getLogger(__name__)

# a 4xx whose message names these: the server does not take this response_format
REJECTS_FORMAT = re.compile(
    r"response_format|json_schema|json_object|structured output|guided", re.IGNORECASE
)
OUTPUT_TOKENS_EST = 40  # a verdict and a short reason; the dry run's output estimate per request
VERIFY_CODES = (UNSUPPORTED, UNGROUNDED)
COLUMNS = ["id", "task", "image_id", "image_file", "conversations", "box_frame", "flags"]


def same_field(cls: type, name: str, **changes: Any) -> Any:
    """A field like ``cls``'s field ``name`` (its default and help text live there): one flag, one meaning."""
    original = next(f for f in dataclasses.fields(cls) if f.name == name)
    return field(**{"default": original.default, "metadata": original.metadata, **changes})


@dataclass(frozen=True)
class VerifyConfig:
    model: str = field(default="gpt-4o", metadata={"help": "vision model name sent to the API"})
    tasks: tuple[str, ...] = field(
        default=(), metadata={"help": "comma-separated tasks to judge (default: every sample)", "sep": ","}
    )
    detail: str = field(default="low", metadata={"help": "image detail sent to the judge: low, high or auto"})
    image_tokens: int | None = same_field(GenerateConfig, "image_tokens")
    max_tokens: int = field(default=120, metadata={"help": "max output tokens per judgment"})
    temperature: float | None = same_field(GenerateConfig, "temperature", default=0.0)
    reask: int = field(
        default=1, metadata={"help": "re-ask a reply that is neither yes nor no this many times"}
    )
    limit: int | None = field(default=None, metadata={"help": "judge at most this many samples"})
    chunk_size: int = field(default=256, metadata={"help": "samples judged concurrently per step"})
    iou_threshold: float = same_field(ValidationConfig, "iou_threshold")
    judge_flagged: bool = field(
        default=False, metadata={"help": "also judge samples that already carry an excluding flag"}
    )

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in (*TASKS, NO_TASK_LABEL)]
        if unknown:
            raise ConfigError(f"unknown task(s) {unknown}; known: {', '.join((*TASKS, NO_TASK_LABEL))}")
        if self.detail not in DETAILS:
            raise ConfigError(f"detail must be one of {', '.join(DETAILS)}, got {self.detail!r}")
        if self.max_tokens < 1 or self.chunk_size < 1 or self.reask < 0:
            raise ConfigError("max_tokens and chunk_size must be >= 1, reask >= 0")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")
        if self.image_tokens is not None and self.image_tokens < 0:
            raise ConfigError(f"image_tokens must be >= 0, got {self.image_tokens}")

    def to_dict(self) -> dict:
        return asdict(self)


class Verifier:
    def __init__(
        self,
        config: VerifyConfig,
        pool: Pool,
        finder: ImageFinder,
        counter: TokenCounter,
        price: Price,
        *,
        llm: ChatModel | None = None,
        cache: ResponseCache | None = None,
        budget: Budget | None = None,
        progress: bool = False,
        grounding: SourceBoxes | None = None,
    ):
        self.config, self.pool, self.finder, self.counter, self.price = config, pool, finder, counter, price
        self.grounding = grounding
        self.llm, self.cache, self.progress = llm, cache, progress
        self.budget = budget or Budget(None, price)
        self.format_index = 0
        self.stats: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.stopped: str | None = None

    # -- what is judged -----------------------------------------------------------------------------
    def samples(self) -> Iterator[dict[str, Any]]:
        """The pool's samples to judge, in pool order (see the module docstring)."""
        tasks, taken = set(self.config.tasks), 0
        for batch in self.pool.iter_batches(COLUMNS):
            for row in batch.to_pylist():
                if tasks and (row["task"] or NO_TASK_LABEL) not in tasks:
                    continue
                if not self.config.judge_flagged and is_excluding(
                    [f for f in row["flags"] or [] if f not in VERIFY_CODES]  # verify's own: redone
                ):
                    self.skipped["already_flagged"] += 1
                    continue
                yield row
                taken += 1
                if self.config.limit is not None and taken >= self.config.limit:
                    return

    def image(self, row: dict[str, Any]) -> ImageInput:
        """The sample's image; raises ImageUnavailable (missing, does not decode)."""
        if row["image_id"] is not None:
            return self.finder.get(row["image_id"])
        if row["image_file"]:
            return self.finder.get_file(row["image_file"])
        raise ImageUnavailable("image_missing", f"sample {row['id']} names no image")

    def request(
        self, row: dict[str, Any], question: str, answer: str, fmt: str, image: ImageInput
    ) -> ChatRequest:
        c = self.config
        messages = judge_messages(row["task"] or "", question, answer, fmt, row["box_frame"])
        return ChatRequest.build(
            c.model,
            messages,
            image,
            max_tokens=c.max_tokens,
            temperature=c.temperature,
            response_format=format_param(fmt),
        )

    def _cached_format(self, requests: list[ChatRequest]) -> int:
        """The first format (from the run's current one) whose request is already answered, else the current."""
        if self.cache is not None:
            for index in range(self.format_index, len(FORMATS)):
                if requests[index].key in self.cache:
                    return index
        return self.format_index

    # -- dry run ------------------------------------------------------------------------------------
    def plan(self) -> dict[str, Any]:
        """Requests (one per QA pair: an upper bound, a sample stops at its first "no"), exact text tokens
        plus the image rule's tokens, estimated output tokens and cost; sends nothing."""
        per_task: dict[str, Counter] = {}
        for row in self.samples():
            pairs = qa_pairs(row["conversations"])
            task = per_task.setdefault(row["task"] or NO_TASK_LABEL, Counter())
            if self.grounding is not None and ungrounded(
                self.grounding, row, pairs, self.config.iou_threshold
            ):
                task[UNGROUNDED] += 1  # flagged from the annotations, never sent
                continue
            try:
                image = self.image(row)
            except ImageUnavailable as exc:
                self.skipped[exc.reason] += 1
                continue
            task["samples"] += 1
            for question, answer in pairs:
                requests = [self.request(row, question, answer, fmt, image) for fmt in FORMATS]
                index = self._cached_format(requests)
                if self.cache is not None and requests[index].key in self.cache:
                    task["cached"] += 1
                    continue
                task["requests"] += 1
                task["input_tokens"] += requests[index].prompt_tokens(self.counter)
                task["image_tokens"] += requests[index].image_tokens
                task["output_tokens_est"] += min(OUTPUT_TOKENS_EST, self.config.max_tokens)
        total = sum(per_task.values(), Counter())
        return {
            "model": self.config.model,
            "pool": self.pool.fingerprint,
            "samples": total["samples"],
            "requests": total["requests"],
            "cached": total["cached"],
            "input_tokens": total["input_tokens"],
            "image_tokens": total["image_tokens"],
            "output_tokens_est": total["output_tokens_est"],
            "ungrounded": total[UNGROUNDED],
            "cost_online_usd": round(self.price.cost(total["input_tokens"], total["output_tokens_est"]), 4),
            "price_known": self.price.known,
            "skipped": dict(self.skipped),
            "per_task": {t: dict(v) for t, v in per_task.items()},
        }

    # -- one QA pair, one sample --------------------------------------------------------------------
    async def _ask(self, request: ChatRequest) -> Judgment | None:
        assert self.llm is not None, "Verifier.run needs an llm"
        for _ in range(self.config.reask + 1):
            result = await self.budget.complete(self.llm, request, self.counter, self.cache)
            self.stats["cached" if result.from_cache else "sent"] += 1
            judgment = parse_judgment(result.text)
            if judgment is not None:
                return judgment
            self.stats["unclear_replies"] += 1
            request = replace(
                request, messages=request.messages + (("assistant", result.text), ("user", REASK))
            )
        return None

    async def judge(
        self, row: dict[str, Any], question: str, answer: str, image: ImageInput
    ) -> Judgment | None:
        requests = [self.request(row, question, answer, fmt, image) for fmt in FORMATS]
        index = self._cached_format(requests)
        while True:
            try:
                return await self._ask(requests[index])
            except RequestFailed as exc:
                if (
                    exc.kind != "permanent"
                    or index + 1 >= len(FORMATS)
                    or not REJECTS_FORMAT.search(exc.reason)
                ):
                    raise
                index += 1
                if index > self.format_index:
                    self.format_index = index
                    log.warning(
                        "the server rejects the %s reply format (%s); asking for %s from now on",
                        FORMATS[index - 1],
                        exc.reason,
                        FORMATS[index],
                    )

    async def job(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The sample's verdict, or None when it was not judged (skipped, failed, or the run stopped)."""
        pairs = qa_pairs(row["conversations"])
        if not pairs:
            self.skipped["no_qa_pair"] += 1
            return None
        verdict = {"id": row["id"], "task": row["task"] or NO_TASK_LABEL, "model": self.config.model}
        if self.grounding is not None:  # the source annotations first: no request, no image needed
            reason = ungrounded(self.grounding, row, pairs, self.config.iou_threshold)
            if reason is not None:
                return {**verdict, "model": "", "supported": False, "code": UNGROUNDED, "reason": reason}
        try:
            image = self.image(row)
        except ImageUnavailable as exc:
            self.skipped[exc.reason] += 1
            return None
        unclear = False
        for number, (question, answer) in enumerate(pairs, 1):
            if self.stopped:
                return None
            try:
                judgment = await self.judge(row, question, answer, image)
            except BudgetExhausted as exc:
                self.stopped = str(exc)
                return None
            except RequestFailed as exc:
                self.stats["failed_requests"] += 1
                log.debug("sample %s, QA %d: %s", row["id"], number, exc.reason)
                return None
            if judgment is None:
                unclear = True
            elif not judgment.supported:
                where = f"QA {number}: " if len(pairs) > 1 else ""
                return {**verdict, "supported": False, "code": UNSUPPORTED, "reason": where + judgment.reason}
        return {**verdict, "supported": None if unclear else True, "code": None, "reason": ""}

    # -- the run ------------------------------------------------------------------------------------
    async def run(self) -> tuple[list[dict[str, Any]], BaseException | None]:
        """Every verdict reached, and the fatal error that stopped the run early (None when it finished).

        The caller saves the verdicts either way: answers already received are never lost.
        """
        verdicts: list[dict[str, Any]] = []
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(unit="sample", desc="verify", dynamic_ncols=True)
        try:
            for rows in chunks(self.samples(), self.config.chunk_size):
                outcomes = await asyncio.gather(*(self.job(r) for r in rows), return_exceptions=True)
                verdicts += [o for o in outcomes if isinstance(o, dict)]
                fatal = next((o for o in outcomes if isinstance(o, BaseException)), None)
                if bar is not None:
                    bar.update(len(rows))
                    bar.set_postfix(sent=self.stats["sent"], spent=f"{self.budget.spent:.2f}", refresh=False)
                if fatal is not None:
                    if not isinstance(fatal, Exception):  # KeyboardInterrupt and the like
                        raise fatal
                    return verdicts, fatal
                if self.stopped:
                    log.warning("%s", self.stopped)
                    break
        finally:
            if bar is not None:
                bar.close()
        return verdicts, None

    def summary(self, verdicts: list[dict[str, Any]]) -> dict[str, Any]:
        per_task: dict[str, Counter] = {}
        for v in verdicts:
            key = {True: "supported", None: "unclear"}.get(v["supported"]) or v["code"]
            per_task.setdefault(v["task"], Counter())[key] += 1
        total = sum(per_task.values(), Counter())
        judged = total["supported"] + total[UNSUPPORTED]
        return {
            "model": self.config.model,
            "pool": self.pool.fingerprint,
            "judged": judged,
            "supported": total["supported"],
            "unsupported": total[UNSUPPORTED],
            "unclear": total["unclear"],
            "unsupported_rate": round(total[UNSUPPORTED] / judged, 6) if judged else None,
            "ungrounded": total[UNGROUNDED],
            "per_task": {t: dict(c) for t, c in sorted(per_task.items())},
            "skipped": dict(self.skipped),
            "reply_format": FORMATS[self.format_index],
            **{k: self.stats[k] for k in ("sent", "cached", "unclear_replies", "failed_requests")},
            **{k: v for k, v in self.stats.items()},
            "spent_usd": round(self.budget.spent, 6),
            "stopped": self.stopped,
            "llm": dict(self.llm.stats) if self.llm is not None else {},
        }
