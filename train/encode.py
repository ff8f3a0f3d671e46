"""A record's messages -> token ids and labels, through the tokenizer's own chat template.

The conversation is rendered prefix by prefix so that exactly the assistant replies (and the
template's end-of-turn tokens after them) are labelled; everything else is -100. The one `<image>`
token is expanded to the number of image features the model produces, and truncation never cuts
into those: a sample whose image would be cut is skipped with a reason instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


class Skip(Exception):
    """A sample that cannot be trained on; `reason` is counted and logged, never silently dropped."""

    def __init__(self, reason: str, record: str):
        self.reason, self.record = reason, record
        super().__init__(f"record {record}: {reason}")


def render_segments(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], record: str
) -> list[tuple[str, bool]]:
    """(text, is_label) pieces whose concatenation is the full rendered conversation."""

    def render(msgs: list[dict[str, str]], gen: bool) -> str:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    segments: list[tuple[str, bool]] = []
    done = ""
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if k == 0:
            raise Skip("conversation starts with an assistant turn", record)
        prompt = render(messages[:k], True)
        full = render(messages[: k + 1], False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise Skip("the chat template does not render conversations prefix by prefix", record)
        segments += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
        done = full
    if not segments:
        raise Skip("no assistant turn to learn from", record)
    return segments


def encode(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[dict[str, str]],
    *,
    record: str,
    n_images: int,
    image_token_id: int,
    image_seq_length: int,
    max_length: int,
) -> Encoded:
    """Token ids and labels for one sample; raises `Skip` for samples that would make a wrong batch."""
    image_token = tokenizer.convert_ids_to_tokens(image_token_id)
    n_tags = sum(m["content"].count(image_token) for m in messages)
    if n_tags != n_images:
        raise Skip(f"{n_tags} {image_token} tokens in the text but {n_images} images", record)
    segments = render_segments(tokenizer, messages, record)
    pieces = tokenizer([text for text, _ in segments], add_special_tokens=False)["input_ids"]
    input_ids: list[int] = []
    labels: list[int] = []
    for ids, (_, is_label) in zip(pieces, segments, strict=True):
        expanded: list[int] = []
        for t in ids:
            expanded += [t] * image_seq_length if t == image_token_id else [t]
        input_ids += expanded
        labels += expanded if is_label else [IGNORE] * len(expanded)
    truncated = len(input_ids) > max_length
    if truncated:
        image_end = max((i + 1 for i, t in enumerate(input_ids) if t == image_token_id), default=0)
        if image_end > max_length:
            raise Skip(f"the image tokens end at {image_end}, past max_length {max_length}", record)
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    if all(t == IGNORE for t in labels[1:]):
        raise Skip("no assistant tokens left within max_length", record)
    return Encoded(input_ids, labels, truncated)
