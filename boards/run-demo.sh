#!/usr/bin/env bash
# The README's first command: install what is missing, then run the three shipped models
# (models/*.tatn) on an emulated Cortex-M4 (QEMU mps2-an386, STM32F411-class 512K flash /
# 128K RAM), one firmware build per model, printing results and instructions executed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Everything the demo and `cargo test --workspace` need (pinned toolchain + thumb targets, QEMU,
# arm-none-eabi binutils): installed when missing, or a message saying how, and a non-zero exit.
bash boards/setup.sh

run() {
    local model=$1 inputs=$2 count=$3
    echo
    echo "=== $model on Cortex-M4 (QEMU mps2-an386) ==="
    (cd boards/mps2-an386 &&
        TATN_MODEL="../../models/$model.tatn" TATN_INPUTS="../../models/data/$inputs" \
        TATN_MAX_INPUTS="$count" TATN_MAX_NEW="${4:-8}" cargo run --release --quiet)
}
run vit-mnist mnist_test_500.npy 4
run digit-reader strips_test_100.npy 3 5
run char-lm char_lm_prompts.npy 1 32
