"""Train `llama-kjv`: a Llama of llama2.c stories260K's shape on the King James Bible, with a
512-token BPE tokenizer trained here with sentencepiece (llama2.c's recipe).

Text: prepare_data.py's models/.cache/kjv.txt (verse texts, one verse per line); train = first 90%
of characters, validation = the last 10% (the same split as char-lm; the line cut by the split
belongs half to each side). The tokenizer is trained on the training part only.
Token stream (llama2.c's pretokenize): per verse line, BOS (1) then sentencepiece's encoding
(dummy-prefix space included); the model learns to end a verse with BOS, where run.c stops.
Model (llama2.c model.py, stories260K): dim 64, hidden_dim 172, 5 layers, 8 query heads, 4
key/value heads (head 8), vocab 512, seq_len 256, RMSNorm eps 1e-5, RoPE theta 10000 over
interleaved pairs (2i, 2i+1), SwiGLU, shared classifier (= token embedding), no biases.
Exports (models/llama-kjv/):
  model.bin        llama2.c legacy version-0 float32 (header, run.c's weight order, RoPE tables)
  tokenizer.bin    llama2.c tokenizer.py's format; tokenizer.model: the sentencepiece model
  config.json + model.safetensors  HF LlamaForCausalLM (wq/wk rows permuted to the half-split
                   RoPE convention exactly as transformers' convert_llama_weights_to_hf does)
  tensors.txt, metrics.json, jax_logits_prompt_ids.npy, jax_greedy_prompts.json
and in models/data/: llama_calib_8x128.npy (training windows), llama_val_16x256.npy (held-out
windows), llama_prompt_ids.npy (held-out windows for logits), llama_prompts.json (held-out
verse prompts with sentencepiece's ids).
Usage: python models/train_llama.py [--steps N] [--out DIR]
"""
import argparse
import json
import math
import os
import shutil
import struct
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
DATA = os.path.join(HERE, "data")
DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ = 64, 172, 5, 8, 4, 512, 256
EPS, THETA = 1e-5, 10000.0
HD = DIM // HEADS
BOS, EOS = 1, 2
CALIB_SEED = 4243
N_PROMPTS = 6


def load_split():
    with open(os.path.join(CACHE, "kjv.txt"), encoding="utf-8") as f:
        text = f.read()
    n_val = len(text) // 10
    return text[: len(text) - n_val], text[len(text) - n_val:]


def train_tokenizer(train_text, out_dir):
    """llama2.c's train_vocab: BPE, byte fallback, split digits, identity normalization,
    whitespace-only pieces allowed, add_dummy_prefix (sentencepiece's default, as Llama 2)."""
    import sentencepiece as spm
    src = os.path.join(CACHE, "llama_tok_train.txt")
    with open(src, "w", encoding="utf-8") as f:
        f.write(train_text)
    prefix = os.path.join(CACHE, "llama_tok")
    spm.SentencePieceTrainer.train(
        input=src, model_prefix=prefix, model_type="bpe", vocab_size=VOCAB,
        self_test_sample_size=0, input_format="text", character_coverage=1.0, num_threads=1,
        split_digits=True, allow_whitespace_only_pieces=True, byte_fallback=True,
        unk_surface=r" \342\201\207 ", normalization_rule_name="identity", add_dummy_prefix=True,
        minloglevel=2)
    os.makedirs(out_dir, exist_ok=True)
    shutil.copyfile(prefix + ".model", os.path.join(out_dir, "tokenizer.model"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "tokenizer.model"))
    assert sp.vocab_size() == VOCAB and sp.bos_id() == BOS and sp.eos_id() == EOS
    return sp


def export_tokenizer_bin(sp, path):
    """llama2.c tokenizer.py export(): uint32 max_token_length, then per token float32 score,
    int32 length, UTF-8 bytes; BOS/EOS as '\\n<s>\\n' / '\\n</s>\\n', '▁' replaced by ' '."""
    tokens, scores = [], []
    for i in range(sp.vocab_size()):
        t = sp.id_to_piece(i)
        if i == sp.bos_id():
            t = "\n<s>\n"
        elif i == sp.eos_id():
            t = "\n</s>\n"
        tokens.append(t.replace("\u2581", " ").encode("utf-8"))
        scores.append(sp.get_score(i))
    with open(path, "wb") as f:
        f.write(struct.pack("I", max(len(t) for t in tokens)))
        for b, s in zip(tokens, scores):
            f.write(struct.pack("fI", s, len(b)))
            f.write(b)


def stream(sp, text):
    """BOS + sentencepiece ids per non-empty line, concatenated (int32)."""
    lines = [ln for ln in text.split("\n") if ln]
    out = []
    for ids in sp.encode(lines):
        out.append(BOS)
        out.extend(ids)
    return np.array(out, dtype=np.int32)


# ----------------------------------------------------------------------------- model (llama2.c names)
def init_params(rng, std=0.02):
    """llama2.c model.py init: N(0, 0.02) for every matrix, wo and w3 N(0, 0.02/sqrt(2L)),
    RMSNorm weights 1."""
    n = lambda s, sd=std: (rng.standard_normal(s) * sd).astype(np.float32)
    sd_out = std / math.sqrt(2 * LAYERS)
    kv = KV_HEADS * HD
    P = {"tok_embeddings.weight": n((VOCAB, DIM))}
    for i in range(LAYERS):
        L = f"layers.{i}."
        P.update({L + "attention_norm.weight": np.ones(DIM, np.float32),
                  L + "attention.wq.weight": n((DIM, DIM)), L + "attention.wk.weight": n((kv, DIM)),
                  L + "attention.wv.weight": n((kv, DIM)), L + "attention.wo.weight": n((DIM, DIM), sd_out),
                  L + "ffn_norm.weight": np.ones(DIM, np.float32),
                  L + "feed_forward.w1.weight": n((HIDDEN, DIM)),
                  L + "feed_forward.w2.weight": n((DIM, HIDDEN)),
                  L + "feed_forward.w3.weight": n((HIDDEN, DIM), sd_out)})
    P["norm.weight"] = np.ones(DIM, np.float32)
    return P


def rope_tables(T):
    """cos/sin [T, HD/2]: angle pos / THETA^(2i/HD) (llama2.c precompute_freqs_cis)."""
    freqs = 1.0 / (THETA ** (np.arange(0, HD, 2)[: HD // 2].astype(np.float32) / HD))
    ang = np.outer(np.arange(T, dtype=np.float32), freqs).astype(np.float32)
    return np.cos(ang), np.sin(ang)


def forward(P, ids):
    """ids [B, T] -> logits [B, T, V]; run.c's math (interleaved RoPE pairs, query head h uses
    key/value head h // (HEADS / KV_HEADS), shared classifier)."""
    import jax
    import jax.numpy as jnp
    B, T = ids.shape
    cos, sin = (jnp.asarray(t)[None, :, None, :] for t in rope_tables(T))

    def rms(x, w):
        return x * jax.lax.rsqrt((x * x).mean(-1, keepdims=True) + EPS) * w

    def rope(x):   # [B, T, H, HD], pairs (2i, 2i+1)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return jnp.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1).reshape(x.shape)

    emb = P["tok_embeddings.weight"]
    h = emb[ids]
    mask = jnp.tril(jnp.ones((T, T), bool))
    for i in range(LAYERS):
        L = f"layers.{i}."
        x = rms(h, P[L + "attention_norm.weight"])
        q = rope((x @ P[L + "attention.wq.weight"].T).reshape(B, T, HEADS, HD))
        k = rope((x @ P[L + "attention.wk.weight"].T).reshape(B, T, KV_HEADS, HD))
        v = (x @ P[L + "attention.wv.weight"].T).reshape(B, T, KV_HEADS, HD)
        k = jnp.repeat(k, HEADS // KV_HEADS, axis=2)
        v = jnp.repeat(v, HEADS // KV_HEADS, axis=2)
        s = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(HD)
        p = jax.nn.softmax(jnp.where(mask, s, -1e30), axis=-1)
        a = jnp.einsum("bhqk,bkhd->bqhd", p, v).reshape(B, T, DIM)
        h = h + a @ P[L + "attention.wo.weight"].T
        x = rms(h, P[L + "ffn_norm.weight"])
        g = jax.nn.silu(x @ P[L + "feed_forward.w1.weight"].T) * (x @ P[L + "feed_forward.w3.weight"].T)
        h = h + g @ P[L + "feed_forward.w2.weight"].T
    return rms(h, P["norm.weight"]) @ emb.T


# ----------------------------------------------------------------------------- exports
def export_llama2c(P, path):
    """llama2.c export.py legacy_export (version 0): 7 int32 header words (vocab_size positive:
    shared classifier), then float32 weights in run.c's order, the two RoPE tables, no classifier."""
    kv = KV_HEADS * HD
    assert P["layers.0.attention.wk.weight"].shape == (kv, DIM)
    with open(path, "wb") as f:
        f.write(struct.pack("7i", DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ))
        w = lambda a: f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
        w(P["tok_embeddings.weight"])
        for name in ("attention_norm", "attention.wq", "attention.wk", "attention.wv", "attention.wo",
                     "ffn_norm", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"):
            for i in range(LAYERS):
                w(P[f"layers.{i}.{name}.weight"])
        w(P["norm.weight"])
        cos, sin = rope_tables(SEQ)
        w(cos)
        w(sin)


def permute(w, n_heads, dim1, dim2):
    """transformers convert_llama_weights_to_hf.py: interleaved -> half-split rotary rows."""
    return w.reshape(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(0, 2, 1, 3).reshape(dim1, dim2)


def hf_config():
    return {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": BOS, "eos_token_id": EOS, "head_dim": HD, "hidden_act": "silu",
            "hidden_size": DIM, "initializer_range": 0.02, "intermediate_size": HIDDEN,
            "max_position_embeddings": SEQ, "mlp_bias": False, "model_type": "llama",
            "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "num_key_value_heads": KV_HEADS,
            "pretraining_tp": 1, "rms_norm_eps": EPS, "rope_scaling": None, "rope_theta": THETA,
            "tie_word_embeddings": True, "torch_dtype": "float32", "use_cache": True, "vocab_size": VOCAB}


def export_hf(P, out_dir):
    """HF LlamaForCausalLM names; tied classifier, so no lm_head.weight (as save_pretrained)."""
    from safetensors.numpy import save_file
    kv = KV_HEADS * HD
    T = {"model.embed_tokens.weight": P["tok_embeddings.weight"], "model.norm.weight": P["norm.weight"]}
    for i in range(LAYERS):
        a, b = f"layers.{i}.", f"model.layers.{i}."
        T[b + "self_attn.q_proj.weight"] = permute(P[a + "attention.wq.weight"], HEADS, DIM, DIM)
        T[b + "self_attn.k_proj.weight"] = permute(P[a + "attention.wk.weight"], KV_HEADS, kv, DIM)
        T[b + "self_attn.v_proj.weight"] = P[a + "attention.wv.weight"]
        T[b + "self_attn.o_proj.weight"] = P[a + "attention.wo.weight"]
        T[b + "mlp.gate_proj.weight"] = P[a + "feed_forward.w1.weight"]
        T[b + "mlp.down_proj.weight"] = P[a + "feed_forward.w2.weight"]
        T[b + "mlp.up_proj.weight"] = P[a + "feed_forward.w3.weight"]
        T[b + "input_layernorm.weight"] = P[a + "attention_norm.weight"]
        T[b + "post_attention_layernorm.weight"] = P[a + "ffn_norm.weight"]
    T = {k: np.ascontiguousarray(np.asarray(v, dtype=np.float32)) for k, v in sorted(T.items())}
    save_file(T, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(), f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": BOS, "eos_token_id": EOS}, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out_dir, "tensors.txt"), "w") as f:
        n = int(sum(v.size for v in T.values()))
        f.write(f"# model.safetensors: {len(T)} tensors, {n} values, metadata {{\"format\": \"pt\"}}\n")
        for k, v in T.items():
            f.write(f"{k}\tF32\t{list(v.shape)}\n")


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--out", default=os.path.join(HERE, "llama-kjv"))
    ap.add_argument("--data-dir", default=DATA, help="where the llama_* data files go (default models/data)")
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import optax

    t_start = time.time()
    train_text, val_text = load_split()
    sp = train_tokenizer(train_text, args.out)
    tr, va = stream(sp, train_text), stream(sp, val_text)
    print(f"tokenizer: {VOCAB} pieces; train {len(train_text)} chars -> {len(tr)} tokens "
          f"({len(train_text) / len(tr):.2f} chars/token), val {len(val_text)} chars -> {len(va)} tokens",
          flush=True)

    rng = np.random.default_rng(args.seed)
    P = init_params(rng)
    n_params = int(sum(v.size for v in P.values()))
    print("params", n_params, flush=True)
    P = {k: jnp.asarray(v) for k, v in P.items()}

    def loss_fn(P, ids):
        logits = forward(P, ids[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, ids[:, 1:]).mean()

    warm = min(200, args.steps // 10)
    sched = optax.warmup_cosine_decay_schedule(0.0, args.lr, warm, args.steps, args.lr * 0.05)
    mask = {k: v.ndim >= 2 and k != "tok_embeddings.weight" for k, v in P.items()}
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adamw(sched, b2=0.99, weight_decay=0.1, mask=mask))
    st = opt.init(P)

    @jax.jit
    def step(P, st, ids):
        l, g = jax.value_and_grad(loss_fn)(P, ids)
        u, st = opt.update(g, st, P)
        return optax.apply_updates(P, u), st, l

    @jax.jit
    def token_nll(P, ids):
        return optax.softmax_cross_entropy_with_integer_labels(forward(P, ids[:, :-1]), ids[:, 1:])

    def val_loss(P, data, stride=SEQ // 2, max_windows=None):
        """Windows of SEQ+1 ids every `stride`; the first scores all SEQ predictions, later ones
        their last `stride`: every token after the first is predicted once. Mean nats/token."""
        starts = list(range(0, len(data) - SEQ - 1, stride))[:max_windows]
        tot, cnt = 0.0, 0
        for i in range(0, len(starts), 32):
            s = starts[i:i + 32]
            nll = np.asarray(token_nll(P, np.stack([data[j:j + SEQ + 1] for j in s])))
            for r, j in enumerate(s):
                part = nll[r] if j == 0 else nll[r, SEQ - stride:]
                tot += float(part.sum())
                cnt += part.size
        return tot / cnt, cnt

    t0 = time.time()
    ls = []
    for s in range(args.steps):
        off = rng.integers(0, len(tr) - SEQ - 1, size=args.batch)
        P, st, l = step(P, st, np.stack([tr[o:o + SEQ + 1] for o in off]))
        ls.append(l)
        if (s + 1) % args.eval_every == 0 or s + 1 == args.steps or s == 9:
            vl, _ = val_loss(P, va, max_windows=16)
            print(f"step {s + 1} train {float(np.mean(ls)):.4f} val(first 16 windows) {vl:.4f} nats/token "
                  f"({time.time() - t0:.0f}s)", flush=True)
            ls = []
    train_s = time.time() - t0
    vl, cnt = val_loss(P, va)
    val_chars = sum(len(ln) + 1 for ln in val_text.split("\n") if ln)
    print(f"final: val {vl:.4f} nats/token, perplexity {math.exp(vl):.3f} over {cnt} tokens", flush=True)

    Pn = {k: np.asarray(v, dtype=np.float32) for k, v in P.items()}
    os.makedirs(args.out, exist_ok=True)
    export_llama2c(Pn, os.path.join(args.out, "model.bin"))
    export_tokenizer_bin(sp, os.path.join(args.out, "tokenizer.bin"))
    export_hf(Pn, args.out)

    # data sets for tools: calibration from the training stream, held-out windows and prompts
    crng = np.random.default_rng(CALIB_SEED)
    cs = crng.integers(0, len(tr) - 128, size=8)
    np.save(os.path.join(args.data_dir, "llama_calib_8x128.npy"), np.stack([tr[o:o + 128] for o in cs]).astype(np.int64))
    val_win = np.stack([va[k * SEQ:(k + 1) * SEQ] for k in range(16)]).astype(np.int64)
    np.save(os.path.join(args.data_dir, "llama_val_16x256.npy"), val_win)
    prompt_ids = np.stack([va[o:o + 32] for o in (0, 5000)]).astype(np.int64)
    np.save(os.path.join(args.data_dir, "llama_prompt_ids.npy"), prompt_ids)
    np.save(os.path.join(args.out, "jax_logits_prompt_ids.npy"),
            np.asarray(forward(P, prompt_ids)).astype(np.float32))
    # held-out verse prompts: the first five words of verses spread over the validation text
    vlines = [ln for ln in val_text.split("\n") if ln][1:]   # [0] is cut by the split
    picks = [len(vlines) * k // N_PROMPTS + 7 for k in range(N_PROMPTS)]
    prompts = [" ".join(vlines[i].split(" ")[:5]) for i in picks]
    enc = [[BOS] + ids for ids in sp.encode(prompts)]
    fwd = jax.jit(forward)
    greedy, texts = [], []
    for ids in enc:
        seq = list(ids)
        for _ in range(48):
            # fixed shape (one compilation); causal, so the zero padding after seq changes nothing
            pad = np.zeros((1, 64), np.int32)
            pad[0, :len(seq)] = seq
            nxt = int(np.asarray(fwd(P, pad))[0, len(seq) - 1].argmax())
            if nxt == BOS:   # run.c stops before a BOS
                break
            seq.append(nxt)
        greedy.append(seq)
        texts.append(sp.decode(seq[1:]))
    with open(os.path.join(args.data_dir, "llama_prompts.json"), "w", encoding="utf-8") as f:
        json.dump({"what": "held-out verse openings (validation text) and their ids: BOS then "
                           "sentencepiece's encoding with models/llama-kjv/tokenizer.model "
                           "(written by models/train_llama.py)",
                   "prompts": prompts, "ids": enc}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    # The boards' prompts (boards/run-demo.sh and tests/tests/qemu_models.rs read
    # models/data/<model>_prompts.npy: int64, one row per prompt, equal lengths): the first two
    # held-out prompts, cut to the shorter one's length.
    n = min(len(enc[0]), len(enc[1]))
    np.save(os.path.join(args.data_dir, "llama-kjv_prompts.npy"),
            np.array([enc[0][:n], enc[1][:n]], dtype=np.int64))
    with open(os.path.join(args.out, "jax_greedy_prompts.json"), "w", encoding="utf-8") as f:
        json.dump({"prompts": prompts, "greedy": greedy, "text": texts}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for t in texts:
        print("sample:", repr(t))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"params": n_params, "steps": args.steps, "batch": args.batch, "seq_len": SEQ,
                   "lr": args.lr, "seed": args.seed, "train_tokens": int(len(tr)), "val_tokens": int(len(va)),
                   "val_tokens_scored": cnt, "val_nats_per_token": vl, "val_perplexity": math.exp(vl),
                   "val_bits_per_char": vl * cnt / math.log(2) / val_chars,
                   "greedy_samples": texts, "train_seconds": round(train_s, 1),
                   "total_seconds": round(time.time() - t_start, 1), "jax": jax.__version__},
                  f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
