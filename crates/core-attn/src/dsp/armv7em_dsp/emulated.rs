//! Host twin of the DSP linear kernels: the same buffers, blocking and requantization with the
//! instructions emulated, run by `tests/variants.rs`.

use super::super::{
    dot_i8, requant_asm_form, requant_i8, requant_ok, LinearArgs, DSP_WIDTHS, MAX_ANY_WIDTH,
    MAX_DSP_WIDTH,
};
use super::{extend_one, extend_pair, sxtb16, sxtb16_ror8};
use crate::dsp::intrinsics::smlad;

/// The DSP linear algorithm with the instructions emulated ([`sxtb16`], [`smlad`],
/// [`requant_asm_form`]): same buffer layouts, blocking and requantization as the `asm!`
/// kernels, runnable on any host so that the suite in `tests/variants.rs` checks the algorithm
/// where the `asm!` cannot run: the unrolled kernels for [`DSP_WIDTHS`], the looped ones
/// (`linear_dsp_any_emulated`) for the other widths. Returns `false` (doing nothing) for
/// layers the DSP kernels do not handle (width outside `4..=`[`MAX_ANY_WIDTH`], or not
/// [`asm_requant_ok`]).
pub(crate) fn linear(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    let (inf, outf) = (l.in_features, l.out_features);
    if !requant_ok(l) || !(4..=MAX_ANY_WIDTH).contains(&inf) {
        return false;
    }
    if !DSP_WIDTHS.contains(&inf) {
        linear_dsp_any_emulated(l, input, output, rows);
        return true;
    }
    let zp = l.output_zero_point;
    let rq = |o: usize, acc: i32| requant_asm_form(acc, l.multipliers[o], l.shifts[o], zp);
    let mut xbuf = [0u32; MAX_DSP_WIDTH];
    let word = |s: &[i8], c: usize| {
        u32::from_le_bytes([
            s[4 * c] as u8,
            s[4 * c + 1] as u8,
            s[4 * c + 2] as u8,
            s[4 * c + 3] as u8,
        ])
    };
    let mut t = 0;
    while t + 2 <= rows {
        let x0 = &input[t * inf..(t + 1) * inf];
        let x1 = &input[(t + 1) * inf..(t + 2) * inf];
        extend_pair(x0, x1, &mut xbuf, |v| v);
        let mut o = 0;
        while o + 2 <= outf {
            let mut a = [l.bias[o], l.bias[o], l.bias[o + 1], l.bias[o + 1]];
            for c in 0..inf / 4 {
                let x = &xbuf[4 * c..4 * c + 4];
                for (r, pair_acc) in [(0usize, 0usize), (1, 2)] {
                    let w = word(&l.weights[(o + r) * inf..], c);
                    let (we, wo) = (sxtb16(w), sxtb16_ror8(w));
                    a[pair_acc] = smlad(x[1], wo, smlad(x[0], we, a[pair_acc]));
                    a[pair_acc + 1] = smlad(x[3], wo, smlad(x[2], we, a[pair_acc + 1]));
                }
            }
            output[t * outf + o] = rq(o, a[0]);
            output[(t + 1) * outf + o] = rq(o, a[1]);
            output[t * outf + o + 1] = rq(o + 1, a[2]);
            output[(t + 1) * outf + o + 1] = rq(o + 1, a[3]);
            o += 2;
        }
        if o < outf {
            tail_row(l, input, output, t, o, zp);
            tail_row(l, input, output, t + 1, o, zp);
        }
        t += 2;
    }
    if t < rows {
        extend_one(&input[t * inf..(t + 1) * inf], &mut xbuf, |v| v);
        let mut o = 0;
        while o + 4 <= outf {
            let mut a = [l.bias[o], l.bias[o + 1], l.bias[o + 2], l.bias[o + 3]];
            for c in 0..inf / 4 {
                let (xe, xo) = (xbuf[2 * c], xbuf[2 * c + 1]);
                for (r, acc) in a.iter_mut().enumerate() {
                    let w = word(&l.weights[(o + r) * inf..], c);
                    *acc = smlad(xo, sxtb16_ror8(w), smlad(xe, sxtb16(w), *acc));
                }
            }
            for (r, &acc) in a.iter().enumerate() {
                output[t * outf + o + r] = rq(o + r, acc);
            }
            o += 4;
        }
        while o < outf {
            tail_row(l, input, output, t, o, zp);
            o += 1;
        }
    }
    true
}

/// The looped DSP passes (any width, `kernels::run_any`) emulated: 4-input chunks then
/// `SMLABB`/`SMLATB` byte tails for token pairs, 8-input steps then `SMLABB` byte tails for
/// one token, the same buffers and requantization.
fn linear_dsp_any_emulated(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    let (inf, outf) = (l.in_features, l.out_features);
    let zp = l.output_zero_point;
    let rq = |o: usize, acc: i32| requant_asm_form(acc, l.multipliers[o], l.shifts[o], zp);
    let (c4, s8) = (inf / 4, inf / 8);
    let mut xbuf = [0u32; MAX_ANY_WIDTH + 8];
    let word = |s: &[i8], at: usize| {
        u32::from_le_bytes([
            s[at] as u8,
            s[at + 1] as u8,
            s[at + 2] as u8,
            s[at + 3] as u8,
        ])
    };
    // `SMLABB` / `SMLATB`: bottom or top signed half of `x` times the low half of `w`.
    let bot = |x: u32| x as u16 as i16 as i32;
    let top = |x: u32| (x >> 16) as u16 as i16 as i32;
    let mut t = 0;
    while t + 2 <= rows {
        let x0 = &input[t * inf..(t + 1) * inf];
        let x1 = &input[(t + 1) * inf..(t + 2) * inf];
        extend_pair(x0, x1, &mut xbuf, |v| v);
        let mut o = 0;
        while o + 2 <= outf {
            let mut a = [l.bias[o], l.bias[o], l.bias[o + 1], l.bias[o + 1]];
            for c in 0..c4 {
                let x = &xbuf[4 * c..4 * c + 4];
                for (r, pair_acc) in [(0usize, 0usize), (1, 2)] {
                    let w = word(&l.weights[(o + r) * inf..], 4 * c);
                    let (we, wo) = (sxtb16(w), sxtb16_ror8(w));
                    a[pair_acc] = smlad(x[1], wo, smlad(x[0], we, a[pair_acc]));
                    a[pair_acc + 1] = smlad(x[3], wo, smlad(x[2], we, a[pair_acc + 1]));
                }
            }
            for (j, &x) in xbuf.iter().enumerate().take(inf).skip(4 * c4) {
                for (r, pair_acc) in [(0usize, 0usize), (1, 2)] {
                    let w = l.weights[(o + r) * inf + j] as i32;
                    a[pair_acc] = a[pair_acc].wrapping_add(bot(x) * w);
                    a[pair_acc + 1] = a[pair_acc + 1].wrapping_add(top(x) * w);
                }
            }
            output[t * outf + o] = rq(o, a[0]);
            output[(t + 1) * outf + o] = rq(o, a[1]);
            output[t * outf + o + 1] = rq(o + 1, a[2]);
            output[(t + 1) * outf + o + 1] = rq(o + 1, a[3]);
            o += 2;
        }
        if o < outf {
            tail_row(l, input, output, t, o, zp);
            tail_row(l, input, output, t + 1, o, zp);
        }
        t += 2;
    }
    if t < rows {
        let x = &input[t * inf..(t + 1) * inf];
        extend_one(x, &mut xbuf, |v| v);
        let mut o = 0;
        while s8 > 0 && o + 4 <= outf {
            let mut a = [l.bias[o], l.bias[o + 1], l.bias[o + 2], l.bias[o + 3]];
            for (r, acc) in a.iter_mut().enumerate() {
                let row = &l.weights[(o + r) * inf..(o + r + 1) * inf];
                for s in 0..s8 {
                    let xs = &xbuf[4 * s..4 * s + 4];
                    let (w0, w1) = (word(row, 8 * s), word(row, 8 * s + 4));
                    *acc = smlad(xs[1], sxtb16_ror8(w0), smlad(xs[0], sxtb16(w0), *acc));
                    *acc = smlad(xs[3], sxtb16_ror8(w1), smlad(xs[2], sxtb16(w1), *acc));
                }
                for j in 8 * s8..inf {
                    *acc = acc.wrapping_add(bot(xbuf[4 * s8 + j - 8 * s8]) * row[j] as i32);
                }
            }
            for (r, &acc) in a.iter().enumerate() {
                output[t * outf + o + r] = rq(o + r, acc);
            }
            o += 4;
        }
        while o < outf {
            tail_row(l, input, output, t, o, zp);
            o += 1;
        }
    }
}

/// One output of one token, outside the blocked passes (odd rows): [`dot_i8`] (`SMLAD` where
/// the target has it) and [`requant_i8`]. For the host twins ([`linear_dsp_emulated`]; they
/// index, and may panic on shapes the caller did not check); the device paths use `tail_rows`.
#[inline(never)]
fn tail_row(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], t: usize, o: usize, zp: i32) {
    let inf = l.in_features;
    let acc = l.bias[o].wrapping_add(dot_i8(
        &input[t * inf..(t + 1) * inf],
        &l.weights[o * inf..(o + 1) * inf],
    ));
    output[t * l.out_features + o] = requant_i8(acc, l.multipliers[o], l.shifts[o], zp);
}
