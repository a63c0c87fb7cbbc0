#!/usr/bin/env bash
# Pack the four shipped models from their committed checkpoints, check the committed blobs are
# bit-identical, evaluate int8 against the f32 reference on the committed held-out sets, and
# rewrite the table between the report markers in models/README.md.
#   bash models/report.sh          (from anywhere; builds tools in release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q --release -p tools
T=./target/release/tools
D=models/data
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

declare -A CALIB=([vit-mnist]=$D/mnist_calib_64.npy [digit-reader]=$D/strips_calib_32.npy [char-lm]=$D/kjv_calib_8x128.npy)
for m in vit-mnist digit-reader char-lm; do
    $T convert "models/$m" -o "$OUT/$m.tatn" --calibration "${CALIB[$m]}" >/dev/null
    if ! cmp -s "$OUT/$m.tatn" "models/$m.tatn"; then
        echo "models/$m.tatn differs from a fresh convert of models/$m (re-pack: cp $OUT/$m.tatn models/)" >&2
        exit 1
    fi
    $T inspect "models/$m.tatn" --json > "$OUT/$m.inspect.json"
done
$T eval models/vit-mnist.tatn --reference models/vit-mnist --calibration "${CALIB[vit-mnist]}" \
    --data $D/mnist_test_500.npy --labels $D/mnist_test_500_labels.npy --json > "$OUT/vit-mnist.eval.json"
$T eval models/digit-reader.tatn --reference models/digit-reader --calibration "${CALIB[digit-reader]}" \
    --data $D/strips_test_100.npy --labels $D/strips_test_100_labels.npy --json > "$OUT/digit-reader.eval.json"
$T eval models/char-lm.tatn --reference models/char-lm --calibration "${CALIB[char-lm]}" \
    --text $D/kjv_val_excerpt.txt --json > "$OUT/char-lm.eval.json"
$T simulate models/char-lm.tatn --prompt "And God said, Let there be " --max-new-tokens 60 --json > "$OUT/char-lm.sample.json"

# llama-kjv: packed from the llama2.c export (the HF directory in models/llama-kjv/ holds the same
# weights); the tokenizer sidecar must match too
$T convert models/llama-kjv/model.bin --tokenizer models/llama-kjv/tokenizer.bin --max-positions 256 \
    --calibration $D/llama_calib_8x128.npy --smooth -o "$OUT/llama-kjv.tatn" >/dev/null
for f in llama-kjv.tatn llama-kjv.tatn.tokenizer.bin; do
    if ! cmp -s "$OUT/$f" "models/$f"; then
        echo "models/$f differs from a fresh convert of models/llama-kjv/model.bin (re-pack: cp $OUT/$f models/)" >&2
        exit 1
    fi
done
$T inspect models/llama-kjv.tatn --json > "$OUT/llama-kjv.inspect.json"
$T eval models/llama-kjv.tatn --reference models/llama-kjv/model.bin --data $D/llama_val_16x256.npy \
    --json > "$OUT/llama-kjv.eval.json"
$T simulate models/llama-kjv.tatn --prompt "And God said, Let there be" --max-new-tokens 40 --json > "$OUT/llama-kjv.sample.json"

python3 - "$OUT" models/README.md <<'PY'
import json, sys
out, readme = sys.argv[1], sys.argv[2]
def load(name): return json.load(open(f"{out}/{name}.json"))
rows = []
for m, held in [("vit-mnist", "500 test-split digits"), ("digit-reader", "100 strips of test-split digits"), ("char-lm", "16,384 validation chars (last 10%)"), ("llama-kjv", "16 windows of 256 validation tokens (last 10%)")]:
    i, e = load(f"{m}.inspect"), load(f"{m}.eval")
    if m == "llama-kjv":
        f = f"{e['f32']['loss_nats']:.3f} nats/token, ppl {e['f32']['perplexity']:.2f}"
        q = f"{e['int8']['loss_nats']:.3f} nats/token, ppl {e['int8']['perplexity']:.2f} ({100*(e['int8']['perplexity']/e['f32']['perplexity']-1):+.2f}%)"
        macs = f"{i['llama']['macs_per_token_full_context']:,} / token"
    elif m == "char-lm":
        f = f"{e['f32']['loss_bits']:.3f} bits/char, ppl {e['f32']['perplexity']:.3f}"
        q = f"{e['int8']['loss_bits']:.3f} bits/char, ppl {e['int8']['perplexity']:.3f} ({100*(e['int8']['perplexity']/e['f32']['perplexity']-1):+.2f}%)"
        macs = f"{i['decoder']['macs_per_token_full_context']:,} / token"
    elif m == "digit-reader":
        f = f"whole string {100*e['f32']['exact_match']:.1f}%"
        q = f"whole string {100*e['int8']['exact_match']:.1f}%"
        macs = f"{i['encoder']['macs_per_image']:,} / image + {i['decoder']['macs_per_token_full_context']:,} / token"
    else:
        f = f"accuracy {100*e['f32']['accuracy']:.1f}%"
        q = f"accuracy {100*e['int8']['accuracy']:.1f}%"
        macs = f"{i['encoder']['macs_per_image']:,} / image"
    rows.append(f"| `{m}` | {i['params_int8']:,} | {macs} | {i['flash_bytes']:,} | {i['ram_bytes']['total']:,} | {held} | {f} | {q} | {100*e['top1_agreement']:.1f}% |")
s = load("char-lm.sample")
ls = load("llama-kjv.sample")
first = lambda d: d.get("text", [""])[0] if isinstance(d.get("text"), list) else d.get("text", "")
table = "\n".join([
    "| model | int8 params | MACs | flash (bytes) | RAM (bytes) | held-out set | f32 | int8 | int8/f32 top-1 agreement |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows, "",
    f"char-lm int8 sample (`tools simulate models/char-lm.tatn --prompt \"And God said, Let there be \" --max-new-tokens 60`):",
    "", "```", first(s), "```", "",
    f"llama-kjv int8 sample (`tools simulate models/llama-kjv.tatn --prompt \"And God said, Let there be\" --max-new-tokens 40`; it stops before a BOS, the end of a verse):",
    "", "```", first(ls), "```"])
text = open(readme).read()
b, e = "<!-- report:begin (bash models/report.sh) -->", "<!-- report:end -->"
if b not in text:
    text = text.replace("## Recipe", f"## int8 figures\n\n{b}\n{e}\n\n## Recipe", 1)
pre, rest = text.split(b, 1)
_, post = rest.split(e, 1)
open(readme, "w").write(pre + b + "\n" + table + "\n" + e + post)
print(table)
PY
