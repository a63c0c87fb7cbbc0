//! f64 reference of the transformer blocks, with an observer hook at every point where the
//! int8 graph requantizes (used for calibration and for per-point error reports).

use super::kernels::{attention, linear};
use crate::block::NormPlacement;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// A float linear layer: `w` is `[out][in]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearF {
    /// `[out][in]` weights.
    pub w: Vec<f32>,
    /// `out` biases.
    pub b: Vec<f32>,
    /// Input features.
    pub in_features: usize,
}

impl LinearF {
    /// Output features.
    pub fn out_features(&self) -> usize {
        self.b.len()
    }

    /// `x · Wᵀ + b` over rows of `x`.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let w: Vec<f64> = self.w.iter().map(|&v| v as f64).collect();
        let b: Vec<f64> = self.b.iter().map(|&v| v as f64).collect();
        linear(x, &w, &b, self.in_features)
    }

    /// Rows `range` of the output features as their own layer (split a fused projection).
    pub fn slice_outputs(&self, range: core::ops::Range<usize>) -> LinearF {
        LinearF {
            w: self.w[range.start * self.in_features..range.end * self.in_features].to_vec(),
            b: self.b[range].to_vec(),
            in_features: self.in_features,
        }
    }
}

/// A float LayerNorm.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormF {
    /// Per-channel scale.
    pub gamma: Vec<f32>,
    /// Per-channel shift.
    pub beta: Vec<f32>,
    /// Added to the variance.
    pub eps: f64,
}

impl LayerNormF {
    /// Standard LayerNorm over rows (biased variance).
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let d = self.gamma.len();
        let mut y = Vec::with_capacity(x.len());
        for row in x.chunks_exact(d) {
            let mean = row.iter().sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
            let inv = 1.0 / (var + self.eps).sqrt();
            for (i, v) in row.iter().enumerate() {
                y.push((v - mean) * inv * self.gamma[i] as f64 + self.beta[i] as f64);
            }
        }
        y
    }
}

/// Which GELU a model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gelu {
    /// Exact `0.5·x·(1 + erf(x/√2))` (ViT "gelu").
    Erf,
    /// Tanh approximation (GPT-2 "gelu_new").
    Tanh,
    /// `max(x, 0)`.
    Relu,
}

impl Gelu {
    /// Evaluate.
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Gelu::Erf => crate::activation::gelu_erf(x),
            Gelu::Tanh => crate::activation::gelu_tanh(x),
            Gelu::Relu => x.max(0.0),
        }
    }
}

/// Receives every intermediate tensor of a forward pass, by name.
pub trait Observer {
    /// `point` names the tensor (e.g. `"layer0.qkv.q"`), `values` its contents.
    fn observe(&mut self, point: &str, values: &[f64]);
}

/// An observer that ignores everything.
pub struct NoObserver;

impl Observer for NoObserver {
    fn observe(&mut self, _: &str, _: &[f64]) {}
}

/// Float encoder block.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderBlockF {
    /// Pre- or post-norm.
    pub placement: NormPlacement,
    /// Heads.
    pub heads: usize,
    /// First LayerNorm.
    pub ln1: LayerNormF,
    /// Fused Q|K|V projection (`3·width` outputs).
    pub qkv: LinearF,
    /// Attention output projection.
    pub proj: LinearF,
    /// Second LayerNorm.
    pub ln2: LayerNormF,
    /// MLP up-projection.
    pub fc1: LinearF,
    /// MLP activation.
    pub act: Gelu,
    /// MLP down-projection.
    pub fc2: LinearF,
}

/// Float cross-attention sublayer.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossAttentionF {
    /// LayerNorm before the sublayer.
    pub ln: LayerNormF,
    /// Query projection.
    pub q: LinearF,
    /// Fused K|V projection of the encoder output (`2·width` outputs).
    pub kv: LinearF,
    /// Output projection.
    pub proj: LinearF,
}

/// Float pre-norm decoder block.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderBlockF {
    /// Heads.
    pub heads: usize,
    /// LayerNorm before self-attention.
    pub ln1: LayerNormF,
    /// Fused Q|K|V projection.
    pub qkv: LinearF,
    /// Self-attention output projection.
    pub proj: LinearF,
    /// Cross-attention, for encoder–decoder models.
    pub cross: Option<CrossAttentionF>,
    /// LayerNorm before the MLP.
    pub ln2: LayerNormF,
    /// MLP up-projection.
    pub fc1: LinearF,
    /// MLP activation.
    pub act: Gelu,
    /// MLP down-projection.
    pub fc2: LinearF,
}

/// Split rows of `[n][parts·w]` into `parts` tensors `[n][w]`.
pub fn split_thirds(x: &[f64], width: usize, parts: usize) -> Vec<Vec<f64>> {
    let n = x.len() / (parts * width);
    let mut out = vec![Vec::with_capacity(n * width); parts];
    for t in 0..n {
        for (p, o) in out.iter_mut().enumerate() {
            o.extend_from_slice(&x[t * parts * width + p * width..][..width]);
        }
    }
    out
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

fn name(prefix: &str, point: &str) -> String {
    let mut s = String::from(prefix);
    s.push_str(point);
    s
}

fn mlp(
    prefix: &str,
    fc1: &LinearF,
    act: Gelu,
    fc2: &LinearF,
    x: &[f64],
    obs: &mut dyn Observer,
) -> Vec<f64> {
    let h = fc1.forward(x);
    obs.observe(&name(prefix, "fc1"), &h);
    let g: Vec<f64> = h.iter().map(|&v| act.eval(v)).collect();
    obs.observe(&name(prefix, "act"), &g);
    let y = fc2.forward(&g);
    obs.observe(&name(prefix, "fc2"), &y);
    y
}

impl EncoderBlockF {
    /// Width.
    pub fn width(&self) -> usize {
        self.ln1.gamma.len()
    }

    /// Forward pass on `x` (`[n][width]`); points are named `prefix` + `ln1`, `q`, `k`, `v`,
    /// `attn`, `proj`, `add1`, `ln2`, `fc1`, `act`, `fc2`, `add2`.
    pub fn forward(&self, x: &[f64], prefix: &str, obs: &mut dyn Observer) -> Vec<f64> {
        let w = self.width();
        let pre = self.placement == NormPlacement::Pre;
        let a = if pre {
            let a = self.ln1.forward(x);
            obs.observe(&name(prefix, "ln1"), &a);
            a
        } else {
            x.to_vec()
        };
        let qkv = self.qkv.forward(&a);
        let parts = split_thirds(&qkv, w, 3);
        obs.observe(&name(prefix, "q"), &parts[0]);
        obs.observe(&name(prefix, "k"), &parts[1]);
        obs.observe(&name(prefix, "v"), &parts[2]);
        let ctx = attention(&parts[0], &parts[1], &parts[2], w, self.heads, None);
        obs.observe(&name(prefix, "attn"), &ctx);
        let p = self.proj.forward(&ctx);
        obs.observe(&name(prefix, "proj"), &p);
        let mut h = add(x, &p);
        obs.observe(&name(prefix, "add1"), &h);
        if !pre {
            h = self.ln1.forward(&h);
            obs.observe(&name(prefix, "ln1"), &h);
        }
        let m_in = if pre {
            let a = self.ln2.forward(&h);
            obs.observe(&name(prefix, "ln2"), &a);
            a
        } else {
            h.clone()
        };
        let m = mlp(prefix, &self.fc1, self.act, &self.fc2, &m_in, obs);
        let mut out = add(&h, &m);
        obs.observe(&name(prefix, "add2"), &out);
        if !pre {
            out = self.ln2.forward(&out);
            obs.observe(&name(prefix, "ln2"), &out);
        }
        out
    }
}

impl DecoderBlockF {
    /// Width.
    pub fn width(&self) -> usize {
        self.ln1.gamma.len()
    }

    /// Forward pass of a whole (causal) sequence `x` (`[n][width]`) attending `encoder`
    /// (`[m][enc_width]`) when the block has cross-attention. Points: `ln1`, `q`, `k`, `v`,
    /// `attn`, `proj`, `add1`, `cross_ln`, `cross_q`, `cross_k`, `cross_v`, `cross_attn`,
    /// `cross_proj`, `cross_add`, `ln2`, `fc1`, `act`, `fc2`, `add2`.
    pub fn forward(
        &self,
        x: &[f64],
        encoder: Option<&[f64]>,
        prefix: &str,
        obs: &mut dyn Observer,
    ) -> Vec<f64> {
        let w = self.width();
        let a = self.ln1.forward(x);
        obs.observe(&name(prefix, "ln1"), &a);
        let qkv = self.qkv.forward(&a);
        let parts = split_thirds(&qkv, w, 3);
        obs.observe(&name(prefix, "q"), &parts[0]);
        obs.observe(&name(prefix, "k"), &parts[1]);
        obs.observe(&name(prefix, "v"), &parts[2]);
        let ctx = attention(&parts[0], &parts[1], &parts[2], w, self.heads, Some(0));
        obs.observe(&name(prefix, "attn"), &ctx);
        let p = self.proj.forward(&ctx);
        obs.observe(&name(prefix, "proj"), &p);
        let mut h = add(x, &p);
        obs.observe(&name(prefix, "add1"), &h);
        if let (Some(c), Some(enc)) = (&self.cross, encoder) {
            let a = c.ln.forward(&h);
            obs.observe(&name(prefix, "cross_ln"), &a);
            let q = c.q.forward(&a);
            obs.observe(&name(prefix, "cross_q"), &q);
            let kv = c.kv.forward(enc);
            let parts = split_thirds(&kv, w, 2);
            obs.observe(&name(prefix, "cross_k"), &parts[0]);
            obs.observe(&name(prefix, "cross_v"), &parts[1]);
            let ctx = attention(&q, &parts[0], &parts[1], w, self.heads, None);
            obs.observe(&name(prefix, "cross_attn"), &ctx);
            let p = c.proj.forward(&ctx);
            obs.observe(&name(prefix, "cross_proj"), &p);
            h = add(&h, &p);
            obs.observe(&name(prefix, "cross_add"), &h);
        }
        let a = self.ln2.forward(&h);
        obs.observe(&name(prefix, "ln2"), &a);
        let m = mlp(prefix, &self.fc1, self.act, &self.fc2, &a, obs);
        let out = add(&h, &m);
        obs.observe(&name(prefix, "add2"), &out);
        out
    }
}
