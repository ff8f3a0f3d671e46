"""Tiny random parts for trainer tests: a CLIP vision tower, a Llama LM and a tokenizer trained here."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from svit_train_helpers import llava_rows, sentence  # noqa: E402

torch.set_num_threads(1)  # tiny models: threads only contend on a 2-core CI machine


@pytest.fixture(scope="session")
def tiny_parts(tmp_path_factory) -> dict[str, str]:
    """Folders for a tiny CLIP tower (+ image processor) and a tiny Llama (+ tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    vision = root / "clip"
    vcfg = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
    CLIPVisionModel(vcfg).save_pretrained(vision)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        vision
    )

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    rng = random.Random(0)
    corpus = [sentence(rng, 12) + " USER: ASSISTANT: A chat between?." for _ in range(300)]
    tok.train_from_iterator(corpus, trainer)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    llm = root / "llama"
    fast.save_pretrained(llm)
    lcfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(lcfg).save_pretrained(llm)
    return {"vision": str(vision), "llm": str(llm)}


@pytest.fixture(scope="session")
def llava_parquet(tmp_path_factory) -> str:
    """A LLaVA-schema parquet file with 24 image samples and 8 text-only samples."""
    from datasets import Dataset, Features, Image, List, Value

    features = Features(
        {
            "id": Value("string"),
            "image_file": Value("string"),
            "image": Image(),
            "conversations": List({"from": Value("string"), "value": Value("string")}),
        }
    )
    path = tmp_path_factory.mktemp("data") / "mix.parquet"
    Dataset.from_list(llava_rows(32, text_only_every=4), features=features).to_parquet(path)
    return str(path)
