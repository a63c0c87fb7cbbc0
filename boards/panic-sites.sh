#!/usr/bin/env bash
# List the panic call sites left in the linked Cortex-M4 firmware (bounds, slice-range and
# division checks the compiler could not discharge), by calling function. Part of issue 7's
# panic-freedom evidence: every site in core_attn is preceded by a validation that a blob passing
# `Blob::parse` (and the boot-time buffer check) satisfies; the fuzz target `blob_run` runs
# validated blobs and has never reached one.
#   bash boards/panic-sites.sh [BOARD]   (default mps2-an386; builds boards/BOARD in release)
set -euo pipefail
board=${1:-mps2-an386}
cd "$(dirname "${BASH_SOURCE[0]}")/$board"
cargo build --release --quiet
target=$(sed -n 's/^target = "\(.*\)"/\1/p' .cargo/config.toml | head -1)
elf=../target/$target/release/board-$board
arm-none-eabi-objdump -d -C --no-show-raw-insn "$elf" | python3 -c '
import collections, re, sys
cur = None
calls = collections.Counter()
pan = re.compile(r"<(core::panicking::[^>+]*|core::slice::[^>+]*fail[^>+]*|core::option::unwrap_failed|core::result::unwrap_failed)")
for line in sys.stdin:
    m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
    if m:
        cur = m.group(1)
        continue
    if cur and not cur.startswith("core::") and re.search(r"\tb(l|\.w)?\t", line) and pan.search(line):
        calls[(cur, pan.search(line).group(1).split("::")[-1])] += 1
total = sum(calls.values())
print(f"{total} panic call sites outside core (calling function: kind x count)")
for (f, p), n in sorted(calls.items()):
    print(f"{n:4}  {p:28} {f}")
'
