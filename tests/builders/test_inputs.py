"""Annotations, COCO captions, tokens, serializer and prompts on real slices and on broken input."""

from __future__ import annotations

import json
import logging
import random

import pytest

from svit_data.boxes import normalize_xywh
from svit_data.builders.annotations import Annotation, ImageMeta, VisualGenome
from svit_data.builders.coco import load_captions
from svit_data.builders.prompt_loader import load_prompts
from svit_data.builders.serializer import SerializerConfig, merge_duplicates, serialize
from svit_data.builders.tokens import TokenCounter, seed_cache
from svit_data.errors import InputError
from svit_data.formats.jsonstream import iter_json_array_spans, read_span
from svit_data.tasks import TASKS


def test_tokens_offline_and_exact(tmp_path):
    assert len(list(seed_cache(tmp_path).iterdir())) == 2
    counter = TokenCounter("gpt-4o")
    assert counter.count("hello world") == 2
    assert counter.count_messages([{"role": "user", "content": "hello world"}]) == 2 + 1 + 3 + 3
    assert TokenCounter("gpt-4").encoding.name == "cl100k_base"


def test_streaming_matches_json_load(vg_dir):
    for name in ("objects.json", "region_descriptions.json", "image_data.json"):
        spans = list(iter_json_array_spans(vg_dir / name, chunk_chars=512))
        assert [item for item, _, _ in spans] == json.loads((vg_dir / name).read_text())
        assert all(read_span(vg_dir / name, offset, length) == item for item, offset, length in spans)


def test_vg_reads_objects_regions_and_persists_its_index(vg_dir, tmp_path):
    vg = VisualGenome(vg_dir, index_dir=tmp_path)
    image = next(vg.images())
    assert (image.image_id, image.width, image.height, image.image_file) == (1, 800, 600, "1.jpg")
    objects, regions = vg.objects(image), vg.regions(image)
    assert objects and regions and all(0 <= v <= 1 for a in objects + regions for v in a.box)
    assert regions[0].text == "the clock is green in colour" and regions[0].box == (
        0.526,
        0.095,
        0.629,
        0.327,
    )
    assert len(list(tmp_path.glob("*.idx.json"))) == 3
    assert VisualGenome(vg_dir, index_dir=tmp_path).objects(image) == objects


@pytest.mark.parametrize(
    "content", ['[{"image_id": 1, "objects": [', '{"not": "an array"}', '[{"image_id": "x"}]']
)
def test_malformed_vg_files(vg_dir, tmp_path, content):
    for name in ("image_data.json", "region_descriptions.json"):
        (tmp_path / name).write_text((vg_dir / name).read_text())
    (tmp_path / "objects.json").write_text(content)
    vg = VisualGenome(tmp_path)
    with pytest.raises(InputError, match="objects.json"):
        vg.objects(next(vg.images()))


def test_image_without_annotations(tmp_path):
    (tmp_path / "image_data.json").write_text('[{"image_id": 9, "width": 10, "height": 10, "coco_id": null}]')
    (tmp_path / "objects.json").write_text('[{"image_id": 9, "objects": []}]')
    (tmp_path / "region_descriptions.json").write_text("[]")
    vg = VisualGenome(tmp_path)
    image = next(vg.images())
    assert vg.objects(image) == [] and vg.regions(image) == []
    context = serialize(image, [], [], [], TokenCounter())
    assert context.text == "" and context.tokens == 0


def test_coco_captions_with_orphans(shared_fixtures, caplog, tmp_path):
    with caplog.at_level(logging.WARNING):
        captions = load_captions([shared_fixtures / "coco" / "captions_val2017.sample.json"])
    assert "missing from its 'images' list" in caplog.text
    assert captions[179765][0] == "A black Honda motorcycle parked in front of a garage."
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        load_captions([tmp_path / "bad.json"])
    with pytest.raises(InputError, match="not found"):
        load_captions([tmp_path / "missing.json"])


def test_duplicates_merge_and_order_is_stable(vg_dir):
    vg = VisualGenome(vg_dir)
    image = next(vg.images())
    objects, regions = vg.objects(image), vg.regions(image)
    counter = TokenCounter()
    # attributes.json keeps VG's unmerged duplicates: real repeats of one thing with slightly different boxes
    raw = json.loads((vg_dir / "attributes.json").read_text())[0]["attributes"]
    unmerged = [
        Annotation(
            "object", o["object_id"], o["names"][0], normalize_xywh(o["x"], o["y"], o["w"], o["h"], 800, 600)
        )
        for o in raw
    ]
    merged = merge_duplicates(unmerged, 0.7)
    assert len(merged) == len(unmerged) - 2
    assert sum(len(a.merged_ids) for a in merged) == 2
    base = serialize(image, ["A street."], objects, regions, counter)
    shuffled = objects[:], regions[:]
    random.Random(0).shuffle(shuffled[0])
    random.Random(1).shuffle(shuffled[1])
    assert serialize(image, ["A street."], *shuffled, counter) == base
    assert base.text.startswith("Captions:\n- A street.\nObjects:\n")


def test_budget_drops_small_regions_first_then_objects():
    image = ImageMeta(1, 100, 100)
    objects = [Annotation("object", i, f"thing{i}", (0.0, 0.0, 0.1 * (i + 1), 0.5)) for i in range(5)]
    regions = [
        Annotation("region", 100 + i, f"a region {i}", (0.0, 0.0, 0.1 * (i + 1), 0.2)) for i in range(5)
    ]
    counter = TokenCounter()
    full = serialize(image, ["cap"], objects, regions, counter, SerializerConfig(max_tokens=10_000))
    assert full.dropped == 0
    config = SerializerConfig(max_tokens=full.tokens - 20)
    cut = serialize(image, ["cap"], objects, regions, counter, config)
    assert cut.tokens <= config.max_tokens == counter.count(cut.text) + (config.max_tokens - cut.tokens)
    assert "a region 0" not in cut.text and "a region 4" in cut.text and "thing0" in cut.text
    tiny = serialize(image, ["cap " * 50], objects, regions, counter, SerializerConfig(max_tokens=16))
    assert tiny.tokens <= 16 and "Objects" not in tiny.text


def test_builtin_prompts_and_llava_layout(tmp_path):
    prompts = load_prompts(TASKS)
    assert set(prompts) == set(TASKS) and len(prompts["detail_description"].instructions) >= 10
    q1 = prompts["detail_description"].question(5, seed=0)
    assert (
        q1 == prompts["detail_description"].question(5, seed=0) in prompts["detail_description"].instructions
    )
    llava = tmp_path / "conversation"
    llava.mkdir()
    (llava / "system_message.txt").write_text("You are a helper.")
    (llava / "000_caps.txt").write_text("A cat on a mat.")
    (llava / "000_conv.txt").write_text("Question: What?\nAnswer: A cat.")
    prompt = load_prompts(["conversation"], tmp_path)["conversation"]
    assert [m["role"] for m in prompt.messages("ctx")] == ["system", "user", "assistant", "user"]
    assert prompt.hash != prompts["conversation"].hash
    (llava / "001_caps.txt").write_text("orphan")
    with pytest.raises(InputError, match="001_conv.txt"):
        load_prompts(["conversation"], tmp_path)
