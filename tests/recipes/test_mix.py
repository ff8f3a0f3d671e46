"""mix-665k replaces exactly the LLaVA-Instruct part of a LLaVA-v1.5-format mix."""

import json

import pytest
from datasets import load_dataset

from svit_data.folder import read_state
from svit_data.recipes.mix import ACADEMIC, INSTRUCT, OTHER_IMAGES, TEXT_ONLY, part_of

from .conftest import REPO, SHARED

SHORT = "\nAnswer the question using a single word or phrase."


def turns(*pairs):
    return [{"from": s, "value": v} for pair in pairs for s, v in zip(("human", "gpt"), pair, strict=True)]


def small_mix() -> list[dict]:
    """A LLaVA-v1.5-mix-665K in miniature, with every kind of record it holds."""
    records = [
        {"id": "sg-1", "conversations": turns(("Write a haiku about rain.", "Soft rain on the roof..."))},
        {
            "id": "000000033471",
            "image": "coco/train2017/000000033471.jpg",
            "conversations": turns(
                ("<image>\nWhat are the colors of the bus in the image?", "The bus is white and red."),
                ("What feature can be seen on the back of the bus?", "An advertisement."),
            ),
        },
        {
            "id": "vqa-1",
            "image": "coco/train2017/000000000009.jpg",
            "conversations": turns(("<image>\nWhat is on the plate?" + SHORT, "Broccoli")),
        },
        {
            "id": "000000052846",
            "image": "coco/train2017/000000052846.jpg",
            "conversations": turns(
                ("Describe the image in detail.\n<image>", "The image shows a cat on a sofa.")
            ),
        },
        {
            "id": "aok-1",
            "image": "coco/train2017/000000000025.jpg",
            "conversations": turns(
                (
                    "<image>\nWhat is the man holding?\nA. bat\nB. kite\n"
                    "Answer with the option's letter from the given choices directly.",
                    "B",
                )
            ),
        },
        {
            "id": "ref-1",
            "image": "coco/train2017/000000000030.jpg",
            "conversations": turns(
                (
                    "<image>\nPlease provide a short description for this region: [0.1, 0.2, 0.5, 0.6]",
                    "Red car",
                )
            ),
        },
        {
            "id": "gqa-1",
            "image": "gqa/images/2354786.jpg",
            "conversations": turns(("<image>\nIs the sky dark?" + SHORT, "Yes")),
        },
        {
            "id": "000000000042",
            "image": "coco/train2017/000000000042.jpg",
            "conversations": turns(
                ("<image>\nWhy might these zebras choose to stay together?", "For safety...")
            ),
        },
        {
            "id": "vg-1",
            "image": "vg/VG_100K/1.jpg",
            "conversations": turns(("<image>\nWhat color is the tree?", "Green.")),
        },
        {"id": "sg-2", "conversations": turns(("Translate 'hello' to French.", "Bonjour."))},
    ]
    return records


def test_parts_follow_the_documented_rule():
    parts = [part_of(r) for r in small_mix()]
    assert parts == [
        TEXT_ONLY,
        INSTRUCT,
        ACADEMIC,
        INSTRUCT,
        ACADEMIC,
        ACADEMIC,
        ACADEMIC,
        INSTRUCT,
        OTHER_IMAGES,
        TEXT_ONLY,
    ]


def test_mix_replaces_exactly_the_instruct_part(cli, tmp_path, caplog):
    mix = tmp_path / "llava_v1_5_mix665k.json"
    records = small_mix()
    mix.write_text(json.dumps(records))
    out = tmp_path / "svit"
    caplog.set_level("WARNING")
    assert cli("build", "mix-665k", "--llava-mix", mix, "--size", 20, "--out", out, "--quiet") == 0
    assert "found 3 LLaVA-Instruct-150K records, expected 157,712" in caplog.text
    ds = load_dataset(str(out), "mix-665k", cache_dir=str(tmp_path / "hf"))["train"]
    kept = [r for r in records if part_of(r) != INSTRUCT]
    assert ds.num_rows == len(kept) + 20
    rows = ds.to_list()
    # the mix's order, with the core block where the first instruct record was
    assert [r["id"] for r in rows[:1]] == ["sg-1"]
    core = rows[1:21]
    assert all(r["source"] == "svit-core-150k" for r in core)
    assert all(r["conversations"][0]["value"].startswith("<image>\n") for r in core)
    assert all(r["image_file"].startswith("vg/") for r in core)
    assert [r["id"] for r in rows[21:]] == [r["id"] for r in kept[1:]]
    for row, record in zip(rows[21:], kept[1:], strict=True):
        assert row["conversations"] == record["conversations"]
        assert row["image_file"] == record.get("image")
    assert not {"000000033471", "000000052846", "000000000042"} & {r["id"] for r in rows}
    config = read_state(out).configs["mix-665k"]
    assert config.schema == "llava"
    assert config.recipe.mix.llava_instruct_found == 3
    assert config.recipe.mix.llava_instruct_expected == 157_712
    assert config.recipe.mix.replaced_by_core == 20
    assert config.recipe.mix.records_out == ds.num_rows


def test_mix_that_is_not_llava_format(cli, tmp_path, capsys):
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps([{"id": "1", "conversations": [{"from": "user", "value": "hi"}]}]))
    assert cli("build", "mix-665k", "--llava-mix", mix, "--size", 5, "--out", tmp_path / "o", "--quiet") == 2
    err = capsys.readouterr().err
    assert "record 0" in err and "conversations[0].from" in err
    assert not (tmp_path / "o").exists()


def test_mix_without_an_instruct_part(cli, tmp_path, capsys):
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps([r for r in small_mix() if part_of(r) != INSTRUCT]))
    assert cli("build", "mix-665k", "--llava-mix", mix, "--size", 5, "--out", tmp_path / "o", "--quiet") == 2
    assert "no LLaVA-Instruct-150K records found" in capsys.readouterr().err


def test_real_llava_fixture_is_read_and_has_no_instruct_part(cli, tmp_path, capsys):
    fixture = SHARED / "fixtures" / "llava" / "scienceqa_llava_format.sample.json"
    if not fixture.is_file():
        pytest.skip("../shared is absent (only in the project's workspace)")
    assert (
        cli("build", "mix-665k", "--llava-mix", fixture, "--size", 5, "--out", tmp_path / "o", "--quiet") == 2
    )
    err = capsys.readouterr().err
    assert "no LLaVA-Instruct-150K records found" in err and "among 50 records" in err
    assert "text-only" in err and "other-images" in err


def test_mix_needs_its_file(cli, tmp_path, capsys):
    assert cli("build", "mix-665k", "--out", tmp_path / "o", "--quiet") == 2
    assert "--llava-mix" in capsys.readouterr().err


def test_the_shipped_recipe_file_reproduces_core_150k_in_the_mix(cli, tmp_path):
    """mix-665k is its shipped recipe file: its ids are core-150k's (the named recipe, unchanged, at the
    same scaled default size), its core rows are those samples in LLaVA format, and building the shipped
    file with --recipe gives the same rows as the named config."""
    from svit_data.formats.llava import to_llava_record
    from svit_data.recipes.recipe_file import shipped_recipe

    mix = tmp_path / "llava_v1_5_mix665k.json"
    mix.write_text(json.dumps(small_mix()))
    out = tmp_path / "svit"
    assert cli("build", "mix-665k", "core-150k", "--llava-mix", mix, "--out", out, "--quiet") == 0
    recipe_file = shipped_recipe("mix-665k")
    assert cli("build", "--recipe", recipe_file, "--name", "my-665k", "--llava-mix", mix, "--out", out) == 0
    cache = str(tmp_path / "hf")
    mixed = load_dataset(str(out), "mix-665k", split="train", cache_dir=cache).to_list()
    again = load_dataset(str(out), "my-665k", split="train", cache_dir=cache).to_list()
    core = load_dataset(str(out), "core-150k", split="train", cache_dir=cache).to_list()
    assert mixed == again
    state = read_state(out).configs
    assert state["mix-665k"].recipe.manifest.ids_sha256 == state["core-150k"].recipe.manifest.ids_sha256
    assert (
        state["mix-665k"].recipe.recipe_file
        and "recipe_sha256" in state["mix-665k"].recipe.manifest.parameters
    )
    in_mix = {r["id"]: r for r in mixed if r["source"] == "svit-core-150k"}
    assert sorted(in_mix) == sorted(r["id"] for r in core) and len(core) > 20
    for row in core:
        row = {k: v for k, v in row.items() if k != "image"}
        record = to_llava_record(row, seed=0, image_prefix="vg/")
        assert in_mix[row["id"]]["conversations"] == record["conversations"]
        assert in_mix[row["id"]]["image_file"] == record["image"]


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            "sources: {a: sample}\nllava_mix: {file: m.json, prefix: x}\n",
            "llava_mix",
            "known: file, image_prefix",
        ),
        ("sources: {a: sample}\nllava_mix: [m.json]\n", "llava_mix", "must be {file, image_prefix}"),
        (
            "sources: {a: sample}\nselect: {a: {method: core, scaled: true}}\n",
            "select.a.scaled",
            "needs a size",
        ),
        (
            "sources: {a: sample}\nselect: {a: {method: core, size: 5, scaled: 1}}\n",
            "select.a.scaled",
            "true or",
        ),
    ],
)
def test_llava_mix_and_scaled_keys_are_checked(tmp_path, text, field, message):
    from svit_data.errors import InputError
    from svit_data.recipes.recipe_file import read_recipe_file

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_recipe_file(path)
    assert caught.value.field == field and message in str(caught.value)


def test_mix_665k_takes_one_source(cli, tmp_path, capsys):
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps(small_mix()))
    llava = REPO / "tests" / "fixtures" / "sources" / "llava.json"
    argv = ("build", "mix-665k", "--llava-mix", mix, "--source", "sample", "--source", f"inst={llava}")
    assert cli(*argv, "--out", tmp_path / "o", "--quiet") == 2
    assert "selects from one source" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_mix_rebuilt_from_its_id_list(cli, tmp_path):
    """--ids on the shipped recipe file: the same core samples in the same mix, whatever --size said."""
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps(small_mix()))
    first, second = tmp_path / "a", tmp_path / "b"
    assert cli("build", "mix-665k", "--llava-mix", mix, "--size", 12, "--out", first, "--quiet") == 0
    ids = first / "data" / "mix-665k" / "ids.txt.gz"
    assert cli("build", "mix-665k", "--llava-mix", mix, "--ids", ids, "--out", second, "--quiet") == 0
    cache = str(tmp_path / "hf")
    rows = [
        load_dataset(str(o), "mix-665k", split="train", cache_dir=cache).to_list() for o in (first, second)
    ]
    assert rows[0] == rows[1] and sum(r["source"] == "svit-core-150k" for r in rows[0]) == 12
    assert "Rebuilt from the id list ids.txt.gz" in read_state(second).configs["mix-665k"].recipe.objective
