"""Train `char-lm`: character-level GPT2LMHeadModel on the King James Bible (Debian bible-kjv).
Text: prepare_data.py (verse texts, one verse per line); train = first 90% of characters,
validation = last 10%. Vocabulary = sorted distinct characters of the whole text, stored as
char-lm/vocab.json ({"id": "char"}); config.json stays a plain HF GPT-2 config (vocab_size only).
Model: n_positions 128, n_embd 96, 3 layers, 4 heads (CTX, D, LAYERS, HEADS below), learned positions, gelu_new,
LN eps 1e-5, tied LM head (wte, lm_head not stored).
Usage: python models/train_char_lm.py [--steps N] [--out DIR]
"""
import argparse
import json
import math
import os
import time

import numpy as np

import common

HERE = os.path.dirname(os.path.abspath(__file__))
CTX, D, LAYERS, HEADS = 128, 96, 3, 4


def load_text():
    with open(os.path.join(HERE, ".cache", "kjv.txt"), encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.int32)
    n_val = len(text) // 10
    return chars, ids[: len(ids) - n_val], ids[len(ids) - n_val:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--out", default=os.path.join(HERE, "char-lm"))
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import optax

    chars, tr, va = load_text()
    V = len(chars)
    cfg = common.gpt2_config(V, CTX, D, LAYERS, HEADS)
    cfg.update({"architectures": ["GPT2LMHeadModel"], "bos_token_id": None, "eos_token_id": None})
    rng = np.random.default_rng(args.seed)
    P = common.init_gpt2(rng, cfg, "transformer.")
    print("vocab", V, "params", common.n_params(P), "train chars", len(tr), "val chars", len(va))
    P = {k: jnp.asarray(v) for k, v in P.items()}

    def loss_fn(P, ids):
        logits = common.gpt2_forward(P, ids[:, :-1], cfg, "transformer.")
        return optax.softmax_cross_entropy_with_integer_labels(logits, ids[:, 1:]).mean()

    sched = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(200, args.steps // 10), args.steps, args.lr * 0.05)
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adamw(sched, b2=0.99, weight_decay=0.1, mask=common.decay_mask(P)))
    st = opt.init(P)

    @jax.jit
    def step(P, st, ids):
        l, g = jax.value_and_grad(loss_fn)(P, ids)
        u, st = opt.update(g, st, P)
        return optax.apply_updates(P, u), st, l

    @jax.jit
    def token_nll(P, ids):
        logits = common.gpt2_forward(P, ids[:, :-1], cfg, "transformer.")
        return optax.softmax_cross_entropy_with_integer_labels(logits, ids[:, 1:])

    def val_loss(P, data, stride=CTX // 2, max_windows=None):
        """Sliding windows of CTX+1 ids; the first window scores all CTX predictions, later ones only
        their last `stride` (each then has >= CTX-stride chars of context). Every char of data
        after the first is predicted exactly once. Mean nats/char."""
        n = len(data)
        starts = list(range(0, n - CTX - 1, stride))
        if max_windows:
            starts = starts[:max_windows]
        tot, cnt = 0.0, 0
        B = 64
        for i in range(0, len(starts), B):
            s = starts[i:i + B]
            batch = np.stack([data[j:j + CTX + 1] for j in s])
            nll = np.asarray(token_nll(P, batch))
            for r, j in enumerate(s):
                part = nll[r] if j == 0 else nll[r, CTX - stride:]
                tot += float(part.sum())
                cnt += part.size
        # (the tail after the last full window is ignored: < CTX chars)
        return tot / cnt, cnt

    t0 = time.time()
    ls = []
    for s in range(args.steps):
        off = rng.integers(0, len(tr) - CTX - 1, size=args.batch)
        batch = np.stack([tr[o:o + CTX + 1] for o in off])
        P, st, l = step(P, st, batch)
        ls.append(l)
        if (s + 1) % args.eval_every == 0 or s + 1 == args.steps:
            vl, _ = val_loss(P, va, max_windows=512)
            print(f"step {s + 1} train {float(np.mean(ls)):.4f} val(first 32k chars) {vl:.4f} nats "
                  f"({time.time() - t0:.0f}s)", flush=True)
            ls = []
    train_s = time.time() - t0
    vl, cnt = val_loss(P, va)
    vl_no, cnt_no = val_loss(P, va, stride=CTX)   # non-overlapping windows (avg context CTX/2)
    print(f"final: val {vl:.4f} nats/char = {vl / math.log(2):.4f} bits/char over {cnt} chars "
          f"(sliding, stride {CTX // 2}); non-overlapping {vl_no:.4f} nats = {vl_no / math.log(2):.4f} bits")

    Pn = {k: np.asarray(v) for k, v in P.items()}
    common.save_checkpoint(args.out, Pn, cfg, generation_config={"bos_token_id": None, "eos_token_id": None})
    with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({str(i): c for i, c in enumerate(chars)}, f, indent=2, ensure_ascii=False)
        f.write("\n")
    # prompts for the Rust tools: two 32-char windows of the validation excerpt
    stoi = {c: i for i, c in enumerate(chars)}
    with open(os.path.join(HERE, "data", "kjv_val_excerpt.txt"), encoding="utf-8") as f:
        ex = f.read()
    prompts = np.array([[stoi[c] for c in ex[o:o + 32]] for o in (23, 4000)], dtype=np.int64)
    np.save(os.path.join(HERE, "data", "char_lm_prompts.npy"), prompts)
    np.save(os.path.join(args.out, "jax_logits_prompts.npy"),
            np.asarray(common.gpt2_forward(P, prompts, cfg, "transformer.")).astype(np.float32))
    # greedy continuation in JAX (recompute), for a sample and for cross-checking the Rust path
    seq = prompts.copy()
    for _ in range(48):
        lg = np.asarray(common.gpt2_forward(P, seq, cfg, "transformer."))
        seq = np.concatenate([seq, lg[:, -1].argmax(-1)[:, None]], axis=1)
    np.save(os.path.join(args.out, "jax_greedy_prompts.npy"), seq.astype(np.int64))
    samples = ["".join(chars[i] for i in row) for row in seq]
    for smp in samples:
        print("sample:", repr(smp))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"params": common.n_params(Pn), "steps": args.steps, "batch": args.batch, "ctx": CTX,
                   "seed": args.seed, "val_chars_scored": cnt,
                   "val_nats_per_char": vl, "val_bits_per_char": vl / math.log(2),
                   "val_nats_per_char_nonoverlap": vl_no, "val_bits_per_char_nonoverlap": vl_no / math.log(2),
                   "greedy_samples": samples, "train_seconds": round(train_s, 1), "jax": jax.__version__},
                  f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
