"""An OpenAI-compatible server on 127.0.0.1 wrapping SmolLM2-135M (GGUF, transformers generate).

Usage: ``python tests/builders/smollm_server.py GGUF_PATH [--hard-timeout S]``; prints its base URL.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_openai import FakeOpenAI  # noqa: E402


def load(gguf: Path):
    import torch
    import transformers

    torch.set_num_threads(2)
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.eval()

    def answer(body: dict) -> str:
        inputs = tokenizer.apply_chat_template(
            body["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=int(body.get("max_tokens") or 64), do_sample=False)
        return tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("gguf", type=Path, help="path of the .gguf file")
    parser.add_argument("--hard-timeout", type=float, default=300, help="stop after this many seconds")
    args = parser.parse_args()
    fake = FakeOpenAI(load(args.gguf))
    with fake.serve(hard_timeout=args.hard_timeout) as url:
        print(url, flush=True)
        deadline = time.monotonic() + args.hard_timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
