"""`svit-eval lmms-eval-task`: an lmms-eval task folder over a local probe config.

The folder holds one YAML per config (task `svit_<config>` with dashes as underscores), utils.py and
a copy of pope_metrics.py (so lmms-eval scores with svit's rules) and task.json (prompt, image root).
lmms-eval reads the config through `datasets.load_dataset(<dataset folder>, <config>)`, split test.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from svit_data.atomic import write_bytes, write_text
from svit_data.train import pope_metrics
from svit_data.train.evaluate import POPE_PROMPT, open_probes

HERE = Path(__file__).resolve().parent


def task_name(config: str) -> str:
    return "svit_" + config.replace("-", "_")


def task_yaml(config: str, data_dir: Path, max_new_tokens: int) -> str:
    """The YAML text; `!function` tags are written literally (PyYAML cannot emit unknown tags)."""
    body = {
        "task": task_name(config),
        "dataset_path": str(data_dir),
        "dataset_name": config,
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_target": "answer",
        "generation_kwargs": {
            "max_new_tokens": max_new_tokens,
            "temperature": 0,
            "num_beams": 1,
            "do_sample": False,
        },
        "metadata": [{"version": 0.0}],
    }
    functions = {n: f"utils.{n}" for n in ("doc_to_visual", "doc_to_text", "process_results")}
    lines = [yaml.safe_dump(body, sort_keys=False).rstrip()]
    lines += [f"{key}: !function {value}" for key, value in functions.items()]
    lines.append("metric_list:")
    for rule in pope_metrics.RULES:
        for metric in pope_metrics.METRICS:
            name = f"{rule}_{metric}"
            better = "false" if metric == "yes_ratio" else "true"
            lines += [
                f"  - metric: {name}",
                f"    aggregation: !function utils.{name}",
                f"    higher_is_better: {better}",
            ]
    return "\n".join(lines) + "\n"


def write_task(
    configs: list[str],
    *,
    data_dir: str,
    out: str,
    image_root: str | None = None,
    prompt: str = POPE_PROMPT,
    max_new_tokens: int = 32,
) -> list[Path]:
    """Check each config loads as a probe config, then write the task files; returns the YAML paths."""
    folder = Path(data_dir).resolve()
    for config in configs:
        open_probes(f"svit:{config}", str(folder))
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    settings = {"prompt": prompt, "image_root": str(Path(image_root).resolve()) if image_root else None}
    write_text(target / "task.json", json.dumps(settings, indent=1))
    for source, name in (
        (HERE / "pope_metrics.py", "pope_metrics.py"),
        (HERE / "lmms_task_utils.py", "utils.py"),
    ):
        write_bytes(target / name, source.read_bytes())
    written = []
    for config in configs:
        path = target / f"{task_name(config)}.yaml"
        write_text(path, task_yaml(config, folder, max_new_tokens))
        written.append(path)
    return written
