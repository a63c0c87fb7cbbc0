"""Train `digit-reader`: VisionEncoderDecoderModel (ViT encoder + GPT-2 decoder with cross-attention
and SINUSOIDAL positions, config extension "position_embedding_type": "sinusoidal", no wpe tensor).

Input: a 28 x 112 strip holding 1-4 MNIST digits left-aligned in 28-px slots (unused slots blank),
normalized (v/255 - 0.5)/0.5. Output: start(0) d1 .. dL eos(2); digit d is token d + 3; pad 1.
Encoder: ViT patch 7 (4 x 16 = 64 patches + CLS = 65 tokens), width 64, 4 heads, 2 pre-norm layers,
MLP 128, no pooler. Decoder: GPT-2 width 64, 2 layers, 4 heads, MLP 256, gelu_new, tied LM head.
Train strips only from train-split digits (random affine augmentation per digit); held-out strips
(prepare_data.py, seed common.STRIPS_TEST_SEED) only from test-split digits, never augmented.
Usage: python models/train_digit_reader.py [--steps N] [--out DIR]
"""
import argparse
import json
import os
import time

import numpy as np

import common

HERE = os.path.dirname(os.path.abspath(__file__))
T = common.MAX_DIGITS + 2  # start + 4 digits + eos


def build_config():
    enc = common.vit_config(64, 2, 4, 128, [28, 28 * common.MAX_DIGITS], 7)
    dec = common.gpt2_config(common.DIGIT_VOCAB, 16, 64, 2, 4)
    dec.update({"add_cross_attention": True, "is_decoder": True, "position_embedding_type": "sinusoidal",
                "bos_token_id": common.START, "decoder_start_token_id": common.START,
                "eos_token_id": common.EOS, "pad_token_id": common.PAD})
    return {"architectures": ["VisionEncoderDecoderModel"], "model_type": "vision-encoder-decoder",
            "is_encoder_decoder": True, "tie_word_embeddings": False,
            "decoder_start_token_id": common.START, "eos_token_id": common.EOS, "pad_token_id": common.PAD,
            "encoder": enc, "decoder": dec}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--out", default=os.path.join(HERE, "digit-reader"))
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import optax

    d = np.load(os.path.join(HERE, ".cache", "mnist.npz"))
    imgs, labels, tr = d["images"], d["labels"], d["train_idx"]
    te = np.load(os.path.join(HERE, ".cache", "strips_test.npz"))
    te_x = common.normalize(te["images"])[:, None]
    te_ids = te["ids"]

    cfg = build_config()
    ecfg, dcfg = cfg["encoder"], cfg["decoder"]
    rng = np.random.default_rng(args.seed)
    P = common.init_vit(rng, ecfg, "encoder.")
    P.update(common.init_gpt2(rng, dcfg, "decoder.transformer.", cross=True))
    print("params", common.n_params(P))
    P = {k: jnp.asarray(v) for k, v in P.items()}

    def forward(P, x, ids):
        enc = common.vit_encode(P, x, ecfg, "encoder.")
        return common.gpt2_forward(P, ids, dcfg, "decoder.transformer.", enc=enc)

    def loss_fn(P, x, ids):
        logits = forward(P, x, ids[:, :-1])
        tgt = ids[:, 1:]
        m = (tgt != common.PAD).astype(jnp.float32)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, tgt)
        return (ce * m).sum() / m.sum()

    sched = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(300, args.steps // 10), args.steps, args.lr * 0.01)
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adamw(sched, weight_decay=0.05, mask=common.decay_mask(P)))
    st = opt.init(P)

    @jax.jit
    def step(P, st, x, ids):
        l, g = jax.value_and_grad(loss_fn)(P, x, ids)
        u, st = opt.update(g, st, P)
        return optax.apply_updates(P, u), st, l

    @jax.jit
    def greedy(P, x):
        """start + T-1 greedy tokens (recomputes the causal decoder each step; no eos stop)."""
        enc = common.vit_encode(P, x, ecfg, "encoder.")
        ids = jnp.full((x.shape[0], T), common.PAD, jnp.int32).at[:, 0].set(common.START)
        for t in range(T - 1):
            lg = common.gpt2_forward(P, ids, dcfg, "decoder.transformer.", enc=enc)
            ids = ids.at[:, t + 1].set(jnp.argmax(lg[:, t], -1).astype(jnp.int32))
        return ids

    def string_acc(P, x, ids):
        out = np.concatenate([np.asarray(greedy(P, x[i:i + 250])) for i in range(0, len(x), 250)])
        ok = []
        for o, t in zip(out, ids):
            L = int(np.argmax(t == common.EOS))
            ok.append(np.array_equal(o[1:L + 1], t[1:L + 1]))   # digits and eos at the right place
        ok = np.asarray(ok)
        return float(ok.mean()), out

    t0 = time.time()
    ls = []
    for s in range(args.steps):
        x, ids, _ = common.make_strips(imgs, labels, tr, args.batch, rng, augment=True)
        P, st, l = step(P, st, common.normalize(x)[:, None], ids)
        ls.append(l)
        if (s + 1) % args.eval_every == 0 or s + 1 == args.steps:
            acc, _ = string_acc(P, te_x[:500], te_ids[:500])
            print(f"step {s + 1} loss {float(np.mean(ls)):.4f} heldout string acc (500) {acc:.4f} "
                  f"({time.time() - t0:.0f}s)", flush=True)
            ls = []

    acc, out = string_acc(P, te_x, te_ids)
    lens = te["lens"]
    per_len = {int(L): float(np.mean([np.array_equal(o[1:L + 2], t[1:L + 2])
                                      for o, t in zip(out[lens == L], te_ids[lens == L])])) for L in range(1, 5)}
    # per-digit accuracy (digit positions only, teacher-free greedy output)
    dig = [(o[1 + j] == t[1 + j]) for o, t, L in zip(out, te_ids, lens) for j in range(L)]
    xtr, idtr, _ = common.make_strips(imgs, labels, tr, 2000, np.random.default_rng(12345), augment=False)
    tr_acc, _ = string_acc(P, common.normalize(xtr)[:, None], idtr)
    print(f"final: held-out string acc (2000) {acc:.4f}, per length {per_len}, digit acc {np.mean(dig):.4f}, "
          f"train-strip string acc (2000, no aug) {tr_acc:.4f}")

    Pn = {k: np.asarray(v) for k, v in P.items()}
    common.save_checkpoint(args.out, Pn, cfg, generation_config={
        "decoder_start_token_id": common.START, "eos_token_id": common.EOS, "pad_token_id": common.PAD,
        "max_new_tokens": T - 1})
    with open(os.path.join(args.out, "vocab.json"), "w") as f:
        json.dump({"0": "<start>", "1": "<pad>", "2": "<eos>", **{str(i + 3): str(i) for i in range(10)}}, f, indent=2)
        f.write("\n")
    x100 = np.load(os.path.join(HERE, "data", "strips_test_100.npy"))
    g100 = np.asarray(greedy(P, x100))
    np.save(os.path.join(args.out, "jax_greedy_strips_test_100.npy"), g100.astype(np.int64))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"params": common.n_params(Pn), "steps": args.steps, "batch": args.batch, "seed": args.seed,
                   "heldout_string_acc_2000": acc, "heldout_string_acc_by_len": per_len,
                   "heldout_digit_acc": float(np.mean(dig)), "train_string_acc_2000_noaug": tr_acc,
                   "heldout_string_acc_100_committed": float(np.mean(
                       [np.array_equal(o[1:int(np.argmax(t == 2)) + 1], t[1:int(np.argmax(t == 2)) + 1])
                        for o, t in zip(g100, np.load(os.path.join(HERE, "data", "strips_test_100_ids.npy")))])),
                   "train_seconds": round(time.time() - t0, 1), "jax": jax.__version__}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
