"""`svit-train` under torchrun on CPU with FSDP2 over gloo: for tests only.

The CLI refuses --fsdp without CUDA (a user on CPU gains nothing from sharding). This worker lifts exactly
that check so the FSDP2 code paths (sharding, checkpointing, saving, resuming, merging) run on CPU.
"""

from __future__ import annotations

import sys

from svit_data.train import distributed
from svit_data.train.cli import main
from svit_data.train.quantize import check_support


def check_without_the_cuda_requirement(config) -> None:
    check_support(config, cuda=False)


if __name__ == "__main__":
    distributed.check_hardware = check_without_the_cuda_requirement
    sys.exit(main(sys.argv[1:]))
