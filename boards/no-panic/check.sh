#!/usr/bin/env bash
# Panic-freedom of the firmware's model checks and inference, shown at link time (issue 7):
# links boards/no-panic, whose panic handler calls an undefined function, for every core family
# core-attn has kernels for; a build that links has no panic call site left. On failure, lists
# the surviving sites by function (panic-sites.sh) and exits non-zero. Then runs the Cortex-M4
# build under QEMU: it exits 0 only if every embedded model passed its checks and ran. The
# canary build (one deliberate bounds check) must fail to link: the proof is not vacuous.
#   bash boards/no-panic/check.sh [m4|m0|m33|m55 ...]   (default: all four, then the QEMU run)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
cores=("$@")
[ ${#cores[@]} -eq 0 ] && cores=(m4 m0 m33 m55)
status=0
for core in "${cores[@]}"; do
    extra=()
    case $core in
        m4) target=thumbv7em-none-eabihf ;;
        m0) target=thumbv6m-none-eabi ;;
        m33) target=thumbv8m.main-none-eabihf ;;
        m55) target=thumbv8m.main-none-eabihf
             # Its own target dir: other flags than the M33 build of the same triple.
             export CARGO_TARGET_DIR=../target/no-panic-m55
             # Added to the config's rustflags (cargo concatenates the two).
             export CARGO_TARGET_THUMBV8M_MAIN_NONE_EABIHF_RUSTFLAGS="-C target-cpu=cortex-m55" ;;
        *) echo "unknown core $core (m4, m0, m33, m55)"; exit 2 ;;
    esac
    dir=${CARGO_TARGET_DIR:-../target}
    if cargo build --release --quiet --target "$target" 2>/tmp/no-panic-$core.log; then
        echo "no-panic $core ($target): links, no panic call site"
    else
        if grep -q "undefined symbol: inference_path_contains_a_panic" /tmp/no-panic-$core.log; then
            echo "no-panic $core ($target): FAILS, panic call sites left:"
            cargo build --release --quiet --target "$target" --features list-sites &&
                bash ../panic-sites.sh --elf "$dir/$target/release/board-no-panic"
        else
            cat /tmp/no-panic-$core.log
        fi
        status=1
    fi
    unset CARGO_TARGET_DIR CARGO_TARGET_THUMBV8M_MAIN_NONE_EABIHF_RUSTFLAGS
done
if [ "$#" -eq 0 ]; then
    # The canary: one deliberate out-of-bounds index must make the M4 link fail.
    if cargo build --release --quiet --target thumbv7em-none-eabihf --features canary 2>/tmp/no-panic-canary.log; then
        echo "no-panic: the canary build linked: the proof catches nothing"; status=1
    elif grep -q "undefined symbol: inference_path_contains_a_panic" /tmp/no-panic-canary.log; then
        echo "no-panic: canary (one deliberate bounds check) fails to link, as it must"
    else
        cat /tmp/no-panic-canary.log; status=1
    fi
fi
if [ $status -eq 0 ] && [ "$#" -eq 0 ]; then
    timeout 120 cargo run --release --quiet --target thumbv7em-none-eabihf ||
        { echo "no-panic: the M4 build did not exit 0 under QEMU"; status=1; }
    [ $status -eq 0 ] && echo "no-panic m4: ran every embedded model under QEMU"
fi
exit $status
