"""The generate run: images -> contexts -> requests -> LLM -> parse -> validate -> shards + rejections.

Images are processed in chunks of ``chunk_size`` (in annotation-file order, after ``--shard`` and
``--limit``); each chunk's requests run concurrently through the injected :class:`ChatModel`, then the
chunk's shards and rejection parts are written atomically. Answers live in the response cache the moment
they arrive, so a rerun rebuilds finished chunks from the cache without sending anything. The run's
settings are :class:`~svit_data.builders.generate_config.GenerateConfig` (re-exported here).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice

from svit_data.builders.cache import ResponseCache
from svit_data.builders.cost import Budget, BudgetExhausted, Price
from svit_data.builders.generate_config import GenerateConfig
from svit_data.builders.llm import ChatModel, ChatRequest, ChatResult, LLMFatalError, RequestFailed
from svit_data.builders.output import OutputLayout, conversations_to_svit, write_atomic, write_jsonl
from svit_data.builders.parsers import parse
from svit_data.builders.prompt_loader import TaskPrompt
from svit_data.builders.serializer import ImageContext
from svit_data.builders.sources import AnnotationSource
from svit_data.builders.tokens import TokenCounter
from svit_data.builders.validators import validate
from svit_data.builders.vision import ImageFinder, ImageUnavailable
from svit_data.tasks import task_spec

log = logging.getLogger(__name__)

REASK = (
    "Your reply could not be used: {reason}. Please answer again, following the required format "
    "exactly and without mentioning the source text."
)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class Generator:
    def __init__(
        self,
        config: GenerateConfig,
        source: AnnotationSource,
        prompts: dict[str, TaskPrompt],
        counter: TokenCounter,
        price: Price,
        *,
        out: str = ".",
        llm: ChatModel | None = None,
        cache: ResponseCache | None = None,
        budget: Budget | None = None,
        progress: bool = False,
        image_ids: set[int] | None = None,
        image_finder: ImageFinder | None = None,
    ):
        missing = [t for t in config.tasks if t not in prompts]
        if missing:
            raise ValueError(f"no prompt for task(s) {missing}")
        self.config, self.source, self.prompts, self.out = config, source, prompts, out
        self.counter, self.price, self.llm, self.cache = counter, price, llm, cache
        self.budget = budget or Budget(None, price)
        self.progress = progress
        self.image_ids = image_ids
        self.stats: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.stopped: str | None = None
        self._selected: set[int] | None = None
        self.selection: dict | None = None
        self.vision = config.send_image is not None
        if self.vision and image_finder is None:
            image_finder = ImageFinder(config.images, config.send_image, config.image_tokens)
        self.image_finder = image_finder

    # -- pure pieces --------------------------------------------------------------------------------
    def images(self, *, selected: bool = True):
        c = self.config
        ids = self.selected_ids() if selected and c.select is not None else self.image_ids
        return self.source.images(c.shard_index, c.shard_count, c.limit, ids)

    def selected_ids(self) -> set[int]:
        """The ids ``--select`` chooses (computed once; :attr:`selection` records how)."""
        if self._selected is None:
            from svit_data.builders.select import select_from_source

            c = self.config
            pool = list(self.source.images(c.shard_index, c.shard_count, c.limit, self.image_ids))
            chosen, self.selection = select_from_source(
                self.source, pool, c.select, c.select_vocabulary, seed=c.seed
            )
            self._selected = set(chosen)
        return self._selected

    def contexts(self, images) -> list[ImageContext]:
        return [self.source.context(image, self.counter, self.config.context) for image in images]

    def request(self, task: str, context: ImageContext) -> ChatRequest:
        """The task's request for one image; raises ImageUnavailable when the image must be sent but cannot."""
        image = self.image_finder.get(context.image.image_id) if self.image_finder is not None else None
        messages = self.prompts[task].messages(context.text, vision=self.vision)
        return ChatRequest.build(
            self.config.model,
            messages,
            image,
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
        )

    def requests(
        self, skipped: Counter | None = None, *, selected: bool = True
    ) -> Iterator[tuple[str, ImageContext, ChatRequest]]:
        """Every request to send; records whose image is unavailable are skipped (counted in ``skipped``)."""
        for images in _chunks(self.images(selected=selected), self.config.chunk_size):
            for context in self.contexts(images):
                if context.text:
                    for task in self.config.tasks:
                        try:
                            yield task, context, self.request(task, context)
                        except ImageUnavailable as exc:
                            if skipped is not None:
                                skipped[exc.reason] += 1

    # -- dry run ------------------------------------------------------------------------------------
    def plan(self, *, selected: bool = True) -> dict:
        """Requests, exact input tokens, estimated output tokens and price; sends nothing.

        With ``select``: also the cost of all images and the selection's record (coverage, entropy).
        """
        per_task: dict[str, Counter] = {t: Counter() for t in self.config.tasks}
        in_batches = self.cache.batched_keys() if self.cache is not None else set()
        skipped: Counter[str] = Counter()
        for task, _, request in self.requests(skipped, selected=selected):
            row = per_task[task]
            if self.cache is not None and request.key in self.cache:
                row["cached"] += 1
                continue
            if request.key in in_batches:  # submitted and paid for; the next run collects it
                row["in_open_batch"] += 1
                continue
            row["requests"] += 1
            row["input_tokens"] += request.prompt_tokens(self.counter)
            row["image_tokens"] += request.image_tokens
            row["output_tokens_est"] += min(task_spec(task).output_tokens, self.config.max_tokens)
        total = sum(per_task.values(), Counter())
        extra = {}
        if selected and self.config.select is not None:
            every = self.plan(selected=False)
            extra = {
                "selection": self.selection,
                "all_images": {k: every[k] for k in ("requests", "cost_online_usd", "cost_batch_usd")},
            }
        return {
            **extra,
            "model": self.config.model,
            "requests": total["requests"],
            "cached": total["cached"],
            "in_open_batch": total["in_open_batch"],
            "input_tokens": total["input_tokens"],
            "output_tokens_est": total["output_tokens_est"],
            "cost_online_usd": round(self.price.cost(total["input_tokens"], total["output_tokens_est"]), 4),
            "cost_batch_usd": round(
                self.price.cost(total["input_tokens"], total["output_tokens_est"], batch=True), 4
            ),
            "price_known": self.price.known,
            "image_tokens": total["image_tokens"],
            "images_unavailable": dict(skipped),
            "per_task": {t: dict(v) for t, v in per_task.items()},
        }

    # -- one image, one task ------------------------------------------------------------------------
    async def _call(self, request: ChatRequest) -> ChatResult:
        assert self.llm is not None, "Generator.run needs an llm"
        return await self.budget.complete(self.llm, request, self.counter, self.cache)

    def _rejection(
        self, task: str, context: ImageContext, reason: str, detail: str, level: str, text: str, attempt: int
    ) -> dict:
        self.reasons[reason] += 1
        return {
            "image_id": context.image.image_id,
            "task": task,
            "reason": reason,
            "detail": detail,
            "level": level,
            "attempt": attempt,
            "text": text,
        }

    async def job(self, task: str, context: ImageContext) -> tuple[dict | None, list[dict]]:
        rows: list[dict] = []
        if not context.text:
            return None, [
                self._rejection(
                    task,
                    context,
                    "no_annotations",
                    "image has no captions, objects or regions",
                    "record",
                    "",
                    0,
                )
            ]
        try:
            request = self.request(task, context)
        except ImageUnavailable as exc:
            self.stats[exc.reason] += 1
            return None, [self._rejection(task, context, exc.reason, exc.detail, "record", "", 0)]
        tokens_in = tokens_out = 0
        for attempt in range(self.config.reask + 1):
            if self.stopped:
                return None, rows
            try:
                result = await self._call(request)
            except BudgetExhausted as exc:
                self.stopped = str(exc)
                return None, rows
            except RequestFailed as exc:
                self.stats["failed_requests"] += 1
                return None, rows + [
                    self._rejection(task, context, "request_failed", exc.reason, "record", "", attempt)
                ]
            self.stats["cached" if result.from_cache else "sent"] += 1
            tokens_in, tokens_out = tokens_in + result.input_tokens, tokens_out + result.output_tokens
            parsed = parse(task, result.text)
            verdict = validate(task, context, result, parsed, self.config.validation)
            self.stats["boxes"] += verdict.boxes
            self.stats["grounded_boxes"] += verdict.grounded
            rows += [
                self._rejection(task, context, r.reason, r.detail, r.level, r.text, attempt)
                for r in verdict.rejections
            ]
            failure = verdict.record_rejection
            if failure is None:
                break
            request = replace(
                request,
                messages=request.messages
                + (("assistant", result.text), ("user", REASK.format(reason=failure.detail))),
            )
        else:
            return None, rows
        prompt = self.prompts[task]
        question = (
            prompt.question(context.image.image_id, self.config.seed)
            if task_spec(task).drawn_question
            else None
        )
        image = context.image
        record = {
            "image_id": image.image_id,
            "conversations": conversations_to_svit(task, verdict.conversations, question),
            "width": image.width,
            "height": image.height,
            "image_file": image.image_file,
            "provenance": {
                "model": self.config.model,
                "prompt_hash": prompt.hash_for(self.vision),
                "request_id": result.request_id,
                "source_ids": list(context.source_ids),
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cost_usd": round(self.price.cost(tokens_in, tokens_out), 6),
            },
        }
        return record, rows

    # -- the run ------------------------------------------------------------------------------------
    async def run(self) -> dict:
        layout = OutputLayout(self.out, self.config.shard_index, self.config.shard_count)
        layout.remove_stale_tmp()
        total = sum(1 for _ in self.images()) * len(self.config.tasks)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="req", desc="generate", dynamic_ncols=True)
        records_written = Counter()
        try:
            for chunk_index, images in enumerate(_chunks(self.images(), self.config.chunk_size)):
                contexts = self.contexts(images)
                jobs = [(task, ctx) for ctx in contexts for task in self.config.tasks]
                outcomes = await asyncio.gather(*(self.job(t, c) for t, c in jobs), return_exceptions=True)
                fatal = next((o for o in outcomes if isinstance(o, BaseException)), None)
                if fatal is not None:
                    raise fatal
                for task in self.config.tasks:
                    records = sorted(
                        (o[0] for (t, _), o in zip(jobs, outcomes, strict=False) if t == task and o[0]),
                        key=lambda r: r["image_id"],
                    )
                    rejections = [
                        row for (t, _), o in zip(jobs, outcomes, strict=False) if t == task for row in o[1]
                    ]
                    records_written[task] += write_jsonl(layout.shard(task, chunk_index), records)
                    write_jsonl(layout.rejection_part(task, chunk_index), rejections)
                self.stats["images"] += len(images)
                if bar is not None:
                    bar.update(len(jobs))
                    bar.set_postfix(self._postfix(), refresh=False)
                if self.stopped:
                    log.warning("%s", self.stopped)
                    break
        except LLMFatalError:
            layout.merge_rejections()
            raise
        finally:
            if bar is not None:
                bar.close()
        rejected = layout.merge_rejections()
        summary = {
            "records": dict(records_written),
            "rejections": rejected,
            "reasons": dict(self.reasons),
            **{k: v for k, v in self.stats.items()},
            "grounding_rate": (self.stats["grounded_boxes"] / self.stats["boxes"])
            if self.stats["boxes"]
            else None,
            "spent_usd": round(self.budget.spent, 6),
            "stopped": self.stopped,
            "llm": dict(self.llm.stats) if self.llm is not None else {},
        }
        if self.selection is not None:
            write_atomic(layout.selected_ids, "".join(f"{i}\n" for i in sorted(self.selected_ids())))
            summary["selection"] = {**self.selection, "ids_file": layout.selected_ids.name}
        return summary

    def _postfix(self) -> dict:
        llm_stats = self.llm.stats if self.llm is not None else Counter()
        errors = sum(
            llm_stats.get(k, 0) for k in ("429", "500", "timeouts", "connection_errors", "bad_responses")
        )
        return {
            "sent": self.stats["sent"],
            "tok": llm_stats.get("input_tokens", 0) + llm_stats.get("output_tokens", 0),
            "$": f"{self.budget.spent:.2f}",
            "err": errors,
            "rej": sum(self.reasons.values()),
        }
