//! An on-device f32 baseline on the Cortex-M4F's FPU: the first encoder block's QKV
//! projection (`T` tokens × `D` → `3·D`) as an f32 matrix product against core-attn's int8
//! `Linear` on the same shape, plus an f32 softmax over `T` scores (`micromath` exp) and an
//! f32 LayerNorm of the `T` rows (`micromath` sqrt). Prints `baseline ...` lines with DWT
//! cycles. Only timing is compared: the f32 weights are the int8 weights / 128, not the
//! checkpoint's floats (those are not on the device).

use core::fmt::Write;

use board_common::core_attn::blob::Blob;
use board_common::core_attn::linear::Activation;
use board_common::{Clock, Embedded};
use micromath::F32Ext;

const MAX_T: usize = 32;
const MAX_D: usize = 48;

/// f32 working memory (RAM), sized for encoders up to `MAX_T` tokens of width `MAX_D`.
pub struct Buffers {
    w: [f32; 3 * MAX_D * MAX_D],
    x: [f32; MAX_T * MAX_D],
    y: [f32; MAX_T * 3 * MAX_D],
    xq: [i8; MAX_T * MAX_D],
    yq: [i8; MAX_T * 3 * MAX_D],
}

impl Buffers {
    /// Zeroed (in `.bss`).
    pub const fn new() -> Self {
        Buffers {
            w: [0.0; 3 * MAX_D * MAX_D],
            x: [0.0; MAX_T * MAX_D],
            y: [0.0; MAX_T * 3 * MAX_D],
            xq: [0; MAX_T * MAX_D],
            yq: [0; MAX_T * 3 * MAX_D],
        }
    }
}

/// Run the baseline on the first embedded model with an encoder (skipped when none fits).
pub fn run(models: &[Embedded], b: &mut Buffers, out: &mut dyn Write, clock: &mut dyn Clock) {
    let Some(blob) = models
        .iter()
        .filter_map(|m| Blob::parse(m.blob).ok())
        .find(|b| b.kind().has_encoder())
    else {
        let _ = writeln!(out, "baseline skipped: no encoder model embedded");
        return;
    };
    let e = blob.header().encoder;
    let (t, d) = (e.tokens(), e.width);
    let Ok(block) = blob.encoder_block(0) else {
        return;
    };
    let lin = block.qkv;
    let o = lin.out_features;
    if t > MAX_T || d > MAX_D || o > 3 * MAX_D || lin.in_features != d {
        let _ = writeln!(out, "baseline skipped: encoder larger than {MAX_T}x{MAX_D}");
        return;
    }
    for (i, v) in b.xq[..t * d].iter_mut().enumerate() {
        *v = ((i * 37) % 255) as u8 as i8;
    }
    for (f, q) in b.x.iter_mut().zip(&b.xq[..t * d]) {
        *f = *q as f32 / 128.0;
    }
    for (f, q) in b.w.iter_mut().zip(lin.weights) {
        *f = *q as f32 / 128.0;
    }
    let macs = (t * d * o) as u64;
    let c0 = clock.now();
    let ok = lin
        .run(&b.xq[..t * d], &mut b.yq[..t * o], Activation::Identity)
        .is_ok();
    let c1 = clock.now();
    for r in 0..t {
        let xr = &b.x[r * d..(r + 1) * d];
        for c in 0..o {
            let wr = &b.w[c * d..(c + 1) * d];
            let mut acc = 0.0f32;
            for k in 0..d {
                acc += xr[k] * wr[k];
            }
            b.y[r * o + c] = acc;
        }
    }
    let c2 = clock.now();
    // Softmax over the first T outputs of row 0 (as scores) with micromath's exp.
    let s = &mut b.y[..t];
    let max = s.iter().fold(f32::MIN, |m, &v| m.max(v));
    let mut sum = 0.0;
    for v in s.iter_mut() {
        *v = F32Ext::exp(*v - max);
        sum += *v;
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
    let c3 = clock.now();
    // LayerNorm of the T input rows with micromath's sqrt (gamma 1, beta 0, eps 1e-5).
    for r in 0..t {
        let row = &mut b.x[r * d..(r + 1) * d];
        let mean = row.iter().sum::<f32>() / d as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let inv = 1.0 / F32Ext::sqrt(var + 1e-5);
        for v in row.iter_mut() {
            *v = (*v - mean) * inv;
        }
    }
    let c4 = clock.now();
    let unit = clock.unit();
    let (i8c, f32c) = (c1 - c0, c2 - c1);
    let _ = writeln!(
        out,
        "baseline linear {t}x{d}->{o} macs {macs} int8 {unit} {i8c} ({} MAC/1000 {unit}) ok {ok} \
         f32 {unit} {f32c} ({} MAC/1000 {unit})",
        macs * 1000 / i8c.max(1),
        macs * 1000 / f32c.max(1)
    );
    let _ = writeln!(
        out,
        "baseline f32 softmax {t} {unit} {} layernorm {t}x{d} {unit} {} (checksum {})",
        c3 - c2,
        c4 - c3,
        (b.y[0] * 1000.0) as i32 + (b.x[0] * 1000.0) as i32
    );
}
