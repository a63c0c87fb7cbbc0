//! f64 references of the linear layer, softmax and attention, on dequantized values.

use std::vec;
use std::vec::Vec;

/// `y = x · Wᵀ + b` for row-major `x [n][in]`, `w [out][in]`.
pub fn linear(x: &[f64], w: &[f64], b: &[f64], in_features: usize) -> Vec<f64> {
    let out_features = b.len();
    let n = x.len() / in_features;
    let mut y = vec![0.0; n * out_features];
    for t in 0..n {
        for o in 0..out_features {
            let mut acc = b[o];
            for i in 0..in_features {
                acc += x[t * in_features + i] * w[o * in_features + i];
            }
            y[t * out_features + o] = acc;
        }
    }
    y
}

/// Numerically stable softmax of one row.
pub fn softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|&v| libm::exp(v - m)).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Multi-head scaled dot-product attention of `q [nq][d]` over `k, v [nk][d]`.
///
/// `causal_first` = `Some(p)` lets query `i` see keys `0..=p + i` only.
pub fn attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    width: usize,
    heads: usize,
    causal_first: Option<usize>,
) -> Vec<f64> {
    let dh = width / heads;
    let nq = q.len() / width;
    let nk = k.len() / width;
    let scale = 1.0 / (dh as f64).sqrt();
    let mut out = vec![0.0; nq * width];
    for i in 0..nq {
        let visible = match causal_first {
            Some(p) => (p + i + 1).min(nk),
            None => nk,
        };
        for h in 0..heads {
            let scores: Vec<f64> = (0..visible)
                .map(|j| {
                    (0..dh)
                        .map(|d| q[i * width + h * dh + d] * k[j * width + h * dh + d])
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let p = softmax(&scores);
            for d in 0..dh {
                out[i * width + h * dh + d] =
                    (0..visible).map(|j| p[j] * v[j * width + h * dh + d]).sum();
            }
        }
    }
    out
}

/// Signal-to-quantization-noise ratio in dB of `test` against `reference`.
pub fn sqnr_db(reference: &[f64], test: &[f64]) -> f64 {
    let signal: f64 = reference.iter().map(|x| x * x).sum();
    let noise: f64 = reference
        .iter()
        .zip(test)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}
