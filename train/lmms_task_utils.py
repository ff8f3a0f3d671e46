"""utils.py of an lmms-eval task written by `svit-eval lmms-eval-task` (this file is copied as is).

lmms-eval loads it from the task folder through `!function utils.<name>` in the task YAML. Scoring
uses pope_metrics.py, copied beside it from svit, so lmms-eval reports the numbers `svit-eval run`
reports (without the bootstrap intervals). task.json holds the prompt and the image root.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load_metrics():
    spec = importlib.util.spec_from_file_location("svit_pope_metrics", HERE / "pope_metrics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


M = _load_metrics()
SETTINGS = json.loads((HERE / "task.json").read_text()) if (HERE / "task.json").exists() else {}


def doc_to_visual(doc):
    from PIL import Image

    image = doc.get("image")
    if image is None:
        image = Image.open(Path(SETTINGS.get("image_root") or ".") / doc["image_file"])
    return [image.convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    template = SETTINGS.get("prompt", "{question}\nAnswer the question using a single word or phrase.")
    return template.format(question=doc["question"].strip())


def process_results(doc, results):
    item = {"id": doc["id"], "answer": doc["answer"].strip().lower(), "output": results[0]}
    return {f"{rule}_{metric}": item for rule in M.RULES for metric in M.METRICS}


def _aggregator(rule, metric):
    def aggregate(items):
        answers = [M.PARSERS[rule](item["output"]) for item in items]
        return float(M.metric_value(metric, M.codes([item["answer"] for item in items]), M.codes(answers)))

    aggregate.__name__ = f"{rule}_{metric}"
    return aggregate


for _rule in M.RULES:
    for _metric in M.METRICS:
        globals()[f"{_rule}_{_metric}"] = _aggregator(_rule, _metric)
