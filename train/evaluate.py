"""`svit-eval run`: answer probe questions with a model, resumably, and score the answers.

Output folder: `eval_config.json` (the resolved settings), `predictions.jsonl` (one line per probe,
appended and flushed as each batch is answered, so a killed run resumes and asks only what is
missing) and `metrics.json` (written atomically at the end from the whole predictions file, with
that file's hash: it never describes predictions it was not computed from). Everything a user can
get wrong (model, probe config, columns, answers, images) is checked before the folder is touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets

from svit_data.atomic import write_text
from svit_data.errors import InputError
from svit_data.train import pope_metrics
from svit_data.train.data import load_source

log = logging.getLogger(__name__)

POPE_PROMPT = "{question}\nAnswer the question using a single word or phrase."
REQUIRED = ("id", "question", "answer")
PROBE_CONFIGS = ("pope-random", "pope-popular", "pope-adversarial")
# settings that change answers: a resumed run must match them
IDENTITY = ("model", "prompt", "max_new_tokens")


@dataclass
class EvalConfig:
    model: str = field(metadata={"help": "svit-train run folder or any LLaVA model folder"})
    data: list[str] = field(
        metadata={"help": "probe config: svit:<config>, OWNER/NAME:<config> or a .parquet file (repeatable)"}
    )
    out: str = field(metadata={"help": "output folder (an existing one is resumed)"})
    data_dir: str = field(default="./svit", metadata={"help": "the local dataset folder svit: names"})
    image_root: str | None = field(
        default=None, metadata={"help": "folder holding image_file paths for rows without embedded images"}
    )
    batch_size: int = field(default=8, metadata={"help": "questions per generate call"})
    limit: int | None = field(default=None, metadata={"help": "ask only the first N probes of each config"})
    max_new_tokens: int = field(default=32, metadata={"help": "answer length limit in tokens"})
    prompt: str = field(default=POPE_PROMPT, metadata={"help": "question template ({question} is filled)"})
    seed: int = field(default=0, metadata={"help": "seed of the bootstrap confidence intervals"})

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError("must be at least 1", field="batch_size")
        if self.limit is not None and self.limit < 1:
            raise InputError("must be at least 1", field="limit")
        if "{question}" not in self.prompt:
            raise InputError("the template must contain {question}", field="prompt")


def config_name(spec: str) -> str:
    return spec.rsplit(":", 1)[1] if ":" in spec and not spec.endswith(".parquet") else Path(spec).stem


def open_probes(spec: str, data_dir: str = "./svit") -> datasets.Dataset:
    """A probe config's test split, checked: id/question/answer columns, yes/no answers, an image."""
    ds = load_source(spec, data_dir=data_dir, split="test", what="probe data")
    for column in REQUIRED:
        if column not in ds.column_names:
            raise InputError(
                f"has no {column!r} column, so it is not a probe config (those are {', '.join(PROBE_CONFIGS)})",
                file=spec,
                field=column,
            )
    if "image" not in ds.column_names and "image_file" not in ds.column_names:
        raise InputError("probe rows need an 'image' or 'image_file' column", file=spec, field="image")
    if "image" in ds.column_names:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    seen = set()
    for i, (pid, answer) in enumerate(zip(ds["id"], ds["answer"], strict=True)):
        if str(answer).strip().lower() not in ("yes", "no"):
            raise InputError(
                f"answer must be yes or no, not {answer!r}", file=spec, record=pid, field="answer"
            )
        if pid in seen:
            raise InputError(f"probe id {pid!r} appears twice (row {i})", file=spec, record=pid, field="id")
        seen.add(pid)
    return ds


def probe_image(row: dict[str, Any], image_root: str | None, spec: str):
    """The row's image, decoded; an image that does not decode is a located InputError."""
    from svit_data.train.images import open_image

    image = row.get("image") if isinstance(row.get("image"), dict) else {}
    data, name = image.get("bytes"), row.get("image_file") or image.get("path")
    try:
        return open_image(data, name, image_root, f"{row['id']}")
    except InputError as e:
        raise InputError(e.message, file=spec, record=row["id"], field="image") from None
    except OSError as e:
        raise InputError(
            f"the image does not decode: {e}", file=spec, record=row["id"], field="image"
        ) from None


def read_predictions(path: Path) -> list[dict]:
    """Complete lines only: a run killed mid-line leaves a partial last line, which is dropped."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    records = []
    for i, line in enumerate(lines[:-1]):  # the text after the last newline is incomplete
        try:
            records.append(json.loads(line))
        except ValueError:
            raise InputError("is not a JSON line", file=str(path), record=i) from None
    return records


def _truncate_partial(path: Path) -> None:
    if path.exists():
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with path.open("r+b") as f:
                f.truncate(keep)


def check_resumable(out: Path, config: EvalConfig) -> None:
    saved_path = out / "eval_config.json"
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", file=str(out), field="out")
    if not saved_path.exists():
        if out.is_dir() and any(out.iterdir()):
            raise InputError("is a non-empty folder that svit-eval did not write", file=str(out), field="out")
        return
    saved = json.loads(saved_path.read_text())
    for key in IDENTITY:
        if saved.get(key) != getattr(config, key):
            raise InputError(
                f"holds an eval made with another {key} ({saved.get(key)!r}); choose another --out",
                file=str(saved_path),
                field=key,
            )


def load_model(path: str):
    """A LLaVA model and processor (bf16 on CUDA, fp32 on CPU); anything else is an InputError."""
    import torch
    from transformers import AutoConfig

    from svit_data.train.generate import load_run

    folder = Path(path)
    is_adapter_run = (
        folder.is_dir() and (folder / "adapter").is_dir() and not (folder / "config.json").exists()
    )
    if not is_adapter_run:
        try:
            model_type = AutoConfig.from_pretrained(path).model_type
        except (OSError, ValueError) as e:
            raise InputError(f"is not a model folder: {e}", file=path, field="model") from None
        if model_type != "llava":
            raise InputError(
                f"svit-eval needs a LLaVA model (a svit-train run or a LLaVA checkpoint), this is {model_type!r}",
                file=path,
                field="model",
            )
    model, processor = load_run(path)
    if torch.cuda.is_available():
        model = model.to("cuda", torch.bfloat16)
    return model, processor


def run_eval(config: EvalConfig) -> dict:
    """Answer every probe that predictions.jsonl lacks, then write metrics.json; returns the metrics."""
    from tqdm import tqdm

    from svit_data.train.generate import answer_batch

    out = Path(config.out)
    probes = {}
    for spec in config.data:
        ds = open_probes(spec, config.data_dir)
        if config.limit is not None:
            ds = ds.select(range(min(config.limit, len(ds))))
        checked = set()
        for row in ds:  # decode every image now: a bad one stops the run before anything is written
            key = (
                (row.get("image_id"), row.get("image_file")) if row.get("image_id") is not None else row["id"]
            )
            if key not in checked:
                probe_image(row, config.image_root, spec)
                checked.add(key)
        probes[config_name(spec)] = (spec, ds)
    check_resumable(out, config)
    model, processor = load_model(config.model)

    out.mkdir(parents=True, exist_ok=True)
    pred_path, metrics_path = out / "predictions.jsonl", out / "metrics.json"
    write_text(out / "eval_config.json", json.dumps(asdict(config), indent=1))
    _truncate_partial(pred_path)
    done = {(p["config"], p["id"]): p for p in read_predictions(pred_path)}
    todo = []
    for name, (spec, ds) in probes.items():
        for row in ds:
            old = done.get((name, str(row["id"])))
            if old is None:
                todo.append((name, spec, row))
            elif (old["question"], old["answer"]) != (row["question"], row["answer"].strip().lower()):
                raise InputError(
                    f"probe {row['id']!r} of {name} changed since these predictions were made; choose another --out",
                    file=str(pred_path),
                    field="question",
                )
    if todo and metrics_path.exists():
        metrics_path.unlink()  # about to append: the old metrics would no longer match
    log.info("%d probes answered before, %d to ask", len(done), len(todo))
    with pred_path.open("a", encoding="utf-8") as f, tqdm(total=len(todo), desc="probes") as bar:
        for start in range(0, len(todo), config.batch_size):
            batch = todo[start : start + config.batch_size]
            questions = [config.prompt.format(question=row["question"]) for _, _, row in batch]
            images = [probe_image(row, config.image_root, spec) for _, spec, row in batch]
            answers = answer_batch(model, processor, questions, images, max_new_tokens=config.max_new_tokens)
            for (name, _, row), text in zip(batch, answers, strict=True):
                record = {
                    "config": name,
                    "id": str(row["id"]),
                    "image_id": row.get("image_id"),
                    "sampler": row.get("sampler"),
                    "object": row.get("object"),
                    "question": row["question"],
                    "answer": row["answer"].strip().lower(),
                    "output": text,
                }
                f.write(json.dumps(record) + "\n")
            f.flush()
            bar.update(len(batch))
    result = score(pred_path, seed=config.seed)
    result["model"] = config.model
    write_text(metrics_path, json.dumps(result, indent=1))
    return result


def score(pred_path: Path, *, seed: int = 0) -> dict:
    """Metrics per config under both answer rules, computed from (and naming) the predictions file."""
    records = read_predictions(pred_path)
    by_config: dict[str, list[dict]] = {}
    for r in records:
        by_config.setdefault(r["config"], []).append(r)
    configs = {}
    for name, rows in sorted(by_config.items()):
        gold = [r["answer"] for r in rows]
        samplers = sorted({str(r.get("sampler")) for r in rows})
        configs[name] = {
            "sampler": samplers[0] if len(samplers) == 1 else samplers,
            "rules": {
                rule: pope_metrics.metrics(gold, [parse(r["output"]) for r in rows], seed=seed)
                for rule, parse in pope_metrics.PARSERS.items()
            },
        }
    digest = hashlib.sha256(pred_path.read_bytes()).hexdigest()
    return {
        "predictions": {"file": pred_path.name, "count": len(records), "sha256": digest},
        "configs": configs,
    }
