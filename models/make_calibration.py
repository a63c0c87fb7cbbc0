"""Calibration sets for `tools convert`, drawn from the TRAINING data only (the held-out sets in
data/ are for accuracy figures, never for calibration).

Writes (committed, small):
  data/mnist_calib_64.npy      float32 [64,1,28,28]  train-split digits, normalized
  data/strips_calib_32.npy     float32 [32,1,28,112] strips of train-split digits, unaugmented
  data/kjv_calib_8x128.npy     int64   [8,128]       windows of the training text (char-lm ids)
"""
import json
import os

import numpy as np

import common

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
DATA = os.path.join(HERE, "data")
CALIB_SEED = 4242


def main():
    rng = np.random.default_rng(CALIB_SEED)
    m = np.load(os.path.join(CACHE, "mnist.npz"))
    imgs, labels, train_idx = m["images"], m["labels"], m["train_idx"]
    pick = rng.choice(train_idx, size=64, replace=False)
    np.save(os.path.join(DATA, "mnist_calib_64.npy"), common.normalize(imgs[pick])[:, None])
    strips, _, _ = common.make_strips(imgs, labels, train_idx, n=32, rng=rng, augment=False)
    np.save(os.path.join(DATA, "strips_calib_32.npy"), common.normalize(strips)[:, None])

    with open(os.path.join(HERE, "char-lm", "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    to_id = {c: int(i) for i, c in vocab.items()}
    with open(os.path.join(CACHE, "kjv.txt"), encoding="utf-8") as f:
        text = f.read()
    train = text[: len(text) - len(text) // 10]
    starts = rng.integers(0, len(train) - 128, size=8)
    ids = np.array([[to_id[c] for c in train[s : s + 128]] for s in starts], np.int64)
    np.save(os.path.join(DATA, "kjv_calib_8x128.npy"), ids)
    print("calibration sets written:", pick.size, "digits,", strips.shape[0], "strips,", ids.shape, "text windows")


if __name__ == "__main__":
    main()
