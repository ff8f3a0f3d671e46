"""svit-eval run / compare end to end on a tiny random LLaVA on CPU: answers, resume, metrics, errors."""

from __future__ import annotations

import hashlib
import json

import pytest
from eval_helpers import probe_rows, write_folder
from svit_train_helpers import llava_rows

from svit_data.train import pope_metrics
from svit_data.train.eval_cli import main


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    bad_image = probe_rows("random", images=1, per_image=1)
    bad_image[1].update(
        image={"bytes": b"not an image", "path": "broken.png"}, image_file="broken.png", image_id=7
    )
    no_answer = [{k: v for k, v in r.items() if k != "answer"} for r in probe_rows("random", 1, 1)]
    training = [{k: v for k, v in r.items() if k != "image"} for r in llava_rows(2)]
    return write_folder(
        tmp_path_factory.mktemp("probes") / "svit",
        {
            "pope-random": probe_rows("random"),
            "pope-adversarial": probe_rows("adversarial"),
            "bad-image": bad_image,
            "no-answer": no_answer,
            "svit-80k": training,
        },
    )


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory, tiny_parts):
    """Any LLaVA folder (model + processor), here a freshly assembled one."""
    from svit_data.train.model import build_fresh

    model, processor = build_fresh(tiny_parts["vision"], tiny_parts["llm"], seed=0)
    folder = tmp_path_factory.mktemp("llava") / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def run(model, probes, out, *extra):
    args = ["run", model, "--dir", str(probes), "--data", "svit:pope-random"]
    extra = extra if "--max-new-tokens" in extra else (*extra, "--max-new-tokens", "6")
    return main([*args, "--data", "svit:pope-adversarial", "--out", str(out), *extra])


def predictions(out) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def test_run_writes_predictions_metrics_and_table(tiny_llava, probes, tmp_path, capsys):
    out = tmp_path / "eval"
    assert run(tiny_llava, probes, out, "--batch-size", "5") == 0
    preds = predictions(out)
    assert len(preds) == 48 and {p["config"] for p in preds} == {"pope-random", "pope-adversarial"}
    metrics = json.loads((out / "metrics.json").read_text())
    digest = hashlib.sha256((out / "predictions.jsonl").read_bytes()).hexdigest()
    assert metrics["predictions"] == {"file": "predictions.jsonl", "count": 48, "sha256": digest}
    random = [p for p in preds if p["config"] == "pope-random"]
    expected = pope_metrics.metrics(
        [p["answer"] for p in random], [pope_metrics.parse_pope(p["output"]) for p in random]
    )
    assert metrics["configs"]["pope-random"]["rules"]["pope"] == expected
    assert metrics["configs"]["pope-adversarial"]["sampler"] == "adversarial"
    table = capsys.readouterr().out
    assert "pope-adversarial" in table and "strict" in table and "yes_ratio" in table
    assert json.loads((out / "eval_config.json").read_text())["batch_size"] == 5


def test_batch_size_changes_no_answer(tiny_llava, probes, tmp_path):
    assert run(tiny_llava, probes, tmp_path / "b1", "--batch-size", "1", "--limit", "7") == 0
    assert run(tiny_llava, probes, tmp_path / "b7", "--batch-size", "7", "--limit", "7") == 0
    one = {p["id"]: p["output"] for p in predictions(tmp_path / "b1")}
    seven = {p["id"]: p["output"] for p in predictions(tmp_path / "b7")}
    assert one == seven and len(one) == 14


def test_killed_run_resumes_asking_only_what_is_missing(tiny_llava, probes, tmp_path, monkeypatch):
    from svit_data.train import generate

    out = tmp_path / "eval"
    assert run(tiny_llava, probes, out, "--limit", "5") == 0
    first = predictions(out)
    with (out / "predictions.jsonl").open("a") as f:
        f.write('{"config": "pope-random", "id": "rand')  # a kill in the middle of a line
    asked = []
    real = generate.answer_batch

    def counting(model, processor, questions, images=None, **kw):
        asked.extend(questions)
        return real(model, processor, questions, images, **kw)

    monkeypatch.setattr(generate, "answer_batch", counting)
    assert run(tiny_llava, probes, out) == 0
    assert len(asked) == 48 - 10
    preds = predictions(out)
    assert preds[:10] == first and len({(p["config"], p["id"]) for p in preds}) == 48
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["predictions"]["count"] == 48
    asked.clear()
    assert run(tiny_llava, probes, out) == 0 and asked == []  # finished: nothing to ask


def test_a_resumed_run_must_match_the_settings(tiny_llava, probes, tmp_path, capsys):
    out = tmp_path / "eval"
    assert run(tiny_llava, probes, out, "--limit", "2") == 0
    assert run(tiny_llava, probes, out, "--limit", "2", "--max-new-tokens", "5") == 2
    assert "another max_new_tokens" in capsys.readouterr().err


def test_compare_pairs_the_probes_and_gives_a_verdict(tiny_llava, probes, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(tiny_llava, probes, a, "--limit", "6") == 0
    assert run(tiny_llava, probes, b, "--limit", "6", "--batch-size", "3") == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp.json")]) == 0
    text = capsys.readouterr().out
    assert "B's accuracy is not clearly different from A's (+0.00" in text  # the same model twice
    result = json.loads((tmp_path / "cmp.json").read_text())["configs"]
    assert result["pope-random"]["pope"]["mcnemar"]["p_value"] == 1.0
    c = tmp_path / "c"
    assert run(tiny_llava, probes, c, "--limit", "4") == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(c)]) == 2
    err = capsys.readouterr().err
    assert "has 2 pope-adversarial probes that" in err and "field 'id'" in err
    assert not (tmp_path / "cmp2.json").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("svit:svit-80k", "has no 'question' column, so it is not a probe config"),
        ("svit:no-answer", "field 'answer'"),
        ("svit:bad-image", "record random/100/1: field 'image': the image does not decode"),
        ("svit:pope-nothing", "cannot load probe data 'svit:pope-nothing'"),
    ],
)
def test_bad_probe_data_exits_2_and_writes_nothing(tiny_llava, probes, tmp_path, capsys, data, message):
    out = tmp_path / "eval"
    assert main(["run", tiny_llava, "--dir", str(probes), "--data", data, "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()[-1]  # datasets may print progress before it
    assert err.startswith("svit-eval: error: ") and message in err
    assert not out.exists()


def test_a_model_that_is_not_llava_exits_2(tiny_parts, probes, tmp_path, capsys):
    out = tmp_path / "eval"
    assert (
        main(
            ["run", tiny_parts["llm"], "--dir", str(probes), "--data", "svit:pope-random", "--out", str(out)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "needs a LLaVA model" in err and "'llama'" in err and tiny_parts["llm"] in err
    assert not out.exists()


def test_run_on_the_real_probe_builder_output(tiny_llava, tmp_path, capsys):
    """The probe configs as `svit-recipe build` writes them from the bundled sample."""
    from svit_data.cli import main as recipe

    folder = tmp_path / "svit"
    assert recipe(["build", "pope-adversarial", "--source", "sample", "--out", str(folder), "--quiet"]) == 0
    out = tmp_path / "eval"
    args = ["run", tiny_llava, "--dir", str(folder), "--data", "svit:pope-adversarial", "--out", str(out)]
    assert main([*args, "--limit", "6", "--max-new-tokens", "4"]) == 0
    preds = predictions(out)
    assert len(preds) == 6 and {p["answer"] for p in preds} == {"yes", "no"}
    assert all(p["sampler"] == "adversarial" and p["question"].startswith("Is there ") for p in preds)
    assert (
        json.loads((out / "metrics.json").read_text())["configs"]["pope-adversarial"]["rules"]["pope"]["n"]
        == 6
    )
