#!/usr/bin/env bash
# Fill .gpu_carry/ on this (CPU) machine with what benchmarks/gpu_check.sh needs on a bare GPU machine:
# wheels of the Python packages its image lacks (for its python3.12, x86-64), the small CLIP, SmolLM2's
# tokenizer and config, and the sample dataset with images. Needs PyPI; about 45 MB, under the 64 MiB
# that travels. Usage: bash benchmarks/gpu_prepare.sh [.gpu_carry]
set -euo pipefail
CARRY=${1:-.gpu_carry}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$CARRY/wheels"
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_24_x86_64 --platform manylinux2014_x86_64 -d "$CARRY/wheels" \
    "datasets==$(version datasets)" "dill==$(version dill)" "multiprocess==$(version multiprocess)" \
    "gguf==$(version gguf)" bitsandbytes
"$PY" benchmarks/gpu_fixtures.py "$CARRY"
du -sh "$CARRY"
