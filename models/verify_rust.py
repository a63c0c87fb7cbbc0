"""Cross-check the saved checkpoints against the workspace's Rust f32 reference
(`cargo run -q -p tools -- simulate ...`, run from the repository root). Compares with the
JAX outputs each trainer saved next to its checkpoint. Exit status 1 on any mismatch.
Usage (from the repository root): models/.venv/bin/python models/verify_rust.py [--bin PATH]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

import common

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def simulate(cmd, model, inp, extra=()):
    out = subprocess.run(cmd + ["simulate", os.path.join(HERE, model), "--input", inp, "--json", *extra],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", help="prebuilt tools binary (default: cargo run -q -p tools --)")
    args = ap.parse_args()
    cmd = [args.bin] if args.bin else ["cargo", "run", "-q", "-p", "tools", "--"]
    ok = True

    # vit-mnist: 500 committed test images
    r = simulate(cmd, "vit-mnist", os.path.join(HERE, "data", "mnist_test_500.npy"))
    j = np.load(os.path.join(HERE, "vit-mnist", "jax_logits_test_500.npy"))
    y = np.load(os.path.join(HERE, "data", "mnist_test_500_labels.npy"))
    l, t = np.array(r["logits"]), np.array(r["top1"])
    d = float(np.abs(l - j).max())
    good = bool((t == j.argmax(1)).all()) and d < 1e-3
    ok &= good
    print(f"vit-mnist: 500 images, top1 equal to JAX: {bool((t == j.argmax(1)).all())}, "
          f"max |logit diff| {d:.2e}, Rust f32 accuracy {float((t == y).mean()):.4f} -> {'ok' if good else 'MISMATCH'}")

    # digit-reader: 100 committed held-out strips, greedy with eos -> pad
    r = simulate(cmd, "digit-reader", os.path.join(HERE, "data", "strips_test_100.npy"),
                 ["--max-new-tokens", str(common.MAX_DIGITS + 1)])
    g = np.load(os.path.join(HERE, "digit-reader", "jax_greedy_strips_test_100.npy"))
    ids = np.load(os.path.join(HERE, "data", "strips_test_100_ids.npy"))
    gen = r["generated"]
    same, correct = 0, 0
    for row, jrow, t in zip(gen, g, ids):
        row = np.array(row)
        L = int(np.argmax(t == common.EOS))
        # JAX greedy does not stop at eos; compare up to (and including) the first eos
        je = list(jrow[1:])
        jstop = je[: je.index(common.EOS) + 1] if common.EOS in je else je
        re_ = list(row[1:])
        rstop = re_[: re_.index(common.EOS) + 1] if common.EOS in re_ else re_
        same += jstop == rstop
        correct += rstop == list(t[1:L + 1])
    # teacher-forced logits over the Rust-generated sequences, recomputed in JAX from the checkpoint
    import jax.numpy as jnp
    P, cfg = common.load_checkpoint(os.path.join(HERE, "digit-reader"))
    x = np.load(os.path.join(HERE, "data", "strips_test_100.npy"))
    seq = np.array(gen, dtype=np.int64)
    enc = common.vit_encode(P, jnp.asarray(x), cfg["encoder"], "encoder.")
    jl = np.asarray(common.gpt2_forward(P, jnp.asarray(seq), cfg["decoder"], "decoder.transformer.", enc=enc))
    d = float(np.abs(np.array(r["logits"]) - jl).max())
    good = same == len(gen) and d < 1e-3
    ok &= good
    print(f"digit-reader: 100 strips, greedy strings equal to JAX: {same}/100, max |logit diff| {d:.2e}, "
          f"Rust f32 whole-string accuracy {correct}/100 -> {'ok' if good else 'MISMATCH'}")

    if not os.path.isfile(os.path.join(HERE, "char-lm", "model.safetensors")):
        print("char-lm: no checkpoint yet, skipped")
        sys.exit(0 if ok else 1)
    # char-lm: 2 prompts of 32 chars, 48 greedy chars, prompt logits
    r = simulate(cmd, "char-lm", os.path.join(HERE, "data", "char_lm_prompts.npy"), ["--max-new-tokens", "48"])
    g = np.load(os.path.join(HERE, "char-lm", "jax_greedy_prompts.npy"))
    j = np.load(os.path.join(HERE, "char-lm", "jax_logits_prompts.npy"))
    l = np.array(r["logits"])[:, : j.shape[1]]
    d = float(np.abs(l - j).max())
    eq = np.array_equal(np.array(r["generated"]), g)
    good = eq and d < 1e-3
    ok &= good
    print(f"char-lm: 2 prompts, greedy 48 chars equal to JAX: {eq}, max |prompt logit diff| {d:.2e} "
          f"-> {'ok' if good else 'MISMATCH'}")

    # llama-kjv: both exports (llama2.c .bin, HF dir) through both importers, vs JAX; greedy text
    # of the held-out verse prompts (run.c's stop rule: before a BOS) vs JAX's greedy ids
    if os.path.isfile(os.path.join(HERE, "llama-kjv", "model.bin")):
        pid = os.path.join(HERE, "data", "llama_prompt_ids.npy")
        j = np.load(os.path.join(HERE, "llama-kjv", "jax_logits_prompt_ids.npy"))
        lb = np.array(simulate(cmd, "llama-kjv/model.bin", pid, ["--max-new-tokens", "0"])["logits"])
        lh = np.array(simulate(cmd, "llama-kjv", pid, ["--max-new-tokens", "0"])["logits"])
        d_bh, d_bj, d_hj = (float(np.abs(a - b).max()) for a, b in ((lb, lh), (lb, j), (lh, j)))
        with open(os.path.join(HERE, "llama-kjv", "jax_greedy_prompts.json"), encoding="utf-8") as f:
            jg = json.load(f)
        same = 0
        for p, g in zip(jg["prompts"], jg["greedy"]):
            out = subprocess.run(cmd + ["simulate", os.path.join(HERE, "llama-kjv", "model.bin"), "--prompt", p,
                                        "--max-new-tokens", "48", "--json"],
                                 cwd=ROOT, check=True, capture_output=True, text=True).stdout
            same += json.loads(out)["generated"][0] == g
        good = max(d_bh, d_bj, d_hj) < 1e-4 and same == len(jg["greedy"])
        ok &= good
        print(f"llama-kjv: max |logit diff| .bin vs HF {d_bh:.2e}, .bin vs JAX {d_bj:.2e}, HF vs JAX {d_hj:.2e}; "
              f"greedy (<= 48 tokens) equal to JAX on {same}/{len(jg['greedy'])} prompts "
              f"-> {'ok' if good else 'MISMATCH'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
