"""Does the balanced recipe stop a model from defaulting to "yes"? A small, honest A/B on the sample.

The bundled sample's yes/no answers are yes-heavy (svit-80k keeps that share; svit-80k-b balances it
to 0.5). This script trains two tiny LLaVA models from the same initialization for the same steps,
one on each recipe, evaluates both on the three probe configs and prints both metric tables and the
paired comparison (B = svit-80k-b against A = svit-80k).

Tiny means random weights: a small CLIP tower (frozen, as LLaVA keeps it) and a small Llama whose
BPE tokenizer is trained here on the data's text. The vision side learns little, so the yes-ratio of
the answers mostly shows the prior the data taught; read it as that.

    python benchmarks/exp_yes_bias.py --work /tmp/exp_yes_bias    # 5 to 7.5 minutes on 2 busy CPU cores
    python benchmarks/exp_yes_bias.py --work /tmp/exp --size 4000 --hidden 256 --layers 4   # larger

The probes are asked as the training data asks ("Is there a dog in the image?", `--prompt {question}`),
without POPE's "Answer ... single word" suffix the sample never shows.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

PROBES = ("pope-random", "pope-popular", "pope-adversarial")
RECIPES = ("svit-80k", "svit-80k-b")


def build_data(out: Path, size: int) -> None:
    from svit_data.cli import main as recipe

    if (out / "README.md").exists():
        return
    code = recipe(["build", *RECIPES, *PROBES, "--source", "sample", "--out", str(out), "--size", str(size)])
    if code:
        raise SystemExit(f"svit-recipe build failed ({code})")


def texts(data_dir: Path) -> list[str]:
    import datasets

    lines = []
    for name in RECIPES:
        for row in datasets.load_dataset(str(data_dir), name, split="train"):
            lines += [t["value"] for t in row["conversations"]]
    for name in PROBES:
        lines += datasets.load_dataset(str(data_dir), name, split="test")["question"]
    return lines


def tiny_parts(root: Path, corpus: list[str], args: argparse.Namespace) -> tuple[str, str]:
    """A random CLIP tower + image processor and a random Llama + a BPE tokenizer trained on `corpus`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(args.seed)
    vision, llm = root / "clip", root / "llama"
    side = args.image_size
    CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=args.hidden,
            intermediate_size=2 * args.hidden,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=side,
            patch_size=side // 4,
        )
    ).save_pretrained(vision)
    CLIPImageProcessor(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    ).save_pretrained(vision)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    # the Vicuna system prompt starts every sample: weight it so it costs a few tokens, not 100 bytes
    chat = (
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
        "helpful, detailed, and polite answers to the human's questions. USER: <image>\n ASSISTANT:"
    )
    tok.train_from_iterator([*corpus, *[chat] * 200], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(llm)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(fast),
            hidden_size=args.hidden,
            intermediate_size=4 * args.hidden,
            num_hidden_layers=args.layers,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=args.max_length,
            bos_token_id=1,
            eos_token_id=2,
            tie_word_embeddings=False,
        )
    ).save_pretrained(llm)
    return str(vision), str(llm)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work", default="exp_yes_bias", help="folder for data, models, evals (default: %(default)s)"
    )
    parser.add_argument("--size", type=int, default=600, help="samples per recipe (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the tiny LM and tower")
    parser.add_argument("--layers", type=int, default=2, help="layers of the tiny LM (default: %(default)s)")
    parser.add_argument("--vocab", type=int, default=1000, help="BPE vocabulary size (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=64, help="tower input side; 16 patches")
    parser.add_argument(
        "--epochs", type=float, default=3.0, help="passes over each recipe (default: %(default)s)"
    )
    parser.add_argument("--batch", type=int, default=8, help="global batch (default: %(default)s)")
    parser.add_argument(
        "--lr", type=float, default=3e-3, help="peak lr, LM and projector (default: %(default)s)"
    )
    parser.add_argument(
        "--max-length", type=int, default=160, help="tokens per sample (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="one seed for init, order and bootstrap")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads; 1 avoids spin-waiting on a busy machine"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)

    from svit_data.train.config import TrainConfig
    from svit_data.train.eval_cli import main as svit_eval
    from svit_data.train.loop import train
    from svit_data.train.model import build_fresh

    work = Path(args.work).resolve()
    data_dir = work / "svit"
    start = time.time()
    build_data(data_dir, args.size)
    vision, llm = tiny_parts(work / "parts", texts(data_dir), args)
    model, processor = build_fresh(vision, llm, seed=args.seed)
    init = work / "init"
    model.save_pretrained(init)
    processor.save_pretrained(init)
    print(f"data + init: {time.time() - start:.0f}s ({init})")

    for recipe in RECIPES:
        t = time.time()
        summary = train(
            TrainConfig(
                stage="stage2",
                init_from=str(init),
                data=f"svit:{recipe}",
                data_dir=str(data_dir),
                out=str(work / "runs" / recipe),
                lr=args.lr,
                projector_lr=args.lr,
                global_batch=args.batch,
                micro_batch=args.batch,
                epochs=args.epochs,
                max_length=args.max_length,
                seed=args.seed,
                save_every=0,
                num_workers=0,
                log_every=50,
            )
        )
        losses = summary["losses"]
        print(
            f"trained {recipe}: {summary['steps']} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}, {time.time() - t:.0f}s"
        )

    for recipe in RECIPES:
        print(f"\n== {recipe} ==")
        sys.stdout.flush()
        probes = [x for p in PROBES for x in ("--data", f"svit:{p}")]
        code = svit_eval(
            [
                "run",
                str(work / "runs" / recipe),
                "--dir",
                str(data_dir),
                *probes,
                "--out",
                str(work / "evals" / recipe),
            ]
            + [
                "--prompt",
                "{question}",
                "--batch-size",
                "16",
                "--max-new-tokens",
                "12",
                "--seed",
                str(args.seed),
            ]
        )
        if code:
            return code
    print(f"\n== compare: A = {RECIPES[0]}, B = {RECIPES[1]} ==")
    sys.stdout.flush()
    code = svit_eval(["compare", str(work / "evals" / RECIPES[0]), str(work / "evals" / RECIPES[1])])
    print(f"\ntotal {time.time() - start:.0f}s")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
