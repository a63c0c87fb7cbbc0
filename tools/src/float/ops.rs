//! The f32 building blocks of the reference forward passes: linear layers, LayerNorm,
//! activations, softmax and multi-head attention. Dot products and LayerNorm statistics
//! accumulate in f64, so the reference is at least as accurate as PyTorch's f32.

use crate::checkpoint::config::Activation;
use crate::model::{LayerNorm, Linear, Mat};

/// `x W^T + b` for every row of `x`.
pub fn linear(x: &Mat, l: &Linear) -> Mat {
    assert_eq!(x.cols, l.in_dim, "linear: input width");
    let mut y = Mat::zeros(x.rows, l.out_dim);
    for r in 0..x.rows {
        let xr = x.row(r);
        let yr = y.row_mut(r);
        for (o, out) in yr.iter_mut().enumerate() {
            let w = &l.weight[o * l.in_dim..(o + 1) * l.in_dim];
            let mut acc = l.bias.as_ref().map_or(0.0, |b| b[o] as f64);
            acc += dot(xr, w);
            *out = acc as f32;
        }
    }
    y
}

/// Dot product with an f64 accumulator.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// `x @ m^T` (no bias): used for the tied LM head (`m` = `wte`, `[V, D]`).
pub fn matmul_t(x: &Mat, m: &Mat) -> Mat {
    assert_eq!(x.cols, m.cols, "matmul_t: inner dimension");
    let mut y = Mat::zeros(x.rows, m.rows);
    for r in 0..x.rows {
        for c in 0..m.rows {
            y.data[r * m.rows + c] = dot(x.row(r), m.row(c)) as f32;
        }
    }
    y
}

/// LayerNorm of every row (biased variance, eps inside the square root).
pub fn layer_norm(x: &Mat, ln: &LayerNorm) -> Mat {
    assert_eq!(x.cols, ln.gamma.len(), "layer_norm: width");
    let mut y = Mat::zeros(x.rows, x.cols);
    let n = x.cols as f64;
    for r in 0..x.rows {
        let xr = x.row(r);
        let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + ln.eps).sqrt();
        for (i, out) in y.row_mut(r).iter_mut().enumerate() {
            *out = ((xr[i] as f64 - mean) * inv * ln.gamma[i] as f64 + ln.beta[i] as f64) as f32;
        }
    }
    y
}

/// Exact GELU: `0.5 x (1 + erf(x / sqrt 2))`.
pub fn gelu_erf(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

/// Tanh GELU (`gelu_new`): `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub fn gelu_tanh(x: f32) -> f32 {
    let x = x as f64;
    let k = (2.0 / std::f64::consts::PI).sqrt();
    (0.5 * x * (1.0 + libm::tanh(k * (x + 0.044715 * x * x * x)))) as f32
}

/// Applies `act` element-wise.
pub fn activate(x: &mut Mat, act: Activation) {
    let f: fn(f32) -> f32 = match act {
        Activation::GeluErf => gelu_erf,
        Activation::GeluTanh => gelu_tanh,
        Activation::Relu => |v| v.max(0.0),
    };
    x.data.iter_mut().for_each(|v| *v = f(*v));
}

/// In-place numerically stable softmax (max subtracted first).
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    let e: Vec<f64> = row
        .iter()
        .map(|&v| {
            let e = libm::exp((v - max) as f64);
            sum += e;
            e
        })
        .collect();
    for (o, e) in row.iter_mut().zip(e) {
        *o = (e / sum) as f32;
    }
}

/// `a += b` element-wise.
pub fn add_assign(a: &mut Mat, b: &Mat) {
    assert_eq!((a.rows, a.cols), (b.rows, b.cols), "add_assign: shapes");
    a.data.iter_mut().zip(&b.data).for_each(|(x, y)| *x += y);
}

/// Index of the largest value (first one on ties, like `torch.argmax`). NaN never wins.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] || v[best].is_nan() {
            best = i;
        }
    }
    best
}

/// Multi-head scaled dot-product attention.
///
/// `q` is `[Tq, D]`, `k` and `v` are `[Tk, D]`; head `h` uses columns `h*hd .. (h+1)*hd`.
/// Scores are `q k^T * scale`; with `causal`, query `i` attends to keys `j <= i` only.
/// Computed one query row at a time. Returns the concatenated context `[Tq, D]` and, if
/// `want_probs`, the probabilities `[heads, Tq, Tk]`.
pub fn attention(
    q: &Mat,
    k: &Mat,
    v: &Mat,
    heads: usize,
    scale: f64,
    causal: bool,
    want_probs: bool,
) -> (Mat, Option<Vec<f32>>) {
    let (tq, tk, d) = (q.rows, k.rows, q.cols);
    assert_eq!(k.cols, d, "attention: key width");
    assert_eq!((v.rows, v.cols), (tk, d), "attention: value shape");
    let hd = d / heads;
    let mut ctx = Mat::zeros(tq, d);
    let mut probs = want_probs.then(|| vec![0.0f32; heads * tq * tk]);
    let mut scores = vec![0.0f32; tk];
    for h in 0..heads {
        let cols = h * hd..(h + 1) * hd;
        for i in 0..tq {
            let n = if causal { (i + 1).min(tk) } else { tk };
            let qi = &q.row(i)[cols.clone()];
            for (j, s) in scores[..n].iter_mut().enumerate() {
                *s = (dot(qi, &k.row(j)[cols.clone()]) * scale) as f32;
            }
            softmax(&mut scores[..n]);
            if let Some(p) = probs.as_mut() {
                p[(h * tq + i) * tk..(h * tq + i) * tk + n].copy_from_slice(&scores[..n]);
            }
            let out = &mut ctx.row_mut(i)[cols.clone()];
            for (c, o) in out.iter_mut().enumerate() {
                let mut acc = 0.0f64;
                for (j, &p) in scores[..n].iter().enumerate() {
                    acc += p as f64 * v.data[j * d + h * hd + c] as f64;
                }
                *o = acc as f32;
            }
        }
    }
    (ctx, probs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_values() {
        // torch.nn.functional.gelu(torch.tensor([1.0, -0.5])) and approximate="tanh".
        assert!((gelu_erf(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_erf(-0.5) + 0.154_268_5).abs() < 1e-6);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-6);
    }

    #[test]
    fn softmax_and_argmax() {
        let mut r = [1.0, 2.0, 3.0];
        softmax(&mut r);
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((r[2] - 0.665_240_9).abs() < 1e-6);
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    }

    #[test]
    fn causal_attention_first_row_copies_first_value() {
        let q = Mat::from_vec(2, 2, vec![1.0, 0.0, 0.0, 1.0]);
        let v = Mat::from_vec(2, 2, vec![5.0, 6.0, 7.0, 8.0]);
        let (ctx, p) = attention(&q, &q, &v, 1, 1.0, true, true);
        assert_eq!(ctx.row(0), &[5.0, 6.0]);
        let p = p.unwrap();
        assert_eq!(&p[..2], &[1.0, 0.0]);
    }
}
