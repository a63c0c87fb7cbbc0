//! f64 references of the Llama kernels ([`crate::rmsnorm`], [`crate::rope`], [`crate::swiglu`]),
//! on real values and on dequantized int8 inputs.
//!
//! Written from the definitions, not from the kernels: RMSNorm divides by `√(mean(x²) + ε)` in
//! f64, RoPE takes `cos`/`sin` of the exact angle (no table), SwiGLU evaluates `x·σ(x)` per
//! element (no table, no fixed point).

use crate::requant::QParams;
use crate::rope::RopeStyle;
use crate::Error;
use std::vec;
use std::vec::Vec;

/// RMSNorm of one real row: `x_i / √(mean(x²) + ε) · γ_i` (0 where the denominator is 0).
pub fn rms_norm_f64(x: &[f64], gamma: &[f64], eps: f64) -> Result<Vec<f64>, Error> {
    if x.is_empty() {
        return Err(Error::BadDimension {
            what: "rms norm width",
            value: 0,
        });
    }
    crate::error::check_len("rms norm gamma", x.len(), gamma.len())?;
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let den = (ms + eps).sqrt();
    Ok(x.iter()
        .zip(gamma)
        .map(|(&v, &g)| if den > 0.0 { v / den * g } else { 0.0 })
        .collect())
}

/// RMSNorm of every row of an int8 tensor (`[rows][gamma.len()]`) dequantized with `input`,
/// γ widened to f64: the real outputs, row-major.
pub fn rms_norm_i8(
    input: &[i8],
    gamma: &[f32],
    eps: f64,
    input_q: QParams,
) -> Result<Vec<f64>, Error> {
    let width = gamma.len();
    if width == 0 || input.len() % width != 0 {
        return Err(Error::BadDimension {
            what: "rms norm width",
            value: width,
        });
    }
    let g: Vec<f64> = gamma.iter().map(|&v| v as f64).collect();
    let mut out = Vec::with_capacity(input.len());
    for row in input.chunks_exact(width) {
        let x: Vec<f64> = row.iter().map(|&q| input_q.dequantize(q)).collect();
        out.extend(rms_norm_f64(&x, &g, eps)?);
    }
    Ok(out)
}

/// Rotates every head of a real row (`heads × head_dim`) for position `pos`: pair `i` (elements
/// chosen by `style`) turns by `pos · theta^(−2i/head_dim)`.
pub fn rope_f64(
    x: &[f64],
    head_dim: usize,
    pos: usize,
    theta: f64,
    style: RopeStyle,
) -> Result<Vec<f64>, Error> {
    if head_dim < 2 || head_dim % 2 != 0 || x.len() % head_dim != 0 {
        return Err(Error::BadDimension {
            what: "rope head width",
            value: head_dim,
        });
    }
    let mut out = x.to_vec();
    for head in out.chunks_exact_mut(head_dim) {
        for i in 0..head_dim / 2 {
            let angle = pos as f64 * theta.powf(-((2 * i) as f64) / head_dim as f64);
            let (s, c) = angle.sin_cos();
            let (ia, ib) = match style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::HalfSplit => (i, i + head_dim / 2),
            };
            let (a, b) = (head[ia], head[ib]);
            head[ia] = a * c - b * s;
            head[ib] = a * s + b * c;
        }
    }
    Ok(out)
}

/// `silu(x) = x / (1 + e^−x)`.
pub fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

/// `silu(g_i) · u_i` of dequantized int8 gate and up rows (equal lengths).
pub fn swiglu_i8(
    gate: &[i8],
    up: &[i8],
    gate_q: QParams,
    up_q: QParams,
) -> Result<Vec<f64>, Error> {
    crate::error::check_len("swiglu up", gate.len(), up.len())?;
    Ok(gate
        .iter()
        .zip(up)
        .map(|(&g, &u)| silu(gate_q.dequantize(g)) * up_q.dequantize(u))
        .collect())
}

/// An RMSNorm's float parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct RmsNormF {
    /// γ, one per feature.
    pub gamma: Vec<f32>,
    /// ε inside the square root.
    pub eps: f64,
}

impl RmsNormF {
    /// Normalize every row of `x` (`[rows][gamma.len()]`).
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let g: Vec<f64> = self.gamma.iter().map(|&v| v as f64).collect();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(g.len().max(1)) {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / row.len() as f64;
            let den = libm::sqrt(ms + self.eps);
            out.extend(
                row.iter()
                    .zip(&g)
                    .map(|(&v, &g)| if den > 0.0 { v / den * g } else { 0.0 }),
            );
        }
        out
    }
}

/// One Llama decoder block in float (weights as `[out][in]`, biases zero for Llama).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaBlockF {
    /// RMSNorm before attention.
    pub rms1: RmsNormF,
    /// Fused `q | k | v` projection, `width → width + 2·kv_width`.
    pub qkv: crate::reference::block::LinearF,
    /// Output projection.
    pub wo: crate::reference::block::LinearF,
    /// RMSNorm before the MLP.
    pub rms2: RmsNormF,
    /// Gate projection.
    pub w1: crate::reference::block::LinearF,
    /// Up projection.
    pub w3: crate::reference::block::LinearF,
    /// Down projection.
    pub w2: crate::reference::block::LinearF,
}

impl LlamaBlockF {
    /// Model width.
    pub fn width(&self) -> usize {
        self.rms1.gamma.len()
    }
}

/// A whole Llama model in float, the yardstick of the int8 runner and the source of its
/// calibration ranges.
///
/// Observation points of [`LlamaF::forward`]: `x0` (embedding rows), per block `l{i}.` +
/// `rms1`, `q`, `k`, `v` (before RoPE), `q_rope`, `k_rope`, `attn`, `proj`, `add1`, `rms2`,
/// `w1`, `w3`, `swiglu`, `w2`, `add2`; then `final` (final RMSNorm) and `logits`.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaF {
    /// Model width.
    pub width: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// RoPE base θ.
    pub theta: f64,
    /// RoPE pairing convention.
    pub style: RopeStyle,
    /// Longest sequence.
    pub max_positions: usize,
    /// `[vocab][width]` token embedding.
    pub embedding: Vec<f32>,
    /// Blocks.
    pub blocks: Vec<LlamaBlockF>,
    /// Final RMSNorm.
    pub final_norm: RmsNormF,
    /// Untied classifier `[vocab][width]` (`None`: tied to the embedding).
    pub head: Option<Vec<f32>>,
    /// Begin-of-sequence id.
    pub bos: Option<u32>,
    /// End-of-sequence id.
    pub eos: Option<u32>,
}

/// Rotate every head of every row of `x` (`[tokens][heads·head_dim]`), token `t` at position
/// `t`, with `libm` (the same bits on every host, as the pack-time table).
fn rope_rows(x: &mut [f64], row: usize, head_dim: usize, theta: f64, style: RopeStyle) {
    for (t, r) in x.chunks_exact_mut(row).enumerate() {
        for head in r.chunks_exact_mut(head_dim) {
            for i in 0..head_dim / 2 {
                let angle = t as f64 / libm::pow(theta, (2 * i) as f64 / head_dim as f64);
                let (s, c) = libm::sincos(angle);
                let (ia, ib) = style.pair(i, head_dim);
                let (a, b) = (head[ia], head[ib]);
                head[ia] = a * c - b * s;
                head[ib] = a * s + b * c;
            }
        }
    }
}

/// Causal grouped-query attention of `n` tokens: query head `h` attends over key/value head
/// `h / (heads / kv_heads)` of tokens `0..=t`, scores scaled by `1/√head_dim`.
fn gqa_causal(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
) -> Vec<f64> {
    let (w, kvw) = (heads * head_dim, kv_heads * head_dim);
    let n = q.len() / w;
    let group = heads / kv_heads;
    let mut out = vec![0.0; n * w];
    let scale = 1.0 / (head_dim as f64).sqrt();
    for t in 0..n {
        for h in 0..heads {
            let g = h / group;
            let qh = &q[t * w + h * head_dim..][..head_dim];
            let scores: Vec<f64> = (0..=t)
                .map(|j| {
                    let kj = &k[j * kvw + g * head_dim..][..head_dim];
                    qh.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>() * scale
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| libm::exp(s - max)).collect();
            let sum: f64 = e.iter().sum();
            for (j, ej) in e.iter().enumerate() {
                let vj = &v[j * kvw + g * head_dim..][..head_dim];
                for (o, x) in out[t * w + h * head_dim..][..head_dim].iter_mut().zip(vj) {
                    *o += ej / sum * x;
                }
            }
        }
    }
    out
}

impl LlamaF {
    /// Head width.
    pub fn head_dim(&self) -> usize {
        self.width.checked_div(self.heads).unwrap_or(0)
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.embedding.len().checked_div(self.width).unwrap_or(0)
    }

    /// The dimensions as the int8 model has them.
    pub fn dims(&self) -> crate::llama::LlamaDims {
        crate::llama::LlamaDims {
            layers: self.blocks.len(),
            width: self.width,
            heads: self.heads,
            kv_heads: self.kv_heads,
            hidden: self.blocks.first().map_or(0, |b| b.w1.out_features()),
            vocab: self.vocab(),
            max_positions: self.max_positions,
        }
    }

    /// Logits `[ids.len()][vocab]` of the sequence `ids` (token `t` at position `t`), telling
    /// `obs` every intermediate value. Errors: bad dimensions (as
    /// [`crate::llama::LlamaDims::validate`]), an id outside the vocabulary, a sequence longer
    /// than `max_positions`, a tensor of the wrong size.
    pub fn forward(
        &self,
        ids: &[u32],
        obs: &mut dyn crate::reference::block::Observer,
    ) -> Result<Vec<f64>, Error> {
        let dims = self.dims();
        dims.validate()?;
        let (d, v, dh) = (self.width, self.vocab(), self.head_dim());
        let kvw = self.kv_heads * dh;
        if ids.len() > self.max_positions {
            return Err(Error::BadDimension {
                what: "llama sequence longer than its positions",
                value: ids.len(),
            });
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= v) {
            return Err(Error::TokenOutOfRange {
                id,
                vocab: v as u32,
            });
        }
        for b in &self.blocks {
            crate::error::check_len("llama qkv weights", (d + 2 * kvw) * d, b.qkv.w.len())?;
            crate::error::check_len("llama wo weights", d * d, b.wo.w.len())?;
            crate::error::check_len("llama rms gamma", d, b.rms1.gamma.len())?;
            crate::error::check_len("llama rms gamma", d, b.rms2.gamma.len())?;
            let h = dims.hidden;
            crate::error::check_len("llama w1 weights", h * d, b.w1.w.len())?;
            crate::error::check_len("llama w3 weights", h * d, b.w3.w.len())?;
            crate::error::check_len("llama w2 weights", h * d, b.w2.w.len())?;
        }
        let name = |i: usize, s: &str| std::format!("l{i}.{s}");
        let mut x = Vec::with_capacity(ids.len() * d);
        for &id in ids {
            x.extend(
                self.embedding[id as usize * d..][..d]
                    .iter()
                    .map(|&e| e as f64),
            );
        }
        obs.observe("x0", &x);
        for (i, b) in self.blocks.iter().enumerate() {
            let a = b.rms1.forward(&x);
            obs.observe(&name(i, "rms1"), &a);
            let qkv = b.qkv.forward(&a);
            let stride = d + 2 * kvw;
            let (mut q, mut k, mut vv) = (Vec::new(), Vec::new(), Vec::new());
            for r in qkv.chunks_exact(stride) {
                q.extend_from_slice(&r[..d]);
                k.extend_from_slice(&r[d..d + kvw]);
                vv.extend_from_slice(&r[d + kvw..]);
            }
            obs.observe(&name(i, "q"), &q);
            obs.observe(&name(i, "k"), &k);
            obs.observe(&name(i, "v"), &vv);
            rope_rows(&mut q, d, dh, self.theta, self.style);
            rope_rows(&mut k, kvw, dh, self.theta, self.style);
            obs.observe(&name(i, "q_rope"), &q);
            obs.observe(&name(i, "k_rope"), &k);
            let ctx = gqa_causal(&q, &k, &vv, self.heads, self.kv_heads, dh);
            obs.observe(&name(i, "attn"), &ctx);
            let p = b.wo.forward(&ctx);
            obs.observe(&name(i, "proj"), &p);
            x.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
            obs.observe(&name(i, "add1"), &x);
            let a = b.rms2.forward(&x);
            obs.observe(&name(i, "rms2"), &a);
            let g = b.w1.forward(&a);
            obs.observe(&name(i, "w1"), &g);
            let u = b.w3.forward(&a);
            obs.observe(&name(i, "w3"), &u);
            let h: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(&g, &u)| g / (1.0 + libm::exp(-g)) * u)
                .collect();
            obs.observe(&name(i, "swiglu"), &h);
            let y = b.w2.forward(&h);
            obs.observe(&name(i, "w2"), &y);
            x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
            obs.observe(&name(i, "add2"), &x);
        }
        let y = self.final_norm.forward(&x);
        obs.observe("final", &y);
        let head = self.head.as_ref().unwrap_or(&self.embedding);
        crate::error::check_len("llama classifier", v * d, head.len())?;
        let mut logits = Vec::with_capacity(ids.len() * v);
        for row in y.chunks_exact(d) {
            for o in 0..v {
                let w = &head[o * d..][..d];
                logits.push(row.iter().zip(w).map(|(&a, &b)| a * b as f64).sum());
            }
        }
        obs.observe("logits", &logits);
        Ok(logits)
    }
}
