#!/usr/bin/env bash
# List the panic call sites left in the linked Cortex-M4 firmware (bounds, slice-range and
# division checks the compiler could not discharge), by calling function. Part of issue 7's
# panic-freedom evidence: every site in core_attn is preceded by a validation that a blob passing
# `Blob::parse` (and the boot-time buffer check) satisfies; the fuzz target `blob_run` runs
# validated blobs and has never reached one.
#   bash boards/panic-sites.sh [BOARD]   (default mps2-an386; builds boards/BOARD in release)
#   bash boards/panic-sites.sh --elf FILE (an ELF built elsewhere, e.g. by no-panic/check.sh)
#   WHERE=1 bash boards/panic-sites.sh ...  also lists each site by source line (inlining resolved)
set -euo pipefail
if [ "${1:-}" = --elf ]; then
    elf=$2
else
    board=${1:-mps2-an386}
    cd "$(dirname "${BASH_SOURCE[0]}")/$board"
    # allow-panic: the QEMU boards deny panics at link time (deny-panic); list them instead.
    cargo build --release --quiet --features board-common/allow-panic
    target=$(sed -n 's/^target = "\(.*\)"/\1/p' .cargo/config.toml | head -1)
    elf=../target/$target/release/board-$board
fi
arm-none-eabi-objdump -d -C --no-show-raw-insn "$elf" | python3 -c '
import collections, re, subprocess, sys
elf = sys.argv[1]
where = len(sys.argv) > 2
cur = None
calls = collections.Counter()
sites = []
pan = re.compile(r"<(core::panicking::[^>+]*|core::slice::[^>+]*fail[^>+]*|core::option::unwrap_failed|core::result::unwrap_failed)")
for line in sys.stdin:
    m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
    if m:
        cur = m.group(1)
        continue
    if cur and not cur.startswith("core::") and re.search(r"\tb(l|\.w)?\t", line) and pan.search(line):
        kind = pan.search(line).group(1).split("::")[-1]
        calls[(cur, kind)] += 1
        sites.append((line.split(":")[0].strip(), kind))
total = sum(calls.values())
print(f"{total} panic call sites outside core (calling function: kind x count)")
for (f, p), n in sorted(calls.items()):
    print(f"{n:4}  {p:28} {f}")
if where and sites:
    # The innermost source line outside the standard library of each site (inlining resolved).
    out = subprocess.run(["arm-none-eabi-addr2line", "-e", elf, "-i", "-f", "-C", "-a"]
                         + [a for a, _ in sites], capture_output=True, text=True).stdout
    frames = {}
    lines = out.splitlines()
    # After each address, lines alternate function / file:line, innermost first.
    cur = None
    buf = []
    for l in lines + ["0x0"]:
        if l.startswith("0x"):
            if cur is not None:
                frames[cur] = [(buf[k], buf[k + 1]) for k in range(0, len(buf) - 1, 2)]
            cur = int(l, 16)
            buf = []
        else:
            buf.append(l)
    here = collections.Counter()
    for a, kind in sites:
        fr = frames.get(int(a, 16), [])
        loc = next(((fn, fl) for fn, fl in fr if not fl.startswith("/rustc/")), (fr[0][0] if fr else "?", "?"))
        here[(re.sub(r".*?/(crates|boards)/", r"\1/", loc[1].split(" ")[0]), loc[0], kind)] += 1
    print("by source line (innermost frame outside core):")
    for (fl, fn, kind), n in sorted(here.items()):
        print(f"{n:4}  {kind:24} {fl}  {fn}")
' "$elf" ${WHERE:+where}
