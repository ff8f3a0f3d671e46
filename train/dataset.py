"""The torch view of the training data: one index -> token ids, labels and pixels, or a counted skip.

Work happens here, in DataLoader workers: decode, pad-to-square, tokenize. A sample that cannot be
used becomes `{"skip": reason}` so the collator counts it instead of the worker crashing or a batch
silently carrying a wrong sample.
"""

from __future__ import annotations

from typing import Any

import datasets
import torch
from PIL import Image, UnidentifiedImageError

from svit_data.errors import InputError
from svit_data.train.data import has_image, is_svit_schema, to_record
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

    def load_image(self, row: dict[str, Any], rid: str) -> Image.Image:
        """Decoded RGB image; a missing or undecodable file is a counted skip, not a crash."""
        image = row.get("image")
        data = image.get("bytes") if isinstance(image, dict) else None
        name = row.get("image_file") or (image.get("path") if isinstance(image, dict) else None)
        try:
            return open_image(data, name, self.image_root, rid, self.draft_side)
        except FileNotFoundError:
            raise Skip(f"image file {name!r} not found", rid) from None
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise Skip(f"image does not decode ({type(e).__name__})", rid) from None

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.ds[int(index)]
        rid = str(row.get("id"))
        try:
            image = self.load_image(row, rid) if has_image(row) else None
            if image is not None and self.svit_schema and not (row.get("width") and row.get("height")):
                # the padded-square box frame needs the size; the decoded image knows it
                row = {
                    **row,
                    "width": image.info["original_size"][0],
                    "height": image.info["original_size"][1],
                }
            try:
                record = to_record(row, svit_schema=self.svit_schema, seed=self.seed)
            except (InputError, KeyError, ValueError) as e:  # a malformed record, not a broken run
                raise Skip(f"cannot convert to LLaVA format: {type(e).__name__}: {e}", rid) from None
            enc = encode(
                self.tokenizer,
                record["messages"],
                record=rid,
                n_images=int(image is not None),
                image_token_id=self.image_token_id,
                image_seq_length=self.image_seq_length,
                max_length=self.max_length,
            )
            pixels = None if image is None else preprocess(image, self.image_processor)
        except Skip as skip:
            return {"id": rid, "skip": skip.reason}
        return {
            "id": rid,
            "input_ids": torch.tensor(enc.input_ids, dtype=torch.long),
            "labels": torch.tensor(enc.labels, dtype=torch.long),
            "pixel_values": pixels,
            "truncated": enc.truncated,
        }
