//! Host twin of the Helium (MVE) linear kernels (`run` with `pass_4x2` / `pass_4x1`, and
//! `run_any` with `pass_any`, in `helium/kernels.rs`): the same dispatch, blocking, accumulation order
//! and vector requantization with each instruction emulated on 16-lane arrays, so that
//! `tests/variants.rs` checks the algorithm against the generic kernel on any host (the `asm!`
//! itself runs only on a Cortex-M55 under QEMU).
//!
//! What the kernels do, and the twin with them:
//! - 4 output rows × 2 tokens per step (× 1 token for an odd last token); every accumulator
//!   starts at its row's bias (`LDM` of 4 biases, twice for a token pair);
//! - per 16-input chunk one `VLDRB` of each token's inputs and one load of each row's 16
//!   weights, then one `VMLADAVA.S8` per (row, token): the 16 lane products summed and added to
//!   the accumulator, modulo 2^32 ([`vmladava_s8`]);
//! - the last `inf mod 16` inputs (`pass_any` only): weight loads predicated by `VCTP.8` (the
//!   other lanes zero), inputs from the zero-padded stack buffer (either one alone keeps the
//!   extra lanes out of the sum: one factor of each is zero; the predicate is what keeps the
//!   loads inside the weights);
//! - the 4 accumulators of a token requantized as one vector ([`requant_mve_form`]);
//! - the `outf mod 4` rows after the last block: `tail_rows` ([`crate::dsp::dot_i8`],
//!   [`crate::dsp::requant_i8`]).
//!
//! The unrolled passes (widths of [`crate::dsp::DSP_WIDTHS`], 4-byte aligned weights) are this arithmetic
//! with `inf mod 16 = 0` and the inputs read in place; `pass_any` takes every other width in
//! `1..=`[`MAX_ANY_WIDTH`] and any alignment.

use crate::dsp::{dot_i8, requant_i8, requant_ok, LinearArgs, Parts, MAX_ANY_WIDTH};

/// Lanes of an `.8` vector.
const LANES: usize = 16;

/// One `q` register of 16 int8 lanes.
type Q8 = [i8; LANES];

/// `VCTP.8 n` then a predicated `VLDRB.U8` of `s[at..]`: lanes `0..n` loaded, the others zero
/// (an unpredicated load is `n = 16`). Lanes past the end of `s` read as zero (a predicated
/// load stops at the end of the weights; an unpredicated one there would be a bug, which the
/// zero hides only together with the input padding).
fn vldrb(s: &[i8], at: usize, n: usize) -> Q8 {
    let mut q = [0i8; LANES];
    let src = s.get(at..).unwrap_or_default();
    for (d, &v) in q.iter_mut().zip(src).take(n) {
        *d = v;
    }
    q
}

/// `VMLADAVA.S8 rda, qn, qm`: `rda + Σ qn[i]·qm[i]` over the 16 lanes, modulo 2^32 (the
/// lane sum, at most 16·2^14 in magnitude, is exact).
#[doc(hidden)] // test hook, not part of the public API
pub fn vmladava_s8(acc: i32, x: &[i8; 16], w: &[i8; 16]) -> i32 {
    let sum: i32 = x.iter().zip(w).map(|(&a, &b)| a as i32 * b as i32).sum();
    acc.wrapping_add(sum)
}

/// One lane of the Helium requantization: `VMULH.S32` (`hi = ⌊acc·m / 2^32⌋`), `VLDRB.S32`
/// of the shift plus 2 (`VADD.I32`), `VSHL.S32` by that signed amount (negative: arithmetic
/// right shift, i.e. by `s₁ = −2 − shift`), `VADD.I32` of `c = 2·zp + 1`, then
/// `VQSHRNB.S32 #1` (`v >> 1` saturated to 16 bits) and `VQMOVNB.S16` (saturated to 8).
///
/// On the kernels' domain (`shift ∈ -31..=-2`, `zero_point ∈ -128..=127`: [`asm_requant_ok`])
/// this is [`crate::dsp::requant_asm_form`] with the `SSAT` split in two saturations, hence equal to
/// [`crate::requant::Requant::to_i8`]. Outside it, the instructions' own results (wrapping adds,
/// `VSHL` by 32 or more giving 0 or the sign).
#[doc(hidden)] // test hook, not part of the public API
pub fn requant_mve_form(acc: i32, multiplier: i32, shift: i8, zero_point: i32) -> i8 {
    let hi = ((acc as i64 * multiplier as i64) >> 32) as i32;
    // `VSHL.S32` (register) reads the signed bottom byte of each shift lane.
    let by = (shift as i32).wrapping_add(2) as i8 as i32;
    let v = match by {
        0..=31 => hi << by,
        32.. => 0,
        -31..=-1 => hi >> -by,
        _ => hi >> 31,
    };
    let c = zero_point.wrapping_mul(2).wrapping_add(1);
    let h = (v.wrapping_add(c) >> 1).clamp(i16::MIN as i32, i16::MAX as i32);
    h.clamp(i8::MIN as i32, i8::MAX as i32) as i8
}

/// The Helium linear kernels with their instructions emulated (see the module). Returns
/// `false`, writing nothing, where `helium::kernels::linear` does (the layer is not [`asm_requant_ok`], or
/// its width is outside `1..=`[`MAX_ANY_WIDTH`]: the portable kernel runs instead) and for
/// slices shorter than the shapes (which the device's callers never pass).
#[doc(hidden)] // test hook, not part of the public API
pub(crate) fn linear(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    // `helium::kernels::linear`: unaligned weights -> `linear_any`; aligned: not `asm_requant_ok` -> no;
    // a width of DSP_WIDTHS -> `run::<IN>`, else `any_width` (1..=MAX_ANY_WIDTH). Both run
    // the arithmetic below (the unrolled widths are multiples of 16: no predicated chunk).
    // Every width of DSP_WIDTHS is in 1..=MAX_ANY_WIDTH, so alignment changes nothing here.
    if !requant_ok(l) || !(1..=MAX_ANY_WIDTH).contains(&l.in_features) {
        return false;
    }
    let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
        return false;
    };
    let (inf, outf) = (p.inf, p.outf);
    let zp = l.output_zero_point;
    let blocks = outf / 4;
    let chunks = inf.div_ceil(LANES);
    // `run_any`'s input buffer: per 16-input chunk 16 bytes of token t then 16 of token t + 1,
    // zero past `inf` (the unrolled passes read the tokens in place: no padding at their widths).
    let mut xb = [0i8; 2 * MAX_ANY_WIDTH];
    // Row `o + r`'s chunk `c`: `VLDRB` at the row's pointer, predicated to the last chunk's lanes.
    let weights =
        |o: usize, c: usize| vldrb(p.w, o * inf + LANES * c, (inf - LANES * c).min(LANES));
    let mut xs = x.chunks_exact(p.inf2.get());
    let mut ys = y.chunks_exact_mut(p.outf2.get());
    for (x01, y01) in (&mut xs).zip(&mut ys) {
        let (x0, x1) = x01.split_at(inf);
        let (y0, y1) = y01.split_at_mut(outf);
        for ((d, a), b) in xb
            .chunks_exact_mut(2 * LANES)
            .zip(x0.chunks(LANES))
            .zip(x1.chunks(LANES))
        {
            let (d0, d1) = d.split_at_mut(LANES);
            for (d, s) in [(d0, a), (d1, b)] {
                let (h, t) = d.split_at_mut(s.len());
                h.copy_from_slice(s);
                t.fill(0);
            }
        }
        for b in 0..blocks {
            let o = 4 * b;
            // `LDM` of the block's 4 biases, once per token: `acc[r] = [token t, token t + 1]`.
            let mut acc = [[0i32; 2]; 4];
            for (a, &b) in acc.iter_mut().zip(&p.bias[o..o + 4]) {
                *a = [b, b];
            }
            for c in 0..chunks {
                let (q0, q1) = (
                    vldrb(&xb, 2 * LANES * c, LANES),
                    vldrb(&xb, 2 * LANES * c + LANES, LANES),
                );
                for (r, [a0, a1]) in acc.iter_mut().enumerate() {
                    let w = weights(o + r, c);
                    *a0 = vmladava_s8(*a0, &q0, &w);
                    *a1 = vmladava_s8(*a1, &q1, &w);
                }
            }
            for (r, [a0, a1]) in acc.into_iter().enumerate() {
                let (m, sh) = (p.mult[o + r], p.shift[o + r]);
                y0[o + r] = requant_mve_form(a0, m, sh, zp);
                y1[o + r] = requant_mve_form(a1, m, sh, zp);
            }
        }
        tail_rows(&p, x0, y0, 4 * blocks, zp);
        tail_rows(&p, x1, y1, 4 * blocks, zp);
    }
    // An odd last token (`pass_4x1`, or `pass_any::<false>` with the inputs at the start of
    // the buffer, zero up to the last whole chunk).
    let (x, y) = (xs.remainder(), ys.into_remainder());
    if x.len() == inf && y.len() == outf {
        let (h, t) = xb.split_at_mut(inf);
        h.copy_from_slice(x);
        t[..LANES * chunks - inf].fill(0);
        for b in 0..blocks {
            let o = 4 * b;
            let mut acc = [0i32; 4];
            acc.copy_from_slice(&p.bias[o..o + 4]);
            for c in 0..chunks {
                let q = vldrb(&xb, LANES * c, LANES);
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = vmladava_s8(*a, &q, &weights(o + r, c));
                }
            }
            for (r, &a) in acc.iter().enumerate() {
                y[o + r] = requant_mve_form(a, p.mult[o + r], p.shift[o + r], zp);
            }
        }
        tail_rows(&p, x, y, 4 * blocks, zp);
    }
    true
}

/// `tail_rows` of `dsp.rs` (the `dsp` module root, compiled there only for the `asm!` targets): outputs `from..` of
/// one token, [`dot_i8`] and [`requant_i8`] per row.
fn tail_rows(p: &crate::dsp::Params<'_>, x: &[i8], y: &mut [i8], from: usize, zp: i32) {
    let rows =
        p.w.chunks_exact(p.inf)
            .zip(p.bias)
            .zip(p.mult.iter().zip(p.shift));
    for (y, ((row, &b), (&m, &sh))) in y.iter_mut().zip(rows).skip(from) {
        *y = requant_i8(b.wrapping_add(dot_i8(x, row)), m, sh, zp);
    }
}
