"""Reading training data: svit configs (local folder or Hub), LLaVA-format configs and LLaVA JSON files.

Every source becomes one normalised record, `{"id", "messages": [{"role", "content"}], "image",
"image_file"}`, where the first user message carries `<image>` when the sample has an image.
svit rows are converted by `svit_data.formats.llava.to_llava_record` (boxes into the padded-square
frame, which is what the pad-to-square image pipeline shows the model).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import datasets

from svit_data.errors import InputError

log = logging.getLogger(__name__)

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
FILE_LOADERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def open_dataset(
    spec: str, *, data_dir: str = "./svit", split: str = "train", include_flagged: bool = False
) -> datasets.Dataset:
    """`svit:<config>`, `OWNER/NAME:<config>`, or a .json/.jsonl/.parquet file of LLaVA records.

    Samples with an excluding quality flag (`flags` column) are skipped and counted unless `include_flagged`.
    """
    ds = normalise_columns(load_source(spec, data_dir=data_dir, split=split), spec)
    return ds if include_flagged else skip_flagged(ds)


def load_source(
    spec: str, *, data_dir: str = "./svit", split: str = "train", what: str = "training data"
) -> datasets.Dataset:
    """The rows `spec` names, as stored (svit-eval reads probe configs through the same grammar)."""
    path = Path(spec)
    try:
        if path.suffix in FILE_LOADERS and path.exists():
            ds = datasets.load_dataset(FILE_LOADERS[path.suffix], data_files=str(path), split="train")
        elif ":" in spec:
            repo, config = spec.rsplit(":", 1)
            source = data_dir if repo == "svit" else repo
            ds = datasets.load_dataset(source, config, split=split)
        else:
            raise InputError(
                "expected svit:<config>, OWNER/NAME:<config> or a .json/.parquet file", field="data"
            )
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as e:
        raise InputError(f"cannot load {what} {spec!r}: {e}", field="data") from None
    return ds


def skip_flagged(ds: datasets.Dataset) -> datasets.Dataset:
    """Leave out samples whose `flags` hold an excluding reason code; log how many, per reason."""
    if "flags" not in ds.column_names:
        return ds
    from collections import Counter

    from svit_data.quality import EXCLUDING

    counts: Counter[str] = Counter()
    keep = []
    for index, flags in enumerate(ds["flags"]):
        excluding = [f for f in flags or () if f in EXCLUDING]
        counts.update(excluding)
        if not excluding:
            keep.append(index)
    if len(keep) < len(ds):
        log.info(
            "skipping %d flagged samples (%s); --include-flagged trains on them",
            len(ds) - len(keep),
            ", ".join(f"{code} {n}" for code, n in sorted(counts.items())),
        )
        ds = ds.select(keep)
    return ds


def normalise_columns(ds: datasets.Dataset, spec: str) -> datasets.Dataset:
    """LLaVA JSON keeps the image path in `image`; move it to `image_file` and keep `image` for bytes."""
    if "conversations" not in ds.column_names:
        raise InputError("the data has no 'conversations' column", file=spec, field="conversations")
    if "image" in ds.column_names and isinstance(ds.features["image"], datasets.Value):
        if "image_file" in ds.column_names:
            ds = ds.remove_columns("image_file")
        ds = ds.rename_column("image", "image_file")
    if "image" in ds.column_names:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    return ds


def is_svit_schema(ds: datasets.Dataset) -> bool:
    return "task" in ds.column_names and "conversation_index" in ds.column_names


def has_image(row: dict[str, Any]) -> bool:
    image = row.get("image")
    return bool(row.get("image_file")) or (
        isinstance(image, dict) and bool(image.get("bytes") or image.get("path"))
    )


def to_record(row: dict[str, Any], *, svit_schema: bool, seed: int = 0) -> dict[str, Any]:
    """One row of any supported schema -> the trainer's record (messages with roles user/assistant)."""
    turns = row["conversations"]
    if svit_schema:
        from svit_data.formats.llava import to_llava_record

        turns = to_llava_record(row, seed=seed, box_frame="square")["conversations"]
    messages = []
    for i, turn in enumerate(turns):
        role = ROLES.get(turn.get("from"))
        if role is None:
            raise InputError(
                f"unknown speaker {turn.get('from')!r}", record=row.get("id"), field=f"conversations[{i}]"
            )
        messages.append({"role": role, "content": turn["value"]})
    image = row.get("image")
    return {
        "id": str(row.get("id")),
        "messages": messages,
        "image": image.get("bytes") if isinstance(image, dict) else None,
        "image_file": row.get("image_file") or (image.get("path") if isinstance(image, dict) else None),
        "has_image": has_image(row),
    }


def estimate_lengths(ds: datasets.Dataset, image_seq_length: int) -> tuple[list[int], list[bool]]:
    """Cheap token-count estimates (chars / 4) and modality, for the length-grouped sampler."""
    lengths, images = [], []
    cols = [c for c in ("conversations", "image_file", "image") if c in ds.column_names]
    for batch in ds.select_columns(cols).iter(batch_size=4096):
        n = len(batch["conversations"])
        for i in range(n):
            row = {c: batch[c][i] for c in cols}
            img = has_image(row)
            chars = sum(len(t["value"]) for t in row["conversations"])
            lengths.append(chars // 4 + (image_seq_length if img else 0))
            images.append(img)
    return lengths, images


def require_images(images: list[bool], spec: str) -> None:
    """Stage 1 learns the projector from images: a config without any would train nothing."""
    if not any(images):
        raise InputError("stage 1 needs image samples but this data has none", file=spec, field="image")
