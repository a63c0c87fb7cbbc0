//! f64 reference LayerNorm, on real values and on dequantized int8 rows.
//!
//! Two passes (mean, then the biased variance of the deviations), the standard definition with
//! `ε` inside the square root: `y_i = (x_i − μ)/√(σ² + ε)·γ_i + β_i`. Deliberately computed
//! differently from the integer kernel (no `D·x − S` trick, no fixed point), so that tests compare
//! against an independent computation.

use crate::requant::QParams;
use crate::Error;
use std::vec::Vec;

/// LayerNorm of one real row into `out` (same length as `x`, `gamma`, `beta`).
pub fn layer_norm_f64(
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
    out: &mut [f64],
) -> Result<(), Error> {
    if x.is_empty() {
        return Err(Error::BadDimension {
            what: "layer norm width",
            value: 0,
        });
    }
    crate::error::check_len("layer norm gamma", x.len(), gamma.len())?;
    crate::error::check_len("layer norm beta", x.len(), beta.len())?;
    crate::error::check_len("layer norm output", x.len(), out.len())?;
    let d = x.len() as f64;
    let mean = x.iter().sum::<f64>() / d;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d;
    let inv = 1.0 / (var + eps).sqrt();
    for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
        *o = (v - mean) * inv * g + b;
    }
    Ok(())
}

/// LayerNorm of every row of an int8 tensor (`[rows][gamma.len()]`), dequantized with `input`,
/// with f32 γ/β widened to f64. Returns the real outputs (not yet quantized), row-major.
pub fn layer_norm_i8(
    input: &[i8],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    input_q: QParams,
) -> Result<Vec<f64>, Error> {
    let width = gamma.len();
    if width == 0 || input.len() % width != 0 {
        return Err(Error::BadDimension {
            what: "layer norm width",
            value: width,
        });
    }
    let g: Vec<f64> = gamma.iter().map(|&v| v as f64).collect();
    let b: Vec<f64> = beta.iter().map(|&v| v as f64).collect();
    let mut out = std::vec![0.0; input.len()];
    for (row, o) in input.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let x: Vec<f64> = row.iter().map(|&q| input_q.dequantize(q)).collect();
        layer_norm_f64(&x, &g, &b, eps, o)?;
    }
    Ok(out)
}

/// [`layer_norm_i8`] quantized with the output parameters (`round(y/s) + z`, saturated): the
/// "exactly rounded" result the int8 kernel is measured against.
pub fn layer_norm_i8_quantized(
    input: &[i8],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    input_q: QParams,
    output_q: QParams,
) -> Result<Vec<i8>, Error> {
    Ok(layer_norm_i8(input, gamma, beta, eps, input_q)?
        .into_iter()
        .map(|y| output_q.quantize(y))
        .collect())
}
