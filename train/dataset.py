"""The torch view of the training data: one index -> token ids, labels and pixels, or a counted skip.

Work happens here, in DataLoader workers: decode, pad-to-square, tokenize. A sample that cannot be
used becomes `{"skip": reason}` so the collator counts it instead of the worker crashing or a batch
silently carrying a wrong sample.
"""

from __future__ import annotations

from typing import Any

import datasets
import torch
from PIL import UnidentifiedImageError
from svit_data.train.data import is_svit_schema, to_record
from svit_data.train.encode import Skip, encode
from svit_data.train.images import open_image, preprocess, square_side


class TrainDataset(torch.utils.data.Dataset):
    def __init__(
        self,
        ds: datasets.Dataset,
        processor,
        *,
        image_token_id: int,
        image_seq_length: int,
        max_length: int,
        image_root: str | None = None,
        seed: int = 0,
    ):
        self.ds = ds
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.image_token_id = image_token_id
        self.image_seq_length = image_seq_length
        self.max_length = max_length
        self.image_root = image_root
        self.seed = seed
        self.svit_schema = is_svit_schema(ds)
        self.draft_side = square_side(self.image_processor)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = to_record(self.ds[int(index)], svit_schema=self.svit_schema, seed=self.seed)
        try:
            pixels = None
            if record["has_image"]:
                try:
                    image = open_image(
                        record["image"], record["image_file"], self.image_root, record["id"], self.draft_side
                    )
                except FileNotFoundError:
                    raise Skip(f"image file {record['image_file']!r} not found", record["id"]) from None
                except (OSError, UnidentifiedImageError, ValueError) as e:
                    raise Skip(f"image does not decode ({type(e).__name__})", record["id"]) from None
                pixels = preprocess(image, self.image_processor)
            enc = encode(
                self.tokenizer,
                record["messages"],
                record=record["id"],
                n_images=int(record["has_image"]),
                image_token_id=self.image_token_id,
                image_seq_length=self.image_seq_length,
                max_length=self.max_length,
            )
        except Skip as skip:
            return {"id": record["id"], "skip": skip.reason}
        return {
            "id": record["id"],
            "input_ids": torch.tensor(enc.input_ids, dtype=torch.long),
            "labels": torch.tensor(enc.labels, dtype=torch.long),
            "pixel_values": pixels,
            "truncated": enc.truncated,
        }
