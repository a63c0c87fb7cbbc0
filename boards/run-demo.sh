#!/usr/bin/env bash
# The README's first command: install what is missing, then run the three shipped models
# (models/*.tatn) on an emulated Cortex-M4 (QEMU mps2-an386, STM32F411-class 512K flash /
# 128K RAM), one firmware build per model, printing results and instructions executed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Everything the demo and `cargo test --workspace` need (pinned toolchain + thumb targets, QEMU,
# arm-none-eabi binutils): installed when missing, or a message saying how, and a non-zero exit.
bash boards/setup.sh

# What a person sees: the firmware is built with TATN_DEMO=1, so next to its machine lines (the
# ones tests/tests/qemu_models.rs compares with the host) it prints the human view
# (board_common::demo): each input drawn from the int8 image the device ran on, the true answer
# from the test set (models/data/*_labels.npy), the device's answer with ✓/✗, the language
# model's prompt and generated text (its vocabulary is compiled into the firmware), and times at
# 100 MHz. The machine lines (kernel self-check, result/perf/clock/stack lines) are hidden unless
# VERBOSE=1 or --verbose. At the end: one summary line per model with the firmware's flash and
# RAM (arm-none-eabi-size on the ELF, the stack high-water the firmware painted).
verbose=${VERBOSE:-0}
for arg in "$@"; do
    case $arg in
    -v | --verbose) verbose=1 ;;
    *)
        echo "usage: [VERBOSE=1] bash boards/run-demo.sh [--verbose]" >&2
        exit 2
        ;;
    esac
done
machine='^(clock: |model [^ ]+ kind |result |perf |selftest|done: |stack: )'
elf=boards/target/thumbv7em-none-eabihf/release/board-mps2-an386
summaries=()

run() {
    local model=$1 inputs=$2 count=$3 new=${4:-8} out
    echo
    echo "=== $model on Cortex-M4 (QEMU mps2-an386, STM32F411-class: 512 KiB flash, 128 KiB RAM) ==="
    if ! out=$(cd boards/mps2-an386 && env -u CARGO_TARGET_DIR TATN_DEMO=1 \
        TATN_MODEL="../../models/$model.tatn" TATN_INPUTS="../../models/data/$inputs" \
        TATN_MAX_INPUTS="$count" TATN_MAX_NEW="$new" cargo run --release --quiet); then
        printf '%s\n' "$out"
        echo "error: $model failed on the emulated Cortex-M4 (output above)" >&2
        exit 1
    fi
    if [[ "$verbose" != 0 ]]; then
        printf '%s\n' "$out"
    else
        printf '%s\n' "$out" | grep -Ev "$machine|^summary: " || true
    fi
    local line size stack model_line
    line=$(printf '%s\n' "$out" | sed -n 's/^summary: //p')
    stack=$(printf '%s\n' "$out" | sed -n 's/^stack: \([0-9]*\) of .*/\1/p')
    model_line=$(printf '%s\n' "$out" | grep -E "^model $model kind " || true)
    line=${line/ /: }
    if [[ -n "$model_line" ]]; then
        # model NAME kind KIND flash BYTES ram BYTES: the blob and the buffers it needs.
        read -r _ _ _ _ _ mflash _ mram <<<"$model_line"
    fi
    if command -v arm-none-eabi-size >/dev/null 2>&1; then
        # Berkeley format: text data bss. Flash = text + data (its initial values), RAM = data + bss.
        size=$(arm-none-eabi-size "$elf" | awk 'NR == 2 { print $1 + $2, $2 + $3 }')
        line+=$'\n'"    firmware flash ${size% *} of 524288 B (the model's blob: ${mflash:-?}); RAM ${size#* } B static"
        line+=" (the model's buffers: ${mram:-?}; most of the rest: the kernel self-check's parameters) + ${stack:-?} B stack high-water, of 131072 B"
    else
        line+=$'\n'"    firmware flash/RAM: arm-none-eabi-size not found (apt-get install binutils-arm-none-eabi)"
    fi
    summaries+=("$line")
}
run vit-mnist mnist_test_500.npy 4
run digit-reader strips_test_100.npy 3 5
run char-lm char_lm_prompts.npy 1 32

echo
echo "=== Summary (Cortex-M4; times at 100 MHz: instructions counted under QEMU, 1 instruction ≈ 1 cycle) ==="
right=0 shown=0
for s in "${summaries[@]}"; do
    printf '%s\n' "$s"
    if [[ $s =~ ([0-9]+)/([0-9]+)\ right ]]; then
        right=$((right + BASH_REMATCH[1])) shown=$((shown + BASH_REMATCH[2]))
    fi
done
if ((shown > 0)); then
    echo "accuracy on the images shown: $right/$shown ($((100 * right / shown))%)"
fi
