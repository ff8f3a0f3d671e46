"""Third-party sources: each format read from hand-made fixtures, detection, lossless LLaVA round trips,
mixed pools with a source column, and the located errors of bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset
from PIL import Image

from svit_data.cli import main
from svit_data.errors import InputError
from svit_data.formats.sources import detect_format, iter_file_records, read_source
from svit_data.sources import SourceSpec, open_source, open_sources, parse_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
SCIENCEQA = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "fixtures"
    / "llava"
    / "scienceqa_llava_format.sample.json"
)


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_cauldron(path: Path) -> Path:
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    texts = pa.list_(pa.struct([("user", pa.string()), ("assistant", pa.string()), ("source", pa.string())]))
    table = pa.table(
        {
            "images": pa.array([[{"bytes": png(40, 20), "path": None}], []], pa.list_(image)),
            "texts": pa.array(
                [
                    [
                        {"user": "What colour is the picture?", "assistant": "Red.", "source": "toy"},
                        {
                            "user": "Where is the red area?",
                            "assistant": "At [0, 0, 40, 20].",
                            "source": "toy",
                        },
                    ],
                    [{"user": "Name a prime.", "assistant": "7.", "source": "text"}],
                ],
                texts,
            ),
        }
    )
    pq.write_table(table, path)
    return path


def build(out: Path, *sources: str, extra: tuple[str, ...] = (), configs: tuple[str, ...] = ("full",)) -> int:
    args = ["build", *configs, "--out", str(out), "--quiet", *extra]
    for source in sources:
        args += ["--source", source]
    return main(args)


def export(folder: Path, out: Path, *extra: str) -> int:
    return main(["export", "full", "--dir", str(folder), "--out", str(out), *extra])


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("llava.json", "llava"),
        ("llava.jsonl", "llava"),
        ("sharegpt.json", "sharegpt"),
        ("messages.jsonl", "messages"),
    ],
)
def test_the_format_is_detected_from_the_records(name, fmt):
    assert detect_format(FIXTURES / name) == fmt


def test_cauldron_is_detected_and_its_pairs_become_turns(tmp_path):
    path = write_cauldron(tmp_path / "cauldron.parquet")
    assert detect_format(path) == "cauldron"
    records = [r for _, _, r in read_source(path, "cauldron")]
    assert [t["from"] for t in records[0].turns] == ["user", "gpt", "user", "gpt"]
    assert records[0].turns[3]["value"] == "At [0, 0, 40, 20]."
    assert records[0].image_bytes[0] == png(40, 20) and records[1].images == []


def test_a_file_of_no_known_format_is_named_with_its_record(capsys):
    with pytest.raises(InputError) as caught:
        detect_format(FIXTURES / "unknown.jsonl")
    assert caught.value.file.endswith("unknown.jsonl") and caught.value.record == 0
    assert "completion, prompt" in str(caught.value) and "--format" in str(caught.value)


def test_an_image_token_count_that_does_not_match_the_images_is_located():
    with pytest.raises(InputError) as caught:
        list(read_source(FIXTURES / "bad_image_count.json", "llava"))
    assert caught.value.record == 1 and caught.value.field == "image"
    assert "2 <image> token(s) in the turns but 1 image(s)" in str(caught.value)


def test_an_unknown_speaker_is_located(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"conversations": [{"from": "narrator", "value": "x"}], "images": []}]))
    with pytest.raises(InputError) as caught:
        list(read_source(path, "sharegpt"))
    assert caught.value.field == "conversations[0]" and "narrator" in str(caught.value)


def test_sharegpt_reads_both_turn_styles_and_keeps_image_lists():
    records = [r for _, _, r in read_source(FIXTURES / "sharegpt.json", "sharegpt")]
    assert records[0].source_id is None and records[0].images == ["art/monet_1.jpg"]
    assert records[1].source_id == "lf-2" and records[1].images == ["scene/t0.jpg", "scene/t1.jpg"]
    assert [t["from"] for t in records[1].turns] == ["user", "gpt"]


def test_messages_image_parts_become_image_tokens_where_they_stood():
    records = [r for _, _, r in read_source(FIXTURES / "messages.jsonl", "messages")]
    assert records[0].turns[0]["value"] == "<image>\nWhat is on the table?"
    assert records[0].turns[1] == {"from": "gpt", "value": "A red cup."}
    assert records[1].source_id == "m-2" and records[1].images == []


def test_source_names_default_to_the_file_stem_and_svit_data_to_svit():
    assert parse_source(str(FIXTURES / "llava.json")).name == "llava"
    assert parse_source("mine=" + str(FIXTURES / "llava.json")).name == "mine"
    assert parse_source("sample").name == "svit"
    with pytest.raises(InputError):
        SourceSpec("x", "p", format="yaml")


def test_pool_rows_of_a_source_carry_its_name_ids_and_frame():
    pool = open_source(parse_source("inst=" + str(FIXTURES / "llava.json")), progress=False)
    rows = pool.table().to_pylist()
    assert [r["id"] for r in rows] == ["inst/0", "inst/1", "inst/2", "inst/3"]
    assert [r["source_id"] for r in rows] == ["000000033471", "text-7", "pair-1", "000000033471"]
    assert {r["source"] for r in rows} == {"inst"} and {r["box_frame"] for r in rows} == {"square"}
    assert {r["task"] for r in rows} == {""} and {r["image_id"] for r in rows} == {None}
    assert rows[1]["image_file"] is None and rows[2]["images"] == ["vg/VG_100K/1.jpg", "vg/VG_100K/2.jpg"]
    assert pool.source_counts == {"inst": 4} and pool.formats == {"inst": "llava"}


@pytest.mark.parametrize("name", ["llava.json", "llava.jsonl"])
def test_a_llava_source_exports_back_to_the_same_records(tmp_path, name):
    assert build(tmp_path / "svit", f"mine={FIXTURES / name}") == 0
    assert export(tmp_path / "svit", tmp_path / "out.json") == 0
    original = list(iter_file_records(FIXTURES / name))
    assert json.loads((tmp_path / "out.json").read_text()) == original


@pytest.mark.skipif(not SCIENCEQA.is_file(), reason="shared LLaVA fixture absent")
def test_real_llava_records_round_trip_losslessly(tmp_path):
    assert build(tmp_path / "svit", f"scienceqa={SCIENCEQA}") == 0
    assert export(tmp_path / "svit", tmp_path / "out.json") == 0
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(SCIENCEQA.read_text())


def test_a_mixed_pool_keeps_every_source_and_loads_with_datasets(tmp_path):
    cauldron = write_cauldron(tmp_path / "toy_cauldron.parquet")
    out = tmp_path / "svit"
    sources = (
        "sample",
        f"inst={FIXTURES / 'llava.json'}",
        f"chat={FIXTURES / 'messages.jsonl'}",
        str(cauldron),
    )
    assert build(out, *sources) == 0
    train = load_dataset(str(out), "full", split="train", cache_dir=str(tmp_path / "hf"))
    counts = {name: train["source"].count(name) for name in ("svit", "inst", "chat", "toy_cauldron")}
    assert (
        counts["inst"] == 4 and counts["chat"] == 2 and counts["toy_cauldron"] == 2 and counts["svit"] > 1000
    )
    with_bytes = [r for r in train if r["source"] == "toy_cauldron" and r["image"] is not None]
    assert len(with_bytes) == 1 and with_bytes[0]["image"].size == (40, 20)
    assert (with_bytes[0]["width"], with_bytes[0]["height"]) == (40, 20)


def test_two_sources_with_one_name_are_refused():
    with pytest.raises(Exception, match="given twice"):
        open_sources(
            [parse_source(f"a={FIXTURES / 'llava.json'}"), parse_source(f"a={FIXTURES / 'llava.jsonl'}")]
        )


def test_bad_sources_exit_2_without_output(tmp_path, capsys):
    out = tmp_path / "svit"
    assert build(out, str(FIXTURES / "unknown.jsonl")) == 2
    assert "unknown.jsonl: record 0: is no known source format" in capsys.readouterr().err
    assert build(out, str(FIXTURES / "bad_image_count.json")) == 2
    assert "record 1: field 'image'" in capsys.readouterr().err
    assert not out.exists()


def test_format_can_be_forced(tmp_path, capsys):
    out = tmp_path / "svit"
    assert build(out, str(FIXTURES / "llava.json"), extra=("--format", "messages")) == 2
    assert "llava.json: record 0: field 'messages'" in capsys.readouterr().err


def exported_texts(path: Path) -> list[str]:
    return [t["value"] for r in json.loads(path.read_text()) for t in r["conversations"]]


def test_boxes_move_between_frames_when_the_image_size_is_known(tmp_path):
    cauldron = write_cauldron(tmp_path / "toy.parquet")
    out = tmp_path / "svit"
    assert build(out, str(cauldron), extra=("--box-frame", "pixels")) == 0
    assert export(out, tmp_path / "orig.json", "--box-frame", "original") == 0
    assert "At [0.0, 0.0, 1.0, 1.0]." in exported_texts(tmp_path / "orig.json")
    assert export(out, tmp_path / "k.json", "--box-frame", "k1000") == 0
    assert "At [0, 0, 1000, 1000]." in exported_texts(tmp_path / "k.json")
    # 40x20 padded to a 40x40 square: the picture sits in the middle half
    assert export(out, tmp_path / "sq.json", "--box-frame", "square") == 0
    assert "At [0.0, 0.25, 1.0, 0.75]." in exported_texts(tmp_path / "sq.json")


def test_k1000_and_original_convert_without_sizes(tmp_path):
    path = tmp_path / "k.json"
    turns = [{"from": "human", "value": "Where?"}, {"from": "gpt", "value": "At [100, 250, 500, 1000]."}]
    path.write_text(json.dumps([{"id": "k", "conversations": turns}]))
    assert build(tmp_path / "svit", str(path), extra=("--box-frame", "k1000")) == 0
    assert export(tmp_path / "svit", tmp_path / "o.json", "--box-frame", "original") == 0
    assert exported_texts(tmp_path / "o.json")[1] == "At [0.1, 0.25, 0.5, 1.0]."


def test_a_frame_change_without_image_sizes_is_refused_in_one_sentence(tmp_path, capsys):
    assert build(tmp_path / "svit", f"inst={FIXTURES / 'llava.json'}") == 0
    assert export(tmp_path / "svit", tmp_path / "o.json", "--box-frame", "original") == 2
    err = capsys.readouterr().err
    assert "record inst/2: field 'width': the image size is unknown" in err
    assert "from the square frame to the original frame" in err
    assert not (tmp_path / "o.json").exists()


def test_content_problems_are_flagged_and_counted_not_build_failures(tmp_path, capsys):
    path = tmp_path / "rough.json"
    records = [
        {
            "id": "ok",
            "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}],
        },
        {
            "id": "order",
            "conversations": [{"from": "gpt", "value": "Hello."}, {"from": "human", "value": "Hi?"}],
        },
        {"id": "empty", "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "  "}]},
        {
            "id": "box",
            "conversations": [{"from": "human", "value": "Where?"}, {"from": "gpt", "value": "[1, 2, 3, 4]"}],
        },
    ]
    path.write_text(json.dumps(records))
    pool = open_source(parse_source(f"rough={path}"), progress=False)
    flags = {r["source_id"]: r["flags"] for r in pool.table(["source_id", "flags"]).to_pylist()}
    assert flags == {"ok": [], "order": ["turn_order"], "empty": ["empty_answer"], "box": []}
    assert pool.quality["flagged"] == 2 and pool.quality["per_task"] == {
        "none": {"turn_order": 1, "empty_answer": 1}
    }
    assert pool.quality["examples"]["turn_order"] == ["rough/1"]
    out = tmp_path / "svit"
    assert build(out, f"rough={path}", extra=("--strict",)) == 2
    assert "sample rough/1 is flagged 'turn_order'" in capsys.readouterr().err  # the pool was ingested above
    with pytest.raises(InputError, match="record 1: field 'turn 0': turn_order"):  # ingested now: located
        open_source(parse_source(f"other={path}"), progress=False, strict=True)
    assert build(out, f"rough={path}") == 0  # flagged samples stay in full (lossless), recipes skip them
    assert load_dataset(str(out), "full", split="train", cache_dir=str(tmp_path / "hf")).num_rows == 4


def test_third_party_rows_export_as_messages_with_their_image_placement(tmp_path):
    assert build(tmp_path / "svit", f"inst={FIXTURES / 'llava.json'}") == 0
    assert (
        main(
            [
                "export",
                "full",
                "--dir",
                str(tmp_path / "svit"),
                "--format",
                "messages",
                "--out",
                str(tmp_path / "m.jsonl"),
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert records[0]["images"] == ["coco/train2017/000000033471.jpg"]
    assert records[0]["messages"][0]["content"] == [
        {"type": "image"},
        {"type": "text", "text": "What are the colors of the bus in the image?"},
    ]
    assert records[1]["id"] == "text-7" and records[1]["images"] == []
    assert all(p["type"] == "text" for m in records[1]["messages"] for p in m["content"])
    assert records[2]["images"] == ["vg/VG_100K/1.jpg", "vg/VG_100K/2.jpg"]
    assert [p["type"] for p in records[2]["messages"][0]["content"]] == [
        "text",
        "image",
        "text",
        "image",
        "text",
    ]
    # read back, the messages give the same turns as the source
    back = [r for _, _, r in read_source(tmp_path / "m.jsonl", "messages")]
    assert back[1].turns == [r for _, _, r in read_source(FIXTURES / "llava.json", "llava")][1].turns
