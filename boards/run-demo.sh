#!/usr/bin/env bash
# The README's first command: install what is missing, then run the three shipped models
# (models/*.tatn) on an emulated Cortex-M4 (QEMU mps2-an386, STM32F411-class 512K flash /
# 128K RAM), one firmware build per model, printing results and instructions executed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! rustup target list --installed | grep -qx thumbv7em-none-eabihf; then
    rustup target add thumbv7em-none-eabihf
fi
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]]; then
        apt-get update -q && apt-get install -y -q --no-install-recommends qemu-system-arm
    else
        echo "qemu-system-arm is missing; install it with:" >&2
        echo "    sudo apt-get install -y qemu-system-arm" >&2
        exit 1
    fi
fi

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
