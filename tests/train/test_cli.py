"""svit-train: flags, YAML + key=value overrides, resolved config on disk, exit code 2 on user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from svit_train_helpers import make_image

from svit_data.errors import SvitError
from svit_data.train.cli import main
from svit_data.train.config import TrainConfig, load_yaml, parse_overrides, resolve


def test_stage_defaults_follow_design():
    s1 = TrainConfig(stage="stage1", vision="v", llm="l")
    assert (s1.lr, s1.global_batch, s1.max_length, s1.warmup_ratio) == (1e-3, 256, 2048, 0.03)
    full = TrainConfig(stage="stage2", init_from="r")
    assert (full.lr, full.projector_lr, full.global_batch) == (2e-5, 2e-5, 128)
    lora = TrainConfig(stage="stage2", init_from="r", lora=True)
    assert (lora.lr, lora.projector_lr, lora.lora_r, lora.lora_alpha) == (2e-4, 2e-5, 128, 256)


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "stage2_lora.yaml"
    path.write_text("stage: stage2\nfrom: runs/s1\nlora: true\nlr: 3.0e-4\nepochs: 3\n")
    config = resolve(load_yaml(path), parse_overrides(["lr=1e-4", "epochs=2"]))
    assert (config.init_from, config.lora, config.lr, config.epochs, config.projector_lr) == (
        "runs/s1",
        True,
        1e-4,
        2.0,
        2e-5,
    )


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ({"stage": "stage1", "vision": "v"}, "both --vision and --llm"),
        ({"stage": "stage1"}, "either --vision and --llm"),
        ({"stage": "stage1", "init_from": "r", "lora": True}, "stage 2 option"),
        ({"stage": "stage3", "init_from": "r"}, "stage must be one of"),
    ],
)
def test_invalid_configs_name_the_problem(layers, message):
    with pytest.raises(SvitError, match=message):
        resolve(layers)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("log_every=0", "log_every must be positive"),
        ("lr=-1", "lr must be positive"),
        ("num_workers=-1", "num_workers must not be negative"),
        ("lora_dropout=1.5", "lora_dropout must be in"),
    ],
)
def test_out_of_range_values_name_the_field(override, message):
    with pytest.raises(SvitError, match=message):
        resolve({"stage": "stage1", "init_from": "r"}, parse_overrides([override]))


def test_cli_errors_before_any_work_exit_2(tmp_path, capsys):
    base = ["stage1", "--vision", "v", "--llm", "l"]
    assert main([*base, "--data", "svit:conversation"]) == 2
    assert (
        capsys.readouterr().err
        == "svit-train: error: --out is required (or give it in --config or as out=...)\n"
    )
    assert main([*base, "--out", str(tmp_path / "o")]) == 2
    assert "--data is required" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: 1e-3\nepochs: [1\n")
    assert main(["stage1", "--config", str(bad)]) == 2
    assert capsys.readouterr().err == f"svit-train: error: {bad}: not valid YAML at line 3\n"
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "state.json").write_text("{")
    assert main(["stage1", "--resume", str(tmp_path / "ckpt")]) == 2
    assert "cannot read the run's config from state.json" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_override_names_the_key():
    with pytest.raises(SvitError, match="'epochs' expects float"):
        parse_overrides(["epochs=many"])
    with pytest.raises(SvitError, match="unknown config key 'learning_rate'"):
        parse_overrides(["learning_rate=1"])


def test_cli_smoke_run_writes_resolved_config(tmp_path, tiny_parts, llava_parquet, capsys):
    out = tmp_path / "smoke"
    code = main(
        [
            "stage1",
            "--vision",
            tiny_parts["vision"],
            "--llm",
            tiny_parts["llm"],
            "--data",
            llava_parquet,
            "--out",
            str(out),
            "--max-steps",
            "2",
            "global_batch=4",
            "micro_batch=2",
            "num_workers=0",
        ]
    )
    assert code == 0
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["max_steps"] == 2 and saved["global_batch"] == 4 and saved["lr"] == 1e-3
    assert (out / "checkpoint-2" / "state.json").exists() and (out / "model.safetensors").exists()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(
        r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 for r in log
    )
    # --resume alone continues the run with its saved config
    assert main(["stage1", "--resume", str(out / "checkpoint-2"), "--max-steps", "3"]) == 0
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert main(["stage2", "--resume", str(out / "checkpoint-2")]) == 2
    assert "stage='stage1'" in capsys.readouterr().err
    image = tmp_path / "q.png"
    image.write_bytes(make_image(9))
    capsys.readouterr()
    assert (
        main(["ask", str(out), "what is on the table?", "--image", str(image), "--max-new-tokens", "3"]) == 0
    )
    assert capsys.readouterr().out.endswith("\n")


def test_cli_user_errors_exit_2(tmp_path, tiny_parts, llava_parquet, capsys):
    assert (
        main(
            [
                "stage2",
                "--from",
                str(tmp_path),
                "--data",
                llava_parquet,
                "--out",
                str(tmp_path / "o"),
                "--fsdp",
            ]
        )
        == 2
    )
    assert "--fsdp needs CUDA" in capsys.readouterr().err
    assert main(["stage1", "--vision", "v", "--llm", "l", "--data", "x", "--out", "o", "precision=bf16"]) == 2
    assert "bf16 needs a CUDA GPU" in capsys.readouterr().err
    missing = ["--data", "svit:core-150k", "--data-dir", str(tmp_path / "missing")]
    assert main(["stage2", "--from", tiny_parts["llm"], *missing, "--out", str(tmp_path / "o")]) == 2
    assert "cannot load training data 'svit:core-150k'" in capsys.readouterr().err
    assert (
        main(["stage2", "--from", tiny_parts["llm"], "--data", llava_parquet, "--out", str(tmp_path / "o")])
        == 2
    )
    assert "needs a LLaVA model" in capsys.readouterr().err


def test_cli_without_torch_names_the_extra(tmp_path):
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\nclass B:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('torch', 'transformers'):\n            raise ImportError(name)\n"
        "sys.meta_path.insert(0, B())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "svit_data.train", "stage1", "--from", "x", "--data", "y"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and "pip install svit[train]" in proc.stderr


@pytest.mark.parametrize("flag", ["--from", "--vision"])
@pytest.mark.parametrize("value", ["/no/such/run", "./missing_run", "a/b/c", "bad id!"])
def test_a_model_that_is_neither_a_folder_nor_a_hub_id_fails_before_any_work(flag, value):
    from svit_data.errors import InputError
    from svit_data.train.config import check_model_reference

    with pytest.raises(InputError, match=f"{flag}: no such folder, and not a Hub id"):
        check_model_reference(flag, value)


def test_hub_ids_and_existing_folders_are_accepted(tmp_path):
    from svit_data.train.config import check_model_reference

    for value in ("lmsys/vicuna-7b-v1.5", "openai/clip-vit-large-patch14-336", "gpt2", str(tmp_path)):
        check_model_reference("--llm", value)  # raises on a bad reference


def test_help_states_each_default_once():
    from svit_data.train.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["stage2"]
    text = " ".join(sub.format_help().split())
    assert "(default: None)" not in text
    assert text.count("(default: on for CUDA)") == 1
    assert (
        "peak learning rate of the projector (default: stage1 0.001, stage2 2e-05, stage2 --lora 2e-05)"
        in text
    )
    assert "LoRA rank (default: 128)" in text


def test_checkpoint_state_is_read_and_checked_in_one_place(tmp_path):
    from svit_data.errors import InputError
    from svit_data.train.config import read_checkpoint_state

    config = TrainConfig(stage="stage2", init_from="r", data="svit:conversation", out=str(tmp_path / "o"))
    with pytest.raises(InputError, match="missing state.json"):
        read_checkpoint_state(str(tmp_path))
    (tmp_path / "state.json").write_text(json.dumps({"step": 3, "config": {**config.to_dict(), "seed": 7}}))
    assert read_checkpoint_state(str(tmp_path))["step"] == 3
    with pytest.raises(InputError, match="written with seed=7 but this run has seed=0") as caught:
        read_checkpoint_state(str(tmp_path), config)
    assert caught.value.field == "seed"


@pytest.mark.parametrize("data", ["svit:pope-adversarial", "someone/svit:pope-random"])
def test_probe_configs_are_refused_as_training_data(tmp_path, capsys, data):
    args = ["stage2", "--from", str(tmp_path), "--data", data, "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"svit-train: error: --data {data} is a probe config") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_ask_with_an_image_that_does_not_decode_is_one_sentence(tmp_path, capsys):
    broken = tmp_path / "cat.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["ask", str(tmp_path / "no-run"), "--image", str(broken), "What is this?"]) == 2
    err = capsys.readouterr().err
    assert err == f"svit-train: error: --image {broken} does not decode as an image\n"
    (tmp_path / "notes.png").write_text("just text")
    assert main(["ask", str(tmp_path / "no-run"), "--image", str(tmp_path / "notes.png"), "q"]) == 2
    assert capsys.readouterr().err.endswith("notes.png does not decode as an image\n")
    assert main(["ask", str(tmp_path / "no-run"), "--image", str(tmp_path / "gone.jpg"), "q"]) == 2
    assert capsys.readouterr().err == f"svit-train: error: --image {tmp_path / 'gone.jpg'} does not exist\n"
