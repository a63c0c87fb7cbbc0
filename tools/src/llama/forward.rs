//! The f32 Llama reference, one token at a time with a KV cache (what `run.c`'s `forward`
//! does): values stored in f32, dot products and RMSNorm statistics accumulated in f64.
//!
//! Per position `pos` with token `t`: `x = embed[t]`; per layer `n = rmsnorm(x) ⊙ rms_att`
//! (`x / sqrt(mean(x²) + eps)`), `q = wq·n`, `k = wk·n`, `v = wv·n`; `q` and `k` rotated by
//! [`rope`]; `k`, `v` stored in the cache at `pos`; query head `h` attends over positions
//! `0..=pos` of key/value head `h / (n_heads / n_kv_heads)` with scores `q·k / sqrt(head_dim)`;
//! `x += wo·attn`; `n' = rmsnorm(x) ⊙ rms_ffn`, `x += w2·(silu(w1·n') ⊙ (w3·n'))`. Logits:
//! `classifier · (rmsnorm(x) ⊙ rms_final)`.

use super::{LlamaConfig, LlamaModel, RopeStyle, StopRule};
use crate::error::{Error, Result};
use crate::float::ops::{argmax, dot, softmax};
use crate::model::Linear;

/// Keys and values of every layer for positions `0..len`, `[seq_len, kv_dim]` each.
#[derive(Debug, Clone)]
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// An empty cache for `positions` positions (at most `config.seq_len`: a long-context
    /// checkpoint only gets the memory a run needs).
    pub fn new(config: &LlamaConfig, positions: usize) -> Self {
        let n = positions.min(config.seq_len) * config.kv_dim();
        KvCache {
            keys: vec![vec![0.0; n]; config.n_layers],
            values: vec![vec![0.0; n]; config.n_layers],
            len: 0,
        }
    }

    /// Positions the cache can hold.
    pub fn capacity(&self, config: &LlamaConfig) -> usize {
        self.keys
            .first()
            .map_or(0, |k| k.len() / config.kv_dim().max(1))
    }

    /// Positions filled so far (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `y = W x` (no bias).
fn matvec(l: &Linear, x: &[f32]) -> Vec<f32> {
    (0..l.out_dim)
        .map(|o| dot(&l.weight[o * l.in_dim..(o + 1) * l.in_dim], x) as f32)
        .collect()
}

/// RMSNorm: `x / sqrt(mean(x²) + eps) ⊙ w`.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    let ms = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len() as f64;
    let inv = 1.0 / (ms + eps).sqrt();
    x.iter()
        .zip(w)
        .map(|(&v, &g)| (v as f64 * inv * g as f64) as f32)
        .collect()
}

/// SiLU: `x · sigmoid(x)`.
pub fn silu(x: f32) -> f32 {
    let x = x as f64;
    (x / (1.0 + libm::exp(-x))) as f32
}

/// Rotates every head of `x` (`heads × head_dim` values) for position `pos`.
///
/// Pair `i` (`0 <= i < head_dim / 2`) turns by `pos / theta^(2i / head_dim)`; it is
/// `(2i, 2i + 1)` for [`RopeStyle::Interleaved`] and `(i, i + head_dim / 2)` for
/// [`RopeStyle::HalfSplit`]. `(a, b) -> (a cos - b sin, a sin + b cos)`.
pub fn rope(x: &mut [f32], head_dim: usize, pos: usize, theta: f64, style: RopeStyle) {
    let half = head_dim / 2;
    for head in x.chunks_exact_mut(head_dim) {
        for i in 0..half {
            let freq = 1.0 / libm::pow(theta, (2 * i) as f64 / head_dim as f64);
            let (sin, cos) = libm::sincos(pos as f64 * freq);
            let (ia, ib) = match style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::HalfSplit => (i, i + half),
            };
            let (a, b) = (head[ia] as f64, head[ib] as f64);
            head[ia] = (a * cos - b * sin) as f32;
            head[ib] = (a * sin + b * cos) as f32;
        }
    }
}

/// Runs one token at the cache's next position and returns the logits `[vocab]`.
pub fn step(model: &LlamaModel, cache: &mut KvCache, token: usize) -> Result<Vec<f32>> {
    let c = &model.config;
    let pos = cache.len;
    if pos >= c.seq_len {
        return Err(Error::Input(format!(
            "position {pos} is past the model's sequence length {}",
            c.seq_len
        )));
    }
    if pos >= cache.capacity(c) {
        return Err(Error::Input(format!(
            "position {pos} is past the KV cache's {} positions",
            cache.capacity(c)
        )));
    }
    if token >= c.vocab_size {
        return Err(Error::Input(format!(
            "token id {token} out of range (vocab_size {})",
            c.vocab_size
        )));
    }
    let (hd, kv_dim) = (c.head_dim, c.kv_dim());
    let group = c.n_heads / c.n_kv_heads;
    let scale = 1.0 / (hd as f64).sqrt();
    let mut x = model.embed.row(token).to_vec();
    let mut scores = vec![0.0f32; pos + 1];
    for (l, layer) in model.layers.iter().enumerate() {
        let n = rmsnorm(&x, &layer.rms_att, c.norm_eps);
        let mut q = matvec(&layer.wq, &n);
        let mut k = matvec(&layer.wk, &n);
        let v = matvec(&layer.wv, &n);
        rope(&mut q, hd, pos, c.rope_theta, c.rope);
        rope(&mut k, hd, pos, c.rope_theta, c.rope);
        cache.keys[l][pos * kv_dim..(pos + 1) * kv_dim].copy_from_slice(&k);
        cache.values[l][pos * kv_dim..(pos + 1) * kv_dim].copy_from_slice(&v);
        let (keys, values) = (&cache.keys[l], &cache.values[l]);
        let mut att = vec![0.0f32; c.q_dim()];
        for h in 0..c.n_heads {
            let qh = &q[h * hd..(h + 1) * hd];
            let kvo = (h / group) * hd;
            for (t, s) in scores.iter_mut().enumerate() {
                let kt = &keys[t * kv_dim + kvo..t * kv_dim + kvo + hd];
                *s = (dot(qh, kt) * scale) as f32;
            }
            softmax(&mut scores);
            for (i, o) in att[h * hd..(h + 1) * hd].iter_mut().enumerate() {
                let acc: f64 = scores
                    .iter()
                    .enumerate()
                    .map(|(t, &p)| p as f64 * values[t * kv_dim + kvo + i] as f64)
                    .sum();
                *o = acc as f32;
            }
        }
        for (xi, o) in x.iter_mut().zip(matvec(&layer.wo, &att)) {
            *xi += o;
        }
        let n = rmsnorm(&x, &layer.rms_ffn, c.norm_eps);
        let gate = matvec(&layer.w1, &n);
        let up = matvec(&layer.w3, &n);
        let g: Vec<f32> = gate.iter().zip(&up).map(|(&a, &b)| silu(a) * b).collect();
        for (xi, o) in x.iter_mut().zip(matvec(&layer.w2, &g)) {
            *xi += o;
        }
    }
    cache.len += 1;
    let n = rmsnorm(&x, &model.rms_final, c.norm_eps);
    let cls = model.classifier();
    Ok((0..cls.rows).map(|r| dot(cls.row(r), &n) as f32).collect())
}

/// Teacher-forced logits of every position of `ids` (`[T][vocab]`).
pub fn logits(model: &LlamaModel, ids: &[usize]) -> Result<Vec<Vec<f32>>> {
    check_ids(model, ids)?;
    let mut cache = KvCache::new(&model.config, ids.len());
    ids.iter().map(|&t| step(model, &mut cache, t)).collect()
}

/// What [`generate`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The prompt followed by the new ids.
    pub ids: Vec<usize>,
    /// Logits of every prompt position, then of every new id that was fed: one row per
    /// element of `ids` unless generation stopped before a `run.c` BOS (then the last row is
    /// the one that chose it).
    pub logits: Vec<Vec<f32>>,
}

/// Checks that `ids` is non-empty, within the vocabulary and the sequence length.
pub fn check_ids(model: &LlamaModel, ids: &[usize]) -> Result<()> {
    let c = &model.config;
    if ids.is_empty() {
        return Err(Error::Input("empty prompt".into()));
    }
    if let Some(&bad) = ids.iter().find(|&&i| i >= c.vocab_size) {
        return Err(Error::Input(format!(
            "token id {bad} out of range (vocab_size {})",
            c.vocab_size
        )));
    }
    if ids.len() > c.seq_len {
        return Err(Error::Input(format!(
            "sequence of {} tokens exceeds the model's sequence length {}",
            ids.len(),
            c.seq_len
        )));
    }
    Ok(())
}

/// Greedy decoding: feeds the prompt, then appends the argmax (first index on ties) and feeds it,
/// `max_new_tokens` times, so that every new id has its logits row. Stops early by the model's
/// [`StopRule`]: before a `run.c` BOS (not appended), or after a Hugging Face eos (appended).
/// `prompt.len() + max_new_tokens` must fit the sequence length.
pub fn generate(model: &LlamaModel, prompt: &[usize], max_new_tokens: usize) -> Result<Generation> {
    check_ids(model, prompt)?;
    let c = &model.config;
    let need = prompt.len() + max_new_tokens;
    if need > c.seq_len {
        return Err(Error::Input(format!(
            "prompt of {} tokens + {max_new_tokens} new tokens needs {need} positions, the model has {}",
            prompt.len(),
            c.seq_len
        )));
    }
    let mut cache = KvCache::new(c, need);
    let mut logits = prompt
        .iter()
        .map(|&t| step(model, &mut cache, t))
        .collect::<Result<Vec<_>>>()?;
    let mut ids = prompt.to_vec();
    for _ in 0..max_new_tokens {
        let next = argmax(logits.last().expect("non-empty prompt"));
        match &c.stop {
            StopRule::Before(id) if next == *id => break,
            StopRule::After(eos) if eos.contains(&next) => {
                ids.push(next);
                logits.push(step(model, &mut cache, next)?);
                break;
            }
            _ => {}
        }
        ids.push(next);
        logits.push(step(model, &mut cache, next)?);
    }
    Ok(Generation { ids, logits })
}
