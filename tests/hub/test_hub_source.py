"""``--source hf://datasets/OWNER/NAME``: the released SVIT files downloaded from a (gated) Hub repo."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_helpers import run
from hub_server import HubServer

from svit_data.folder import read_state
from svit_data.sample import sample_dir
from svit_data.tasks import TASK_FILES


def released_files() -> dict[str, bytes]:
    """The bundled sample's task files laid out like the released repo (``data/<task>.json``)."""
    folder = sample_dir()
    files = {f"data/{name}": (folder / name).read_bytes() for name in TASK_FILES.values()}
    files["data/image_data.json"] = (folder / "image_data.json").read_bytes()
    files["README.md"] = b"---\nlicense: cc-by-4.0\n---\n# SVIT\n"
    return files


def build(env: dict, out: Path, repo: str = "BAAI/SVIT"):
    return run(["build", "full", "--source", f"hf://datasets/{repo}", "--out", str(out), "--quiet"], env)


def test_build_from_a_gated_hub_repo_with_access(hub: HubServer, hub_env: dict, tmp_path: Path):
    hub.state.add_repo("BAAI/SVIT", released_files(), gated=True, granted=True)
    result = build(hub_env, tmp_path / "svit")
    assert result.returncode == 0, result.stderr[-2000:]
    config = read_state(tmp_path / "svit").configs["full"]
    local = run(
        ["build", "full", "--source", str(sample_dir()), "--out", str(tmp_path / "local"), "--quiet"], hub_env
    )
    assert local.returncode == 0, local.stderr[-2000:]
    expected = read_state(tmp_path / "local").configs["full"]
    assert {s: v.num_examples for s, v in config.splits.items()} == {
        s: v.num_examples for s, v in expected.splits.items()
    }
    assert config.source == "hf://datasets/BAAI/SVIT"
    downloads = [path for method, path in hub.state.requests if method == "GET" and "/resolve/" in path]
    assert any(path.endswith("data/conversation.json") for path in downloads)


@pytest.mark.parametrize(("granted", "token"), [(False, True), (False, False)])
def test_refused_access_to_a_gated_repo_is_one_sentence(hub, hub_env, tmp_path, granted, token):
    hub.state.add_repo("BAAI/SVIT", released_files(), gated=True, granted=granted)
    env = dict(hub_env) if token else {k: v for k, v in hub_env.items() if k != "HF_TOKEN"}
    result = build(env, tmp_path / "svit")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "access to the gated dataset BAAI/SVIT was refused" in last
    assert "Traceback" not in result.stderr and not (tmp_path / "svit").exists()


def test_a_missing_repo_and_a_repo_without_task_files(hub, hub_env, tmp_path):
    missing = build(hub_env, tmp_path / "a", repo="BAAI/nothing")
    assert missing.returncode == 2 and "BAAI/nothing was not found" in missing.stderr
    hub.state.add_repo("BAAI/empty", {"README.md": b"# empty\n"})
    empty = build(hub_env, tmp_path / "b", repo="BAAI/empty")
    assert empty.returncode == 2 and "has none of the SVIT task files" in empty.stderr


def test_an_unreachable_hub_is_one_sentence(hub_env, tmp_path):
    env = {**hub_env, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_ETAG_TIMEOUT": "2"}
    result = build(env, tmp_path / "svit")
    assert result.returncode == 2
    assert "cannot reach the Hub to download BAAI/SVIT" in result.stderr.strip().splitlines()[-1]


def cauldron_parquet() -> bytes:
    """A the_cauldron parquet in miniature: one image record with two pairs, one text-only record."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(png, format="PNG")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    pair = pa.struct([("user", pa.string()), ("assistant", pa.string()), ("source", pa.string())])
    table = pa.table(
        {
            "images": pa.array([[{"bytes": png.getvalue(), "path": None}], []], pa.list_(image)),
            "texts": pa.array(
                [
                    [
                        {"user": "What colour is it?", "assistant": "Red.", "source": "toy"},
                        {"user": "Is it wide?", "assistant": "Yes.", "source": "toy"},
                    ],
                    [{"user": "Name a prime.", "assistant": "7.", "source": "text"}],
                ],
                pa.list_(pair),
            ),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def rows_of(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    from svit_data.folder import config_files

    rows = pq.read_table(config_files(str(out), "full")["train"]).drop_columns(["image"]).to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def test_third_party_formats_from_hub_repos(hub: HubServer, hub_env: dict, tmp_path: Path):
    """LLaVA JSON and a cauldron parquet read from Hub repos (a config folder each, or a whole repo) give
    the rows the same files give locally; the source names default to the config or repo name."""
    llava = (Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "llava.json").read_bytes()
    cauldron = cauldron_parquet()
    hub.state.add_repo(
        "me/mixed",
        {
            "README.md": b"# mixed\n",
            "llava/part-0.json": llava,
            "cauldron/train-00000.parquet": cauldron,
            "dataset_info.json": b"{}",
        },
    )
    hub.state.add_repo("me/instruct", {"data/train.json": llava}, gated=True, granted=True)
    sources = [
        "--source",
        "inst=hf://datasets/me/mixed/llava",
        "--source",
        "hf://datasets/me/mixed/cauldron",
        "--source",
        "hf://datasets/me/instruct",
    ]
    result = run(["build", "full", *sources, "--out", str(tmp_path / "hub"), "--quiet"], hub_env)
    assert result.returncode == 0, result.stderr[-2000:]
    local = tmp_path / "files"
    (local / "cauldron").mkdir(parents=True)
    (local / "llava.json").write_bytes(llava)
    (local / "cauldron" / "train-00000.parquet").write_bytes(cauldron)
    sources = ["--source", f"inst={local / 'llava.json'}", "--source", f"cauldron={local / 'cauldron'}"]
    sources += ["--source", f"instruct={local / 'llava.json'}"]
    result = run(["build", "full", *sources, "--out", str(tmp_path / "local"), "--quiet"], hub_env)
    assert result.returncode == 0, result.stderr[-2000:]
    from_hub, from_files = rows_of(tmp_path / "hub"), rows_of(tmp_path / "local")
    assert {r["source"] for r in from_hub} == {"inst", "cauldron", "instruct"}
    assert [r["id"] for r in from_hub] == [r["id"] for r in from_files]
    strip = ("id", "source")
    key = lambda r: (r["source_id"] or "", str(r["conversations"]))  # noqa: E731
    assert sorted(({k: v for k, v in r.items() if k not in strip} for r in from_hub), key=key) == sorted(
        ({k: v for k, v in r.items() if k not in strip} for r in from_files), key=key
    )
    cauldron_rows = [r for r in from_hub if r["source"] == "cauldron"]
    assert len(cauldron_rows) == 2 and cauldron_rows[0]["width"] == 40
    assert read_state(tmp_path / "hub").configs["full"].source.startswith("inst=hf://datasets/me/mixed/llava")


def test_a_hub_config_without_data_files_is_one_sentence(hub, hub_env, tmp_path):
    hub.state.add_repo("me/mixed", {"llava/notes.txt": b"nothing here\n"})
    result = run(
        ["build", "full", "--source", "x=hf://datasets/me/mixed/llava", "--out", str(tmp_path / "o")], hub_env
    )
    assert result.returncode == 2 and not (tmp_path / "o").exists()
    last = result.stderr.strip().splitlines()[-1]
    assert "folder 'llava' of dataset me/mixed has no .json, .jsonl, .parquet data files" in last


def test_errors_in_hub_files_name_their_hf_path(hub, hub_env, tmp_path):
    """A file of no known format and a broken record: the sentence names the file by its hf:// path, not by
    its place in the Hub cache."""
    hub.state.add_repo("me/odd", {"data/train.json": b'[{"question": "what?", "label": 3}]'})
    broken = b'[{"id": "a", "image": "a.jpg", "conversations": [{"from": "human", "value": 5}]}]'
    hub.state.add_repo("me/broken", {"llava/part-0.json": broken})
    for source, name in [
        ("hf://datasets/me/odd", "hf://datasets/me/odd/data/train.json"),
        ("x=hf://datasets/me/broken/llava", "hf://datasets/me/broken/llava/part-0.json"),
    ]:
        out = tmp_path / name.replace("/", "_")
        result = run(["build", "full", "--source", source, "--out", str(out), "--quiet"], hub_env)
        assert result.returncode == 2 and not out.exists(), result.stderr[-2000:]
        last = result.stderr.strip().splitlines()[-1]
        assert name in last and "hub" not in last.replace("hf://", "").lower(), last
