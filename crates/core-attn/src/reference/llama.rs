//! f64 references of the Llama kernels ([`crate::rmsnorm`], [`crate::rope`], [`crate::swiglu`]),
//! on real values and on dequantized int8 inputs.
//!
//! Written from the definitions, not from the kernels: RMSNorm divides by `√(mean(x²) + ε)` in
//! f64, RoPE takes `cos`/`sin` of the exact angle (no table), SwiGLU evaluates `x·σ(x)` per
//! element (no table, no fixed point).

use crate::quant::QParams;
use crate::rope::RopeStyle;
use crate::Error;
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
