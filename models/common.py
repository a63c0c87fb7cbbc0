"""Shared pieces: data helpers, JAX forward passes written against Hugging Face tensor names and
PyTorch layouts (so a checkpoint is the parameter dict itself), init, checkpoint writing.

Math follows tests/fixtures/README.md (vendored from the shared fixtures) exactly:
  nn.Linear  y = x @ W.T + b   (W [out, in])      -- ViT
  Conv1D     y = x @ W + b     (W [in, out])      -- GPT-2
  LN biased variance; ViT exact-erf GELU; GPT-2 gelu_new (tanh); attention softmax(q k^T / sqrt(hd)).
"""
import json
import math
import os

import numpy as np

SPLIT_SEED = 20240
STRIPS_TEST_SEED = 777
MAX_DIGITS = 4
# digit-reader vocabulary: start 0, pad 1, eos 2, digit d -> d + 3
START, PAD, EOS = 0, 1, 2
DIGIT_VOCAB = 13


def normalize(u8):
    """uint8 pixels -> float32 (v/255 - 0.5)/0.5 in [-1, 1] (HF ViTImageProcessor defaults)."""
    return ((u8.astype(np.float32) / 255.0 - 0.5) / 0.5).astype(np.float32)


# ----------------------------------------------------------------------------- augmentation
def augment_batch(imgs, rng, max_rot=12.0, scale=(0.9, 1.1), max_shift=2.0):
    """Random affine per 28x28 uint8 image (bilinear), returns uint8."""
    from scipy.ndimage import affine_transform
    out = np.empty_like(imgs)
    c = np.array([13.5, 13.5])
    for i, im in enumerate(imgs):
        a = math.radians(rng.uniform(-max_rot, max_rot))
        s = rng.uniform(*scale)
        sh = rng.uniform(-max_shift, max_shift, size=2)
        m = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) / s
        off = c - m @ (c + sh)
        out[i] = np.clip(np.rint(affine_transform(im.astype(np.float32), m, offset=off, order=1,
                                                  mode="constant", cval=0.0)), 0, 255)
    return out


def make_strips(imgs, labels, pool_idx, n, rng, augment, aug_rng=None):
    """n strips 28 x (28*MAX_DIGITS): L ~ U{1..4} digits drawn from pool_idx, left-aligned, one
    per 28-px slot, unused slots blank (0). ids [n, MAX_DIGITS+2]: start, digits (+3), eos, pad."""
    lens = rng.integers(1, MAX_DIGITS + 1, size=n)
    picks = rng.choice(pool_idx, size=(n, MAX_DIGITS))
    digits = imgs[picks.reshape(-1)]
    if augment:
        digits = augment_batch(digits, aug_rng if aug_rng is not None else rng)
    digits = digits.reshape(n, MAX_DIGITS, 28, 28)
    strips = np.zeros((n, 28, 28 * MAX_DIGITS), np.uint8)
    ids = np.full((n, MAX_DIGITS + 2), PAD, np.int64)
    ids[:, 0] = START
    for i in range(n):
        L = lens[i]
        for j in range(L):
            strips[i, :, 28 * j:28 * (j + 1)] = digits[i, j]
            ids[i, 1 + j] = labels[picks[i, j]] + 3
        ids[i, 1 + L] = EOS
    return strips, ids, lens


# ----------------------------------------------------------------------------- JAX model code
def _jnp():
    import jax.numpy as jnp
    return jnp


def layer_norm(x, w, b, eps):
    jnp = _jnp()
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + eps) * w + b


def attention(q, k, v, n_head, causal=False):
    import jax
    jnp = _jnp()
    B, Tq, D = q.shape
    Tk = k.shape[1]
    hd = D // n_head
    q = q.reshape(B, Tq, n_head, hd)
    k = k.reshape(B, Tk, n_head, hd)
    v = v.reshape(B, Tk, n_head, hd)
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
    if causal:
        mask = jnp.tril(jnp.ones((Tq, Tk), bool))
        s = jnp.where(mask, s, -1e30)
    p = jax.nn.softmax(s, axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", p, v).reshape(B, Tq, D)


def vit_encode(P, x, cfg, prefix):
    """x [B, C, H, W] -> final hidden states after the final LayerNorm [B, N+1, D].
    prefix 'vit.' (classifier) or 'encoder.' (encoder-decoder)."""
    import jax
    jnp = _jnp()
    B, C, H, W = x.shape
    p = cfg["patch_size"]
    D = cfg["hidden_size"]
    eps = cfg["layer_norm_eps"]
    nh = cfg["num_attention_heads"]
    N = (H // p) * (W // p)
    patches = x.reshape(B, C, H // p, p, W // p, p).transpose(0, 2, 4, 1, 3, 5).reshape(B, N, C * p * p)
    e = prefix + "embeddings."
    w = P[e + "patch_embeddings.projection.weight"].reshape(D, C * p * p)
    t = patches @ w.T + P[e + "patch_embeddings.projection.bias"]
    cls = jnp.broadcast_to(P[e + "cls_token"], (B, 1, D))
    h = jnp.concatenate([cls, t], axis=1) + P[e + "position_embeddings"]
    for i in range(cfg["num_hidden_layers"]):
        L = f"{prefix}encoder.layer.{i}."
        lin = lambda name, a: a @ P[L + name + ".weight"].T + P[L + name + ".bias"]
        a = layer_norm(h, P[L + "layernorm_before.weight"], P[L + "layernorm_before.bias"], eps)
        ctx = attention(lin("attention.attention.query", a), lin("attention.attention.key", a),
                        lin("attention.attention.value", a), nh)
        h = h + lin("attention.output.dense", ctx)
        a = layer_norm(h, P[L + "layernorm_after.weight"], P[L + "layernorm_after.bias"], eps)
        h = h + lin("output.dense", jax.nn.gelu(lin("intermediate.dense", a), approximate=False))
    return layer_norm(h, P[prefix + "layernorm.weight"], P[prefix + "layernorm.bias"], eps)


def vit_classify(P, x, cfg):
    h = vit_encode(P, x, cfg, "vit.")
    return h[:, 0] @ P["classifier.weight"].T + P["classifier.bias"]


def sinusoid_table(n_pos, d):
    """PE[pos, 2k] = sin(pos / 10000^(2k/d)), PE[pos, 2k+1] = cos(...) (tools/README.md)."""
    pos = np.arange(n_pos, dtype=np.float64)[:, None]
    k = np.arange(d // 2, dtype=np.float64)[None, :]
    ang = pos / np.power(10000.0, 2 * k / d)
    pe = np.zeros((n_pos, d), np.float64)
    pe[:, 0::2] = np.sin(ang)
    pe[:, 1::2] = np.cos(ang)
    return pe.astype(np.float32)


def gpt2_forward(P, ids, cfg, prefix, enc=None):
    """ids [B, T] -> logits [B, T, V]. prefix 'transformer.' or 'decoder.transformer.'.
    enc: encoder hidden states [B, S, D] for cross-attention (decoder of encoder-decoder)."""
    import jax
    jnp = _jnp()
    B, T = ids.shape
    nh = cfg["n_head"]
    eps = cfg["layer_norm_epsilon"]
    wte = P[prefix + "wte.weight"]
    h = wte[ids]
    if cfg.get("position_embedding_type", "learned") == "sinusoidal":
        h = h + jnp.asarray(sinusoid_table(cfg["n_positions"], cfg["n_embd"])[:T])
    else:
        h = h + P[prefix + "wpe.weight"][:T]
    for i in range(cfg["n_layer"]):
        L = f"{prefix}h.{i}."
        conv = lambda name, a: a @ P[L + name + ".weight"] + P[L + name + ".bias"]
        a = layer_norm(h, P[L + "ln_1.weight"], P[L + "ln_1.bias"], eps)
        q, k, v = jnp.split(conv("attn.c_attn", a), 3, axis=-1)
        h = h + conv("attn.c_proj", attention(q, k, v, nh, causal=True))
        if enc is not None:
            a = layer_norm(h, P[L + "ln_cross_attn.weight"], P[L + "ln_cross_attn.bias"], eps)
            q = conv("crossattention.q_attn", a)
            k, v = jnp.split(conv("crossattention.c_attn", enc), 2, axis=-1)
            h = h + conv("crossattention.c_proj", attention(q, k, v, nh))
        a = layer_norm(h, P[L + "ln_2.weight"], P[L + "ln_2.bias"], eps)
        h = h + conv("mlp.c_proj", jax.nn.gelu(conv("mlp.c_fc", a), approximate=True))
    h = layer_norm(h, P[prefix + "ln_f.weight"], P[prefix + "ln_f.bias"], eps)
    return h @ wte.T


# ----------------------------------------------------------------------------- init
def init_vit(rng, cfg, prefix, num_labels=None, std=0.02):
    """HF-like init (trunc-normal-ish N(0, std) matrices, zero biases, LN 1/0), numpy float32."""
    D, C, p = cfg["hidden_size"], cfg["num_channels"], cfg["patch_size"]
    I = cfg["intermediate_size"]
    H, W = (cfg["image_size"], cfg["image_size"]) if isinstance(cfg["image_size"], int) else cfg["image_size"]
    N = (H // p) * (W // p)
    n = lambda *s: (rng.standard_normal(s) * std).astype(np.float32)
    z = lambda *s: np.zeros(s, np.float32)
    o = lambda *s: np.ones(s, np.float32)
    e = prefix + "embeddings."
    P = {e + "cls_token": n(1, 1, D), e + "position_embeddings": n(1, N + 1, D),
         e + "patch_embeddings.projection.weight": (rng.standard_normal((D, C, p, p)) / math.sqrt(C * p * p)).astype(np.float32),
         e + "patch_embeddings.projection.bias": z(D)}
    for i in range(cfg["num_hidden_layers"]):
        L = f"{prefix}encoder.layer.{i}."
        for nm in ("query", "key", "value"):
            P[L + f"attention.attention.{nm}.weight"] = n(D, D)
            P[L + f"attention.attention.{nm}.bias"] = z(D)
        P[L + "attention.output.dense.weight"] = n(D, D)
        P[L + "attention.output.dense.bias"] = z(D)
        P[L + "intermediate.dense.weight"] = n(I, D)
        P[L + "intermediate.dense.bias"] = z(I)
        P[L + "output.dense.weight"] = n(D, I)
        P[L + "output.dense.bias"] = z(D)
        for ln in ("layernorm_before", "layernorm_after"):
            P[L + ln + ".weight"] = o(D)
            P[L + ln + ".bias"] = z(D)
    P[prefix + "layernorm.weight"] = o(D)
    P[prefix + "layernorm.bias"] = z(D)
    if num_labels:
        P["classifier.weight"] = n(num_labels, D)
        P["classifier.bias"] = z(num_labels)
    return P


def init_gpt2(rng, cfg, prefix, cross=False, std=0.02):
    D, V, nl = cfg["n_embd"], cfg["vocab_size"], cfg["n_layer"]
    I = cfg.get("n_inner") or 4 * D
    n = lambda *s: (rng.standard_normal(s) * std).astype(np.float32)
    nproj = lambda *s: (rng.standard_normal(s) * std / math.sqrt(2 * nl)).astype(np.float32)
    z = lambda *s: np.zeros(s, np.float32)
    o = lambda *s: np.ones(s, np.float32)
    P = {prefix + "wte.weight": n(V, D)}
    if cfg.get("position_embedding_type", "learned") != "sinusoidal":
        P[prefix + "wpe.weight"] = n(cfg["n_positions"], D) * 0.5
    for i in range(nl):
        L = f"{prefix}h.{i}."
        P.update({L + "ln_1.weight": o(D), L + "ln_1.bias": z(D),
                  L + "attn.c_attn.weight": n(D, 3 * D), L + "attn.c_attn.bias": z(3 * D),
                  L + "attn.c_proj.weight": nproj(D, D), L + "attn.c_proj.bias": z(D),
                  L + "ln_2.weight": o(D), L + "ln_2.bias": z(D),
                  L + "mlp.c_fc.weight": n(D, I), L + "mlp.c_fc.bias": z(I),
                  L + "mlp.c_proj.weight": nproj(I, D), L + "mlp.c_proj.bias": z(D)})
        if cross:
            P.update({L + "ln_cross_attn.weight": o(D), L + "ln_cross_attn.bias": z(D),
                      L + "crossattention.q_attn.weight": n(D, D), L + "crossattention.q_attn.bias": z(D),
                      L + "crossattention.c_attn.weight": n(D, 2 * D), L + "crossattention.c_attn.bias": z(2 * D),
                      L + "crossattention.c_proj.weight": nproj(D, D), L + "crossattention.c_proj.bias": z(D)})
    P[prefix + "ln_f.weight"] = o(D)
    P[prefix + "ln_f.bias"] = z(D)
    return P


def decay_mask(P):
    """AdamW weight decay on matrices only (not biases, LayerNorm, cls/pos/embeddings)."""
    return {k: (v.ndim >= 2 and "embeddings" not in k and "wte" not in k and "wpe" not in k)
            for k, v in P.items()}


def n_params(P):
    return int(sum(np.asarray(v).size for v in P.values()))


# ----------------------------------------------------------------------------- saving
def save_checkpoint(out_dir, P, config, generation_config=None):
    from safetensors.numpy import save_file
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: np.ascontiguousarray(np.asarray(v, dtype=np.float32)) for k, v in sorted(P.items())}
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    if generation_config is not None:
        with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
            json.dump(generation_config, f, indent=2, sort_keys=True)
            f.write("\n")
    with open(os.path.join(out_dir, "tensors.txt"), "w") as f:
        f.write(f"# model.safetensors: {len(tensors)} tensors, {n_params(tensors)} values, metadata {{\"format\": \"pt\"}}\n")
        for k, v in tensors.items():
            f.write(f"{k}\tF32\t{list(v.shape)}\n")


def load_checkpoint(out_dir):
    from safetensors.numpy import load_file
    with open(os.path.join(out_dir, "config.json")) as f:
        cfg = json.load(f)
    return load_file(os.path.join(out_dir, "model.safetensors")), cfg


def vit_config(D, layers, heads, inter, image_size, patch, num_labels=None):
    c = {"attention_probs_dropout_prob": 0.0, "encoder_stride": patch, "hidden_act": "gelu",
         "hidden_dropout_prob": 0.0, "hidden_size": D, "image_size": image_size,
         "initializer_range": 0.02, "intermediate_size": inter, "layer_norm_eps": 1e-12,
         "model_type": "vit", "num_attention_heads": heads, "num_channels": 1,
         "num_hidden_layers": layers, "patch_size": patch, "qkv_bias": True}
    if num_labels:
        c["id2label"] = {str(i): str(i) for i in range(num_labels)}
        c["label2id"] = {str(i): i for i in range(num_labels)}
    return c


def gpt2_config(V, n_pos, D, layers, heads):
    return {"activation_function": "gelu_new", "attn_pdrop": 0.0, "embd_pdrop": 0.0,
            "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
            "n_embd": D, "n_head": heads, "n_inner": None, "n_layer": layers,
            "n_positions": n_pos, "reorder_and_upcast_attn": False, "resid_pdrop": 0.0,
            "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
            "tie_word_embeddings": True, "use_cache": True, "vocab_size": V}
