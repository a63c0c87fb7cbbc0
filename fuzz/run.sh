#!/usr/bin/env bash
# Run every fuzz target from its committed seeds.
#   fuzz/run.sh            CI mode: a fixed number of runs per target (FUZZ_RUNS, default 20000)
#   fuzz/run.sh 600        each target for 600 seconds (the README's "ran clean" figures)
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
declare -A SEEDS=([blob_parse]=seeds/blob [blob_run]=seeds/blob [checkpoint_import]=seeds/checkpoint [npy_image]=seeds/npy_image [link_frames]=seeds/link)
if [[ $# -ge 1 ]]; then
    limit=(-max_total_time="$1")
else
    limit=(-runs="${FUZZ_RUNS:-20000}")
fi
for t in blob_parse blob_run checkpoint_import npy_image link_frames; do
    mkdir -p "corpus/$t"
    echo "== fuzz $t (${limit[*]})"
    start=$SECONDS
    log=$(mktemp)
    rc=0
    cargo +nightly fuzz run -O "$t" "corpus/$t" "${SEEDS[$t]}" -- "${limit[@]}" -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    grep -E "^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY)|panicked" "$log" || true
    rm -f "$log"
    if [[ $rc -ne 0 ]]; then
        echo "fuzz target $t FAILED (exit $rc); the crashing input is in fuzz/artifacts/$t/"
        exit 1
    fi
    echo "   $t clean in $((SECONDS - start)) s"
done
