"""The record every third-party source reader yields: one conversation with its images, turns in svit terms.

Readers of LLaVA, ShareGPT/LLaMA-Factory, messages and the_cauldron data all produce
:class:`SourceRecord`, which :mod:`svit_data.sources` turns into pool rows (as the SVIT reader's records
become pool rows). Texts are kept as the source wrote them, ``<image>`` tokens included, so that an
export back to the source's format is lossless; only speakers are mapped to svit's ``user``/``gpt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from svit_data.errors import InputError
from svit_data.tasks import GPT, USER

IMAGE_TOKEN = "<image>"

# speaker names of the formats we read, mapped to svit's two speakers
SPEAKER_ALIASES: dict[str, str] = {
    "human": USER,
    "user": USER,
    "gpt": GPT,
    "assistant": GPT,
    "model": GPT,
}


@dataclass
class SourceRecord:
    """One sample of a third-party source.

    ``images``: image paths in the order of the ``<image>`` tokens; ``image_bytes``: their bytes where
    the source embeds them (parquet), else empty. ``image_list``: the source wrote its images as a list
    (multi-image form), not as one path; kept so that exports write the same shape back.
    """

    source_id: str | None
    speakers: list[str]  # svit's speaker of each turn (``user`` or ``gpt``)
    values: list[str]  # each turn's text, as the source wrote it
    images: list[str] = field(default_factory=list)
    image_bytes: list[bytes | None] = field(default_factory=list)
    image_list: bool = False

    @property
    def turns(self) -> list[dict[str, str]]:
        """The turns as svit ``{"from", "value"}`` dicts."""
        return [{"from": s, "value": v} for s, v in zip(self.speakers, self.values, strict=True)]


def map_speaker(speaker: object, *, file: str, record: int, field_name: str) -> str:
    """svit's speaker for a source speaker name; a located error for an unknown one."""
    mapped = SPEAKER_ALIASES.get(speaker) if isinstance(speaker, str) else None
    if mapped is None:
        raise InputError(
            f"unknown speaker {speaker!r} (expected one of {', '.join(SPEAKER_ALIASES)})",
            file=file,
            record=record,
            field=field_name,
        )
    return mapped


def tokens_fit(tokens: int, images: int) -> bool:
    """Whether ``tokens`` ``<image>`` tokens fit ``images`` images (the rule of :func:`check_image_tokens`)."""
    return tokens == images or (images == 1 and tokens == 0)


def check_image_tokens(record: SourceRecord, *, file: str, index: int, field_name: str) -> None:
    """``<image>`` tokens must match the images: none for a text-only record, one per image otherwise.

    A record with exactly one image and no token is accepted (many sets leave the token to the
    trainer's template); any other mismatch is a located error.
    """
    tokens = "\0".join(record.values).count(IMAGE_TOKEN)  # no token spans the separator
    images = len(record.images)
    if tokens_fit(tokens, images):
        return
    raise InputError(
        f"{tokens} {IMAGE_TOKEN} token(s) in the turns but {images} image(s)",
        file=file,
        record=index,
        field=field_name,
    )


def image_entry(value: object, *, file: str, record: int, field_name: str) -> tuple[str, bytes | None]:
    """``(path, bytes)`` of one image as sources write it: a path, or ``{"path", "bytes"}`` (parquet)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict) and (value.get("bytes") is not None or value.get("path")):
        path = value.get("path") or ""
        return str(path), value.get("bytes")
    raise InputError("must be an image path or {path, bytes}", file=file, record=record, field=field_name)


def with_image_list(
    record: dict, speakers: list[str], values: list[str], *, file: str, index: int
) -> SourceRecord:
    """A record whose images are an ``images`` list (ShareGPT, messages), checked against its ``<image>`` tokens."""
    images = record.get("images") or []
    if not isinstance(images, list):
        raise InputError("must be a list", file=file, record=index, field="images")
    entries = [
        image_entry(v, file=file, record=index, field_name=f"images[{i}]") for i, v in enumerate(images)
    ]
    source_id = record.get("id")
    result = SourceRecord(
        None if source_id is None else str(source_id),
        speakers,
        values,
        [path for path, _ in entries],
        [data for _, data in entries],
        image_list=True,
    )
    check_image_tokens(result, file=file, index=index, field_name="images")
    return result
