"""Attributes, relationships and COCO instances in the context, on the real slices; the truncation order."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from builders_helpers import run_library

from svit_data.builders.annotations import VisualGenome
from svit_data.builders.coco import load_instances
from svit_data.builders.serializer import SerializerConfig, serialize
from svit_data.builders.sources import AnnotationSource
from svit_data.builders.tokens import TokenCounter

COCO_ID = 37777  # the one image of the instances sample that its 'images' list describes (352x230)


@pytest.fixture
def instances_file(shared_fixtures: Path) -> Path:
    return shared_fixtures / "coco" / "instances_val2017.sample.json"


@pytest.fixture
def vg_with_coco(tmp_path: Path, vg_dir: Path) -> Path:
    """VG image 1 (all five files), its ``coco_id`` set to the instances sample's image."""
    out = tmp_path / "vg"
    out.mkdir()
    for name in ("objects.json", "region_descriptions.json", "attributes.json", "relationships.json"):
        (out / name).write_text(json.dumps(json.loads((vg_dir / name).read_text())[:1]))
    image = json.loads((vg_dir / "image_data.json").read_text())[0]
    (out / "image_data.json").write_text(json.dumps([{**image, "coco_id": COCO_ID}]))
    return out


def _first(vg: VisualGenome):
    return next(vg.images())


def test_attributes_join_objects_including_merged_duplicates(vg_dir):
    vg = VisualGenome(vg_dir)
    assert vg.present == ("attributes.json", "relationships.json")
    objects = {o.id: o for o in vg.objects(_first(vg))}
    assert objects[1058498].text == "clock" and objects[1058498].attributes == ("green", "tall")
    # shoes 1058525 absorbed VG's duplicate 5048 ("sneakers", grey): both ids' attributes
    assert objects[1058525].attributes == ("brown", "grey")
    # sidewalk 1058534 absorbed 5046 ("street": sidewalk); the word equal to its own name is left out
    assert objects[1058534].attributes == ("brick",)
    text = serialize(_first(vg), [], list(objects.values()), [], TokenCounter()).text
    assert "- clock (green, tall): [0.527, 0.105, 0.624, 0.71]" in text.splitlines()


def test_relationships_are_read_merged_and_shown(vg_dir):
    vg = VisualGenome(vg_dir)
    image = _first(vg)
    relations = vg.relationships(image)
    assert len(relations) == 41
    first = next(r for r in relations if r.id == 15928)
    assert (first.subject.text, first.predicate, first.object.text) == ("man", "wears", "shoes")
    assert first.subject.box == (0.297, 0.415, 0.372, 0.852) and first.subject.id == 1058529
    context = serialize(image, [], vg.objects(image), [], TokenCounter(), relationships=relations)
    lines = context.text.split("Relationships:\n", 1)[1].splitlines()
    wears = [line for line in lines if " wears shoes " in line]
    assert wears == ["- man [0.297, 0.415, 0.372, 0.852] wears shoes [0.485, 0.808, 0.545, 0.855]"]
    assert len(lines) < 41  # 15928 and 15937 (the same fact twice) are one line
    assert {15928, 15937} <= set(context.source_ids)
    assert (0.485, 0.808, 0.545, 0.855) in context.boxes  # grounding may use relationship boxes


def test_coco_instances_join_on_coco_id(vg_with_coco, instances_file, caplog):
    with caplog.at_level(logging.INFO):
        instances = load_instances([instances_file])
    assert "image missing from 'images'" in caplog.text  # the slice's other 99 annotations
    assert list(instances) == [COCO_ID]
    (plant,) = instances[COCO_ID]
    # bbox [102.49, 118.47, 7.9, 17.31] normalized by the COCO image's 352x230
    assert (plant.id, plant.text, plant.box) == (22328, "potted plant", (0.291, 0.515, 0.314, 0.59))
    assert load_instances([instances_file], keep={1}) == {}
    source = AnnotationSource(VisualGenome(vg_with_coco), instances=instances)
    image = next(source.images())
    context = source.context(image, TokenCounter(), SerializerConfig(max_tokens=100_000))
    section = context.text.split("COCO objects:\n", 1)[1].split("Regions:\n", 1)[0]
    assert section == "- potted plant: [0.291, 0.515, 0.314, 0.59]\n"
    assert 22328 not in context.source_ids  # a COCO id, not a VG one
    assert context.text.index("Objects:") < context.text.index("COCO objects:")
    assert context.text.index("Regions:") < context.text.index("Relationships:")


def test_truncation_drops_relationships_then_regions_then_coco_then_objects(vg_with_coco, instances_file):
    source = AnnotationSource(
        VisualGenome(vg_with_coco), {COCO_ID: ["A street."]}, load_instances([instances_file])
    )
    image = next(source.images())
    counter = TokenCounter()

    def at(budget: int):
        context = source.context(image, counter, SerializerConfig(max_tokens=budget))
        assert context.tokens == counter.count(context.text) <= budget
        assert context.text.startswith("Captions:\n- A street.\n")  # captions are never dropped
        return context

    full = at(100_000)
    sections = {name: full.text.count(f"\n{name}:\n") for name in ("Objects", "COCO objects", "Regions")}
    assert sections == {"Objects": 1, "COCO objects": 1, "Regions": 1} and "Relationships:" in full.text
    no_regions = full.text.split("Regions:\n")[0]
    objects_only = no_regions.split("COCO objects:\n")[0]
    # a budget between "everything but relationships" and "everything" drops only relationships
    between = at(counter.count(full.text.split("Relationships:\n")[0]) + 80)
    assert "Relationships:" in between.text and between.text.count("\n- ") < full.text.count("\n- ")
    assert between.text.split("Relationships:\n")[0] == full.text.split("Relationships:\n")[0]
    # then regions go; objects and COCO objects are untouched
    fewer = at(counter.count(no_regions) + 30)
    assert "Relationships:" not in fewer.text and fewer.text.startswith(no_regions)
    # then COCO objects, then the smallest VG objects
    smallest = at(counter.count(objects_only) - 20)
    assert "COCO objects:" not in smallest.text and "Regions:" not in smallest.text
    assert "Objects:" in smallest.text and smallest.dropped > full.dropped
    assert "chin (raised)" not in smallest.text  # the smallest box of the image goes first
    assert "building (tall, brick)" in smallest.text


def test_generate_uses_the_new_sections(vg_with_coco, instances_file, tmp_path, fake_server):
    out = tmp_path / "out"
    with fake_server() as (fake, url):
        run_library(
            vg_with_coco,
            out,
            url,
            tasks="detail_description",
            coco_instances=(str(instances_file),),
            context_tokens=100_000,
        )
    context = fake.log[0]["body"]["messages"][1]["content"]
    assert "- potted plant: [0.291, 0.515, 0.314, 0.59]" in context and "Relationships:" in context
    resolved = json.loads((out / "generate_config.json").read_text())
    assert resolved["vg_optional_files"] == ["attributes.json", "relationships.json"]
    assert resolved["coco_instances"] == [str(instances_file)]
    shutil.rmtree(out)
