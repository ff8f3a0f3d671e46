"""lmms-eval interop, tested without lmms-eval (it cannot join this venv without breaking the torch pin).

Two halves: (1) the task folder: its YAML parses with `!function` resolved from utils.py as lmms-eval
does, the config loads through `datasets` as the YAML names it, and utils.py scores docs to the numbers
pope_metrics gives; (2) run folders load through the exact calls lmms-eval's `llava_hf` makes.
"""

from __future__ import annotations

import importlib.util

import pytest
import yaml
from eval_helpers import probe_rows, write_folder

from svit_data.train import pope_metrics
from svit_data.train.config import TrainConfig
from svit_data.train.eval_cli import main
from svit_data.train.loop import train


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    return write_folder(
        tmp_path_factory.mktemp("probes") / "svit", {"pope-adversarial": probe_rows("adversarial")}
    )


def load_task(path):
    """The YAML as lmms-eval reads it: `!function utils.f` becomes utils.py's f."""
    spec = importlib.util.spec_from_file_location("utils", path.parent / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)

    class Loader(yaml.SafeLoader):
        pass

    def function(loader, node):
        module, name = loader.construct_scalar(node).split(".")
        assert module == "utils"
        return getattr(utils, name)

    Loader.add_constructor("!function", function)
    return yaml.load(path.read_text(), Loader=Loader)


def test_task_folder_parses_loads_and_scores(probes, tmp_path, capsys):
    import datasets

    out = tmp_path / "tasks"
    assert main(["lmms-eval-task", "pope-adversarial", "--dir", str(probes), "--out", str(out)]) == 0
    assert "task svit_pope_adversarial" in capsys.readouterr().out
    task = load_task(out / "svit_pope_adversarial.yaml")
    assert task["task"] == "svit_pope_adversarial" and task["output_type"] == "generate_until"
    docs = datasets.load_dataset(task["dataset_path"], task["dataset_name"], split=task["test_split"])
    docs = [docs[i] for i in range(6)]
    assert task["doc_to_visual"](docs[0])[0].mode == "RGB"
    assert task["doc_to_text"](docs[0]).endswith("?\nAnswer the question using a single word or phrase.")
    outputs = ["Yes", "no.", "Yes, there is.", "There is no dog.", "maybe", "No"]
    per_doc = [task["process_results"](doc, [text]) for doc, text in zip(docs, outputs, strict=True)]
    gold = [doc["answer"] for doc in docs]
    for entry in task["metric_list"]:
        rule, metric = entry["metric"].split("_", 1)
        value = entry["aggregation"]([r[entry["metric"]] for r in per_doc])
        parsed = [pope_metrics.PARSERS[rule](t) for t in outputs]
        assert value == pytest.approx(pope_metrics.metrics(gold, parsed)[metric]["value"]), entry["metric"]
    assert len(task["metric_list"]) == 10


def test_task_for_a_config_that_is_not_there_exits_2(probes, tmp_path, capsys):
    out = tmp_path / "tasks"
    assert main(["lmms-eval-task", "pope-popular", "--dir", str(probes), "--out", str(out)]) == 2
    assert "pope-popular" in capsys.readouterr().err.splitlines()[-1]
    assert not out.exists()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_parts, llava_parquet):
    """A stage-1 run and a stage-2 LoRA run (merged save), as svit-train writes them."""
    tmp = tmp_path_factory.mktemp("runs")
    base = dict(global_batch=8, micro_batch=4, num_workers=0, save_every=0, warmup_ratio=0.0, seed=0)
    train(TrainConfig(out=str(tmp / "s1"), stage="stage1", data=llava_parquet, **tiny_parts, **base))
    lora = TrainConfig(
        out=str(tmp / "s2"),
        stage="stage2",
        init_from=str(tmp / "s1"),
        data=llava_parquet,
        lora=True,
        lora_r=4,
        lora_alpha=8,
        max_steps=1,
        **base,
    )
    train(lora)
    return {"stage1": str(tmp / "s1"), "lora": str(tmp / "s2")}


@pytest.mark.parametrize("kind", ["stage1", "lora"])
def test_run_folders_load_as_llava_hf_loads_them(runs, kind):
    """The calls of lmms-eval's llava_hf (models/simple/llava_hf.py), in its order, one image doc."""
    import io

    import torch
    from PIL import Image
    from svit_train_helpers import make_image
    from transformers import AutoConfig, AutoProcessor, LlavaForConditionalGeneration

    pretrained = runs[kind]
    assert AutoConfig.from_pretrained(pretrained).model_type == "llava"
    model = LlavaForConditionalGeneration.from_pretrained(pretrained, revision="main", torch_dtype="auto")
    processor = AutoProcessor.from_pretrained(pretrained, revision="main")
    processor.tokenizer.padding_side = "left"
    tokenizer = processor.tokenizer
    assert tokenizer.chat_template  # saved with the run: no fallback to lmms-eval's Vicuna template
    context = "<image>\nIs there a dog in the image?\nAnswer the question using a single word or phrase."
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": context}], tokenize=False, add_generation_prompt=True
    )
    assert text.rstrip().endswith("ASSISTANT:")
    image = Image.open(io.BytesIO(make_image(1))).convert("RGB")
    inputs = processor(images=[image], text=text, return_tensors="pt").to("cpu", model.dtype)
    image_tokens = int((inputs["input_ids"] == model.config.image_token_index).sum())
    assert image_tokens == model.config.image_seq_length
    cont = model.generate(
        **inputs,
        do_sample=False,
        temperature=None,
        top_p=None,
        num_beams=1,
        max_new_tokens=4,
        use_cache=True,
        pad_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    assert cont.shape[1] > inputs["input_ids"].shape[1]
    assert isinstance(
        tokenizer.batch_decode(cont[:, inputs["input_ids"].shape[-1] :], skip_special_tokens=True)[0], str
    )
    assert model.dtype == torch.float32
