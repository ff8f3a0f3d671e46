"""The data path: template labels, image-token expansion, truncation, skips, pad-to-square, sampler."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image
from svit_train_helpers import SHARED, make_image

from svit_data.errors import InputError
from svit_data.train.collate import collate, label_tokens
from svit_data.train.data import estimate_lengths, open_dataset, require_images, to_record
from svit_data.train.dataset import TrainDataset
from svit_data.train.encode import IGNORE, Skip, encode
from svit_data.train.images import pad_to_square
from svit_data.train.model import build_fresh
from svit_data.train.sampler import StepSampler, epoch_batches


@pytest.fixture(scope="module")
def assembled(tiny_parts):
    return build_fresh(tiny_parts["vision"], tiny_parts["llm"])


def enc(assembled, messages, n_images=1, max_length=512):
    model, processor = assembled
    return encode(
        processor.tokenizer,
        messages,
        record="r",
        n_images=n_images,
        image_token_id=model.config.image_token_index,
        image_seq_length=model.config.image_seq_length,
        max_length=max_length,
    )


CHAT = [
    {"role": "user", "content": "<image>\nwhat is on the table?"},
    {"role": "assistant", "content": "a red cup."},
    {"role": "user", "content": "left or right?"},
    {"role": "assistant", "content": "left."},
]


def test_labels_cover_exactly_the_assistant_replies(assembled):
    model, processor = assembled
    tok = processor.tokenizer
    out = enc(assembled, CHAT)
    labelled = [t for t in out.labels if t != IGNORE]
    assert tok.decode(labelled) == tok.decode(
        tok(" a red cup.</s> left.</s>", add_special_tokens=False)["input_ids"]
    )
    assert out.input_ids.count(model.config.image_token_index) == model.config.image_seq_length == 16
    text = tok.decode([t for t in out.input_ids if t != model.config.image_token_index])
    assert (
        text.startswith("<s>A chat between")
        and "USER: \nwhat is on the table? ASSISTANT: a red cup.</s>" in text
    )


def test_image_count_mismatch_is_a_skip(assembled):
    with pytest.raises(Skip, match="1 <image> tokens in the text but 0 images"):
        enc(assembled, CHAT, n_images=0)
    text_only = [{"role": "user", "content": "hi?"}, {"role": "assistant", "content": "yes."}]
    with pytest.raises(Skip, match="0 <image> tokens in the text but 1 images"):
        enc(assembled, text_only, n_images=1)


def test_truncation_keeps_image_tokens_or_skips(assembled):
    full = enc(assembled, CHAT)
    cut = enc(assembled, CHAT, max_length=len(full.input_ids) - 3)
    assert cut.truncated and cut.input_ids == full.input_ids[: len(full.input_ids) - 3]
    with pytest.raises(Skip, match="image tokens end at"):
        enc(assembled, CHAT, max_length=10)
    image_end = max(i for i, t in enumerate(full.input_ids) if t == assembled[0].config.image_token_index) + 1
    with pytest.raises(Skip, match="no assistant tokens left"):
        enc(assembled, CHAT, max_length=image_end + 2)


def test_pad_to_square_uses_fill_and_centres():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    sq = pad_to_square(img, (1, 2, 3))
    assert sq.size == (40, 40)
    assert sq.getpixel((0, 0)) == (1, 2, 3) and sq.getpixel((0, 10)) == (255, 0, 0)
    assert sq.getpixel((0, 29)) == (255, 0, 0) and sq.getpixel((0, 30)) == (1, 2, 3)


def test_bad_samples_are_counted_skips_not_wrong_batches(tmp_path, assembled):
    from datasets import Dataset

    model, processor = assembled
    rows = [
        {
            "id": "ok",
            "image_file": "a.png",
            "image": {"bytes": make_image(1), "path": "a.png"},
            "conversations": [
                {"from": "human", "value": "<image>\nwhat?"},
                {"from": "gpt", "value": "a cat."},
            ],
        },
        {
            "id": "broken",
            "image_file": "b.png",
            "image": {"bytes": b"not an image", "path": "b.png"},
            "conversations": [
                {"from": "human", "value": "<image>\nwhat?"},
                {"from": "gpt", "value": "a cat."},
            ],
        },
        {
            "id": "no-tag",
            "image_file": "c.png",
            "image": {"bytes": make_image(2), "path": "c.png"},
            "conversations": [{"from": "human", "value": "what?"}, {"from": "gpt", "value": "a cat."}],
        },
        {
            "id": "text",
            "image_file": None,
            "image": None,
            "conversations": [{"from": "human", "value": "what?"}, {"from": "gpt", "value": "a dog."}],
        },
    ]
    path = tmp_path / "bad.parquet"
    from datasets import Features, List, Value
    from datasets import Image as HFImage

    features = Features(
        {
            "id": Value("string"),
            "image_file": Value("string"),
            "image": HFImage(),
            "conversations": List({"from": Value("string"), "value": Value("string")}),
        }
    )
    Dataset.from_list(rows, features=features).to_parquet(path)
    ds = TrainDataset(
        open_dataset(str(path)),
        processor,
        image_token_id=model.config.image_token_index,
        image_seq_length=model.config.image_seq_length,
        max_length=512,
    )
    batch = collate([ds[i] for i in range(4)], processor.tokenizer.pad_token_id)
    assert batch["skipped"] == Counter(
        {"image does not decode (UnidentifiedImageError)": 1, "0 <image> tokens in the text but 1 images": 1}
    )
    assert batch["input_ids"].shape[0] == 2 and batch["pixel_values"].shape[0] == 1  # ok + text-only
    assert (batch["input_ids"] == model.config.image_token_index).sum() == 16
    empty = collate([ds[1]], processor.tokenizer.pad_token_id)
    assert empty["n_samples"] == 0 and label_tokens(empty) == 0 and empty["pixel_values"] is None


def test_missing_image_root_is_a_clear_error(tmp_path, assembled):
    model, processor = assembled
    rows = [
        {
            "id": "x",
            "image": "imgs/1.jpg",
            "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}],
        }
    ]
    path = tmp_path / "llava.json"
    path.write_text(json.dumps(rows))
    ds = TrainDataset(
        open_dataset(str(path)),
        processor,
        image_token_id=model.config.image_token_index,
        image_seq_length=model.config.image_seq_length,
        max_length=512,
    )
    with pytest.raises(InputError, match="no --image-root"):
        ds[0]
    ds.image_root = str(tmp_path)
    assert ds[0]["skip"] == "image file 'imgs/1.jpg' not found"
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "1.jpg").write_bytes(make_image(3))
    assert ds[0]["pixel_values"].shape == (3, 32, 32)


def test_stage1_refuses_data_without_images(tmp_path):
    rows = [{"id": "t", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]
    path = tmp_path / "text.json"
    path.write_text(json.dumps(rows))
    _, images = estimate_lengths(open_dataset(str(path)), 16)
    with pytest.raises(InputError, match="stage 1 needs image samples"):
        require_images(images, str(path))


def test_unknown_data_spec_is_an_input_error():
    with pytest.raises(InputError, match="svit:<config>"):
        open_dataset("nonsense")


def test_sampler_groups_modality_and_shards_ranks():
    images = [i % 3 != 0 for i in range(50)]
    lengths = [(i * 7) % 23 for i in range(50)]
    batches = epoch_batches(lengths, images, global_batch=8, seed=0, epoch=0)
    assert len(batches) == 7 and all(len(b) == 8 for b in batches)
    assert set().union(*map(set, batches)) == set(range(50))
    full_single = [b for b in batches[:-1]]
    assert all(len({images[i] for i in b}) == 1 for b in full_single)
    assert all(lengths[b[k]] >= lengths[b[k + 1]] for b in batches for k in range(7))
    assert epoch_batches(lengths, images, global_batch=8, seed=0, epoch=1) != batches
    assert epoch_batches(lengths, images, global_batch=8, seed=0, epoch=0) == batches
    kw = dict(global_batch=8, micro_batch=2, seed=0, start=2, end=4)
    one = list(StepSampler(lengths, images, rank=0, world=1, **kw))
    two = [list(StepSampler(lengths, images, rank=r, world=2, **kw)) for r in range(2)]
    assert len(one) == 8 and len(two[0]) == 4
    for step in range(2):
        per_step = [i for mb in one[step * 4 : step * 4 + 4] for i in mb]
        sharded = [i for r in range(2) for mb in two[r][step * 2 : step * 2 + 2] for i in mb]
        assert per_step == sharded == batches[2 + step]


def test_scienceqa_llava_json_reads(assembled):
    sample = SHARED / "fixtures" / "llava" / "scienceqa_llava_format.sample.json"
    if not sample.exists():
        pytest.skip("shared fixtures are not available")
    ds = open_dataset(str(sample))
    lengths, images = estimate_lengths(ds, 16)
    raw = json.loads(sample.read_text())
    assert len(images) == len(raw) and sum(images) == sum("image" in r for r in raw) > 0
    model, processor = assembled
    td = TrainDataset(
        ds,
        processor,
        image_token_id=model.config.image_token_index,
        image_seq_length=16,
        max_length=4096,
        image_root=str(Path(sample).parent),
    )
    text_only = [i for i, img in enumerate(images) if not img]
    item = td[text_only[0]]
    assert "skip" not in item and item["pixel_values"] is None
    assert (item["input_ids"] == model.config.image_token_index).sum() == 0
    assert (item["labels"] != IGNORE).any()


def test_svit_rows_convert_through_the_core_llava_format(assembled):
    pytest.importorskip("svit_data.formats.llava")
    row = {
        "id": "referring_qa/7/0",
        "image_id": 7,
        "task": "referring_qa",
        "conversation_index": 0,
        "conversations": [
            {"from": "user", "value": "Where is the <st>cup<ed> [0.1, 0.2, 0.3, 0.4]?"},
            {"from": "gpt", "value": "The cup [0.1, 0.2, 0.3, 0.4] is on the table."},
        ],
        "image": {"bytes": make_image(5), "path": "7.jpg"},
        "image_file": "7.jpg",
        "width": 40,
        "height": 28,
        "provenance": None,
    }
    record = to_record(row, svit_schema=True)
    assert record["messages"][0]["role"] == "user" and record["messages"][0]["content"].startswith(
        "<image>\n"
    )
    assert "<st>" not in record["messages"][0]["content"]
    out = enc(assembled, record["messages"])
    assert (torch.tensor(out.labels) != IGNORE).any()


@pytest.mark.parametrize("side", [32, 336])
def test_fast_preprocess_matches_the_processor(side):
    import numpy as np
    from transformers import CLIPImageProcessor

    from svit_data.train.images import mean_colour, preprocess

    proc = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    img = Image.fromarray(np.random.default_rng(side).integers(0, 256, (48, 80, 3), dtype=np.uint8))
    expected = proc(images=[pad_to_square(img, mean_colour(proc))], return_tensors="pt")["pixel_values"][0]
    torch.testing.assert_close(preprocess(img, proc), expected, rtol=0, atol=1e-5)


def test_svit_rows_without_size_take_it_from_the_image(tmp_path, assembled):
    pytest.importorskip("svit_data.formats.llava")
    from datasets import Dataset

    from svit_data.schema import FEATURES

    model, processor = assembled
    base = {
        "image_id": 7,
        "task": "referring_qa",
        "conversation_index": 0,
        "width": None,
        "height": None,
        "image_file": "7.png",
        "provenance": None,
        "flags": [],
        "source": "svit",
        "source_id": None,
        "images": None,
        "box_frame": "original",
    }
    rows = [
        {
            **base,
            "id": "referring_qa/7/0",
            "image": {"bytes": make_image(5, (40, 20)), "path": "7.png"},
            "conversations": [
                {"from": "user", "value": "Where is the <st>cup<ed> [0.0, 0.0, 1.0, 1.0]?"},
                {"from": "gpt", "value": "At [0.0, 0.0, 1.0, 1.0]."},
            ],
        },
        {
            **base,
            "id": "referring_qa/7/1",
            "image": {"bytes": make_image(6), "path": "7.png"},
            "conversations": [{"from": "robot", "value": "hi"}, {"from": "gpt", "value": "yes."}],
        },
    ]
    path = tmp_path / "svit.parquet"
    Dataset.from_list(rows, features=FEATURES).to_parquet(path)
    ds = TrainDataset(
        open_dataset(str(path)),
        processor,
        image_token_id=model.config.image_token_index,
        image_seq_length=model.config.image_seq_length,
        max_length=512,
    )
    item = ds[0]
    assert "skip" not in item
    text = processor.tokenizer.decode(item["input_ids"][item["input_ids"] != model.config.image_token_index])
    assert "[0.0, 0.25, 1.0, 0.75]" in text  # 40x20 image: the box moves into the padded-square frame
    assert ds[1]["skip"].startswith("cannot convert to LLaVA format")
