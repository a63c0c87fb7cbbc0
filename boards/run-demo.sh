#!/usr/bin/env bash
# The README's first command: install what is missing, then run the four shipped models
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
summaries=()
# The board a model runs on: the Cortex-M4 by default; a model whose memory does not fit it (a
# Llama's KV cache at 512 positions) on the Cortex-M55 (512 KiB RAM).
board=mps2-an386 core=Cortex-M4 elf= flash=524288 ram=131072
use_board() {
    case $1 in
    mps2-an386)
        board=mps2-an386 core=Cortex-M4 flash=524288 ram=131072
        elf=boards/target/thumbv7em-none-eabihf/release/board-mps2-an386
        what="Cortex-M4 (QEMU mps2-an386, STM32F411-class: 512 KiB flash, 128 KiB RAM)" ;;
    mps3-an547)
        board=mps3-an547 core=Cortex-M55 flash=524288 ram=524288
        elf=boards/target/thumbv8m.main-none-eabihf/release/board-mps3-an547
        what="Cortex-M55 (QEMU mps3-an547: 512 KiB ITCM, 512 KiB DTCM)" ;;
    esac
}
use_board mps2-an386

# run MODEL INPUTS COUNT [NEW]: INPUTS is a file in models/data/, or "-" for the model's default
# (a Llama's BOS).
run() {
    local model=$1 inputs=$2 count=$3 new=${4:-8} out
    local env=(TATN_DEMO=1 TATN_MODEL="../../models/$model.tatn" TATN_MAX_INPUTS="$count"
        TATN_MAX_NEW="$new")
    [[ "$inputs" != - ]] && env+=(TATN_INPUTS="../../models/data/$inputs")
    echo
    echo "=== $model on $what ==="
    if ! out=$(cd "boards/$board" && env -u CARGO_TARGET_DIR "${env[@]}" cargo run --release --quiet); then
        printf '%s\n' "$out"
        echo "error: $model failed on the emulated $core (output above)" >&2
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
        line+=$'\n'"    $core: firmware flash ${size% *} of $flash B (the model's blob: ${mflash:-?}); RAM ${size#* } B static"
        line+=" (the model's buffers: ${mram:-?}; most of the rest: the kernel self-check's parameters) + ${stack:-?} B stack high-water, of $ram B"
    else
        line+=$'\n'"    firmware flash/RAM: arm-none-eabi-size not found (apt-get install binutils-arm-none-eabi)"
    fi
    summaries+=("$line")
}
run vit-mnist mnist_test_500.npy 4
run digit-reader strips_test_100.npy 3 5
run char-lm char_lm_prompts.npy 1 32
# Every other model in models/ (the trained Llama): prompts from models/data/<name>_prompts.npy
# if present, else its BOS; on the M4 if it links there, else on the M55.
for blob in models/*.tatn; do
    model=$(basename "$blob" .tatn)
    case $model in vit-mnist | digit-reader | char-lm) continue ;; esac
    inputs=-
    [[ -f "models/data/${model}_prompts.npy" ]] && inputs=${model}_prompts.npy
    use_board mps2-an386
    if ! link=$(cd boards/mps2-an386 && env -u CARGO_TARGET_DIR TATN_DEMO=1 \
        TATN_MODEL="../../models/$model.tatn" cargo build --release --quiet 2>&1); then
        if [[ "$link" == *"will not fit in region"* ]]; then
            use_board mps3-an547
        else
            printf '%s\n' "$link"
            exit 1
        fi
    fi
    run "$model" "$inputs" 1 48
done

echo
echo "=== Summary (times at 100 MHz: instructions counted under QEMU, 1 instruction ≈ 1 cycle) ==="
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
