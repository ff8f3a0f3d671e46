"""`svit-eval compare A B`: two finished evals over the same probes, paired probe by probe."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from svit_data.errors import InputError
from svit_data.train import pope_metrics
from svit_data.train.evaluate import read_predictions


def load_eval(folder: str) -> dict[str, dict[str, dict]]:
    """{config: {probe id: prediction}} of a finished eval (metrics.json present and matching)."""
    root = Path(folder)
    pred_path, metrics_path = root / "predictions.jsonl", root / "metrics.json"
    if not pred_path.exists():
        raise InputError("is not a svit-eval output folder (no predictions.jsonl)", file=folder)
    if not metrics_path.exists():
        raise InputError(
            "is an unfinished eval (no metrics.json): rerun svit-eval run to finish it", file=folder
        )
    try:
        recorded = json.loads(metrics_path.read_text())["predictions"]["sha256"]
    except (ValueError, KeyError, TypeError):
        raise InputError(
            "is not a svit-eval metrics file", file=str(metrics_path), field="predictions"
        ) from None
    if recorded != hashlib.sha256(pred_path.read_bytes()).hexdigest():
        raise InputError(
            "metrics.json was not computed from this predictions.jsonl: rerun svit-eval run", file=folder
        )
    by_config: dict[str, dict[str, dict]] = {}
    for record in read_predictions(pred_path):
        by_config.setdefault(record["config"], {})[record["id"]] = record
    return by_config


def check_same_probes(a: dict, b: dict, name_a: str, name_b: str) -> None:
    """Refuse unless both evals hold the same configs, probe ids, questions and gold answers."""
    for x, y, nx, ny in ((a, b, name_a, name_b), (b, a, name_b, name_a)):
        extra = sorted(set(x) - set(y))
        if extra:
            raise InputError(
                f"evaluated probe config {extra[0]!r}, which {ny} did not", file=nx, field="config"
            )
    for config in sorted(a):
        for x, y, nx, ny in ((a, b, name_a, name_b), (b, a, name_b, name_a)):
            extra = sorted(set(x[config]) - set(y[config]))
            if extra:
                raise InputError(
                    f"has {len(extra)} {config} probes that {ny} lacks (first: {extra[0]!r})",
                    file=nx,
                    record=extra[0],
                    field="id",
                )
        for pid, ra in sorted(a[config].items()):
            rb = b[config][pid]
            for key in ("question", "answer"):
                if ra[key] != rb[key]:
                    raise InputError(
                        f"{config} probe {pid!r} has {key} {ra[key]!r} here and {rb[key]!r} in {name_b}",
                        file=name_a,
                        record=pid,
                        field=key,
                    )


def compare_evals(folder_a: str, folder_b: str, *, seed: int = 0) -> dict:
    """{config: {rule: paired_compare(...)}}: B minus A on each probe config under both answer rules."""
    a, b = load_eval(folder_a), load_eval(folder_b)
    check_same_probes(a, b, folder_a, folder_b)
    result = {}
    for config in sorted(a):
        ids = sorted(a[config])
        gold = [a[config][i]["answer"] for i in ids]
        result[config] = {
            rule: pope_metrics.paired_compare(
                gold,
                [parse(a[config][i]["output"]) for i in ids],
                [parse(b[config][i]["output"]) for i in ids],
                seed=seed,
            )
            for rule, parse in pope_metrics.PARSERS.items()
        }
    return result
