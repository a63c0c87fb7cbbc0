//! Pack-time scale migration of a Llama (SmoothQuant-style, no change to the blob format or the
//! kernels): an activation channel `c` that is quantized per tensor is divided by `s_c` where it
//! is produced and its consuming weights' column `c` multiplied by `s_c`, so the float model
//! computes the same function while the channel ranges of the quantized activation come closer
//! together (one outlier channel no longer sets the scale of all the others).
//!
//! Where (measured with `examples/llama_error_budget.rs` on `models/llama-kjv`: the SwiGLU
//! product `h = silu(W1·b) ⊙ (W3·b)` carries most of the int8 logit error, RMS 0.20 of 0.27
//! when quantized alone): `h_c` is divided by `s_c` through W3's row `c` (the product is linear
//! in the up projection), W2's column `c` is multiplied by `s_c`.
//!
//! Every `s_c` is a power of two: multiplying an f32 weight by `2^k` is exact (away from
//! overflow and subnormals, which [`migrate_swiglu`] refuses), and so are the f64 products and
//! sums of the reference, so the migrated float model gives bit for bit the logits of the
//! original. W3 and W2 are quantized per output row: W3's rows scale with their own scales
//! (their int8 values do not change); W2's rows get the migrated columns.

use std::collections::BTreeMap;

use core_attn::reference::block::Observer;
use core_attn::reference::llama::LlamaF;

use crate::error::{Error, Result};

/// The largest `|value|` per channel of chosen observation points (an [`Observer`] of
/// `LlamaF::forward`; channel = index modulo the point's width).
#[derive(Debug, Clone, Default)]
pub struct ChannelMax {
    widths: BTreeMap<String, usize>,
    /// Per point, the largest magnitude seen in each channel.
    pub max: BTreeMap<String, Vec<f64>>,
}

impl ChannelMax {
    /// Watch `point`, `width` channels wide.
    pub fn watch(&mut self, point: &str, width: usize) {
        self.widths.insert(point.to_string(), width);
    }
}

impl Observer for ChannelMax {
    fn observe(&mut self, point: &str, values: &[f64]) {
        let Some(&w) = self.widths.get(point) else {
            return;
        };
        if w == 0 {
            return;
        }
        let m = self
            .max
            .entry(point.to_string())
            .or_insert_with(|| vec![0.0; w]);
        for row in values.chunks_exact(w) {
            for (a, &v) in m.iter_mut().zip(row) {
                *a = a.max(v.abs());
            }
        }
    }
}

/// Largest power-of-two exponent a migration scale may have (either sign).
pub const MAX_SHIFT: i32 = 8;

/// The power of two nearest `x` (in the log domain), within `2^±MAX_SHIFT`; 1 for a
/// non-positive or non-finite `x`.
pub fn pow2_near(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let k = x.log2().round().clamp(-MAX_SHIFT as f64, MAX_SHIFT as f64) as i32;
    core_attn::requant::pow2(k)
}

/// SmoothQuant scales `s_c = 2^round(log2(a_c^α / w_c^(1−α) / g))` of channels whose activation
/// reaches `a_c` and whose consuming weight column reaches `w_c`, `g` their geometric mean
/// (so that the scales centre on 1); a channel that never fires (or has no weight) keeps 1.
pub fn smooth_scales(act_max: &[f64], weight_max: &[f64], alpha: f64) -> Vec<f64> {
    let raw: Vec<Option<f64>> = act_max
        .iter()
        .zip(weight_max)
        .map(|(&a, &w)| (a > 0.0 && w > 0.0).then(|| alpha * a.log2() - (1.0 - alpha) * w.log2()))
        .collect();
    let live: Vec<f64> = raw.iter().flatten().copied().collect();
    let mean = if live.is_empty() {
        0.0
    } else {
        live.iter().sum::<f64>() / live.len() as f64
    };
    raw.iter()
        .map(|r| r.map_or(1.0, |l| pow2_near((l - mean).exp2())))
        .collect()
}

/// Divide the SwiGLU product's channels of every block by SmoothQuant scales (strength
/// `alpha`, see [`smooth_scales`]) computed from `stats` (the `l{i}.swiglu` points of
/// [`ChannelMax`]): W3's row `c` (and bias) times `1/s_c`, W2's column `c` times `s_c`.
/// Returns the scales per block. Errors: a missing statistic, or a scaled weight that would
/// leave the normal f32 range (the migration would not be exact).
pub fn migrate_swiglu(f: &mut LlamaF, stats: &ChannelMax, alpha: f64) -> Result<Vec<Vec<f64>>> {
    let mut all = Vec::with_capacity(f.blocks.len());
    for (i, b) in f.blocks.iter_mut().enumerate() {
        let point = format!("l{i}.swiglu");
        let hidden = b.w3.out_features();
        let act = stats
            .max
            .get(&point)
            .filter(|m| m.len() == hidden)
            .ok_or_else(|| Error::Int8(format!("scale migration: no statistics for {point}")))?;
        let cols = b.w2.in_features;
        if cols != hidden || b.w3.w.len() != hidden * b.w3.in_features {
            return Err(Error::Int8(format!(
                "scale migration: block {i}: W3 has {hidden} outputs, W2 {cols} inputs"
            )));
        }
        let mut wmax = vec![0.0f64; cols];
        for row in b.w2.w.chunks_exact(cols) {
            for (m, &v) in wmax.iter_mut().zip(row) {
                *m = m.max((v as f64).abs());
            }
        }
        let s = smooth_scales(act, &wmax, alpha);
        let exact = |v: f32| v == 0.0 || (v.is_normal() && v.abs() < f32::MAX / 2.0);
        let scale = |v: &mut f32, by: f64| -> Result<()> {
            let out = (*v as f64 * by) as f32;
            if !exact(out) {
                return Err(Error::Int8(format!(
                    "scale migration: block {i}: weight {v} times {by} leaves the normal f32 range"
                )));
            }
            *v = out;
            Ok(())
        };
        let inf = b.w3.in_features;
        for (c, &sc) in s.iter().enumerate() {
            for v in &mut b.w3.w[c * inf..][..inf] {
                scale(v, 1.0 / sc)?;
            }
            scale(&mut b.w3.b[c], 1.0 / sc)?;
        }
        for row in b.w2.w.chunks_exact_mut(cols) {
            for (v, &sc) in row.iter_mut().zip(&s) {
                scale(v, sc)?;
            }
        }
        all.push(s);
    }
    Ok(all)
}
