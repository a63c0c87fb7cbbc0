//! The DSP linear kernel: width dispatch and the per-token-pair / per-token loops around the passes.

use super::super::*;
use super::looped::*;
use super::unrolled::*;
use super::*;
use core::mem::MaybeUninit;

/// Any width `4..=`[`MAX_ANY_WIDTH`] (runtime) with the looped passes; `CAP` words of
/// input buffer (at least `IN + 8`). `false` (nothing written) if the width does not fit
/// `CAP` or the slices are shorter than the shapes (unreachable: the caller checked them).
#[inline(never)]
fn run_any<const CAP: usize>(
    l: &LinearArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    rows: usize,
) -> bool {
    let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
        debug_assert!(false, "arm::run_any: shapes not checked");
        return false;
    };
    let (inf, outf) = (p.inf, p.outf);
    let zp = l.output_zero_point;
    if !(4..=CAP - 8).contains(&inf) {
        return false;
    }
    let c = 2 * zp + 1;
    let (c4, s8) = (inf / 4, inf / 8);
    // The words the passes read are written below before each pass.
    let mut xbuf = [MaybeUninit::<u32>::uninit(); CAP];
    let w = p.w.as_ptr();
    let mut xs = x.chunks_exact(p.inf2.get());
    let mut ys = y.chunks_exact_mut(p.outf2.get());
    for (x01, y01) in (&mut xs).zip(&mut ys) {
        let Some((x0, x1)) = x01.split_at_checked(inf) else {
            return false;
        };
        extend_pair(x0, x1, &mut xbuf, MaybeUninit::new);
        let pairs = outf / 2;
        if pairs > 0 {
            let base = xbuf.as_ptr().cast::<u32>();
            let f = FrameA2 {
                mult: p.mult.as_ptr(),
                shift: p.shift.as_ptr(),
                y: y01.as_mut_ptr(),
                outf,
                c,
                // SAFETY: within `w` (2·pairs ≤ outf rows of inf bytes).
                end_w: unsafe { w.add(2 * pairs * inf) },
                bias: p.bias.as_ptr(),
                xbase: base,
                // SAFETY: within `xbuf` (inf ≤ CAP words).
                xend: unsafe { base.add(4 * c4) },
                // SAFETY: as above.
                xtail: unsafe { base.add(inf) },
                entry: 60 * ((8 - c4 % 8) % 8) as u32,
                pad: 0,
            };
            // SAFETY: `x0`, `x1` are inf bytes each, so `extend_pair` wrote the 4·c4 chunk
            // words and the inf − 4·c4 tail words of `xbuf` (inf ≤ CAP); rows 0..2·pairs of
            // inf bytes are in `w` (outf·inf bytes); `bias`, `mult` are i32 slices and
            // `shift` an i8 slice of outf entries, shifts in -31..=-2 and zp in -128..=127
            // (`asm_requant_ok`, checked by the caller); `y01` is rows t, t+1 of the output
            // (2·outf bytes).
            unsafe { pass_2x2_any(&f, w, inf) };
        }
        if outf % 2 == 1 {
            let Some((y0, y1)) = y01.split_at_mut_checked(outf) else {
                return false;
            };
            tail_rows(&p, x0, y0, outf - 1, zp);
            tail_rows(&p, x1, y1, outf - 1, zp);
        }
    }
    // An odd last token: the remainders are its inf inputs and outf outputs.
    let (x, y) = (xs.remainder(), ys.into_remainder());
    if x.len() == inf && y.len() == outf {
        let blocks = if s8 > 0 { outf / 4 } else { 0 };
        if blocks > 0 {
            extend_one(x, &mut xbuf, MaybeUninit::new);
            let base = xbuf.as_ptr().cast::<u32>();
            let f = FrameA1 {
                mult: p.mult.as_ptr(),
                shift: p.shift.as_ptr(),
                y: y.as_mut_ptr(),
                c,
                k: 0xfefe_fefe,
                // SAFETY: within `w` (4·blocks ≤ outf rows of inf bytes).
                end_w: unsafe { w.add(4 * blocks * inf) },
                xbase: base,
                bias: p.bias.as_ptr(),
                // SAFETY: within `xbuf` (4·s8 + inf mod 8 ≤ inf ≤ CAP words).
                xend: unsafe { base.add(4 * s8) },
                // SAFETY: as above.
                xtail: unsafe { base.add(4 * s8 + inf % 8) },
                entry: 164 * ((4 - s8 % 4) % 4) as u32,
                pad: 0,
            };
            // SAFETY: `x` is inf bytes, so `extend_one` wrote the 4·s8 step words and the
            // inf mod 8 tail words of `xbuf`; rows 0..4·blocks of inf bytes are in `w`;
            // `bias`, `mult` are i32 slices and `shift` an i8 slice of outf entries, shifts
            // in -31..=-2 and zp in -128..=127 (`asm_requant_ok`, checked by the caller);
            // `y` is the token's outf outputs.
            unsafe { pass_4x1_any(&f, w, inf) };
        }
        if 4 * blocks < outf {
            tail_rows(&p, x, y, 4 * blocks, zp);
        }
    }
    true
}

pub(crate) fn linear(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    // LDRD (unrolled decode pass) needs aligned weights; blob sections are 16-byte
    // aligned. Other widths and alignments take the looped passes.
    if l.weights.as_ptr() as usize % 4 != 0 {
        return linear_any(l, input, output, rows);
    }
    if !requant_ok(l) {
        return false;
    }
    // Size-first builds keep only the looped passes (same bits).
    #[cfg(core_attn_small)]
    return any_width(l, input, output, rows);
    #[cfg(not(core_attn_small))]
    match l.in_features {
        16 => run::<16>(l, input, output, rows),
        32 => run::<32>(l, input, output, rows),
        64 => run::<64>(l, input, output, rows),
        128 => run::<128>(l, input, output, rows),
        _ => any_width(l, input, output, rows),
    }
}

/// The looped passes, if the layer qualifies.
fn linear_any(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    requant_ok(l) && any_width(l, input, output, rows)
}

/// The looped passes for a layer that is [`asm_requant_ok`], if its width qualifies.
#[inline(never)]
fn any_width(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    match l.in_features {
        #[cfg(not(core_attn_small))]
        4..=128 => run_any::<{ 128 + 8 }>(l, input, output, rows),
        #[cfg(core_attn_small)]
        4..=MAX_ANY_WIDTH => run_any::<{ MAX_ANY_WIDTH + 8 }>(l, input, output, rows),
        #[cfg(not(core_attn_small))]
        129..=MAX_ANY_WIDTH => run_any::<{ MAX_ANY_WIDTH + 8 }>(l, input, output, rows),
        _ => false,
    }
}

/// The unrolled passes for width `IN` (4-byte aligned weights, [`asm_requant_ok`]: checked
/// by the caller). `false` (nothing written) if the width is not `IN` or the slices are
/// shorter than the shapes (unreachable: the caller checked them).
#[cfg_attr(core_attn_small, allow(dead_code))]
fn run<const IN: usize>(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
        debug_assert!(false, "arm::run: shapes not checked");
        return false;
    };
    if p.inf != IN {
        return false;
    }
    let outf = p.outf;
    let zp = l.output_zero_point;
    let c = 2 * zp + 1;
    // Fully written by `extend_pair` / `extend_one` before the asm reads it.
    let mut xbuf = [MaybeUninit::<u32>::uninit(); IN];
    let w = p.w.as_ptr();
    let mut xs = x.chunks_exact(2 * IN);
    let mut ys = y.chunks_exact_mut(p.outf2.get());
    for (x01, y01) in (&mut xs).zip(&mut ys) {
        let Some((x0, x1)) = x01.split_at_checked(IN) else {
            return false;
        };
        extend_pair(x0, x1, &mut xbuf, MaybeUninit::new);
        let pairs = outf / 2;
        if pairs > 0 {
            let f = Frame2 {
                mult: p.mult.as_ptr(),
                shift: p.shift.as_ptr(),
                y: y01.as_mut_ptr(),
                outf,
                c,
                // SAFETY: within `w` (2·pairs ≤ outf rows of IN bytes).
                end_w: unsafe { w.add(2 * pairs * IN) },
            };
            // SAFETY: `x0`, `x1` are IN bytes each (IN a multiple of 4), so `extend_pair`
            // wrote all IN aligned words of `xbuf`; rows 0..2·pairs of IN bytes are in `w`
            // (outf·IN bytes); `bias`, `mult` are i32 slices and `shift` an i8 slice of outf
            // entries, shifts in -31..=-2 and zp in -128..=127 (`asm_requant_ok`, checked by
            // the caller); `y01` is rows t, t+1 of the output (2·outf bytes).
            unsafe { pass_2x2::<IN>(&f, xbuf.as_ptr().cast(), w, p.bias.as_ptr()) };
        }
        if outf % 2 == 1 {
            let Some((y0, y1)) = y01.split_at_mut_checked(outf) else {
                return false;
            };
            tail_rows(&p, x0, y0, outf - 1, zp);
            tail_rows(&p, x1, y1, outf - 1, zp);
        }
    }
    // An odd last token: the remainders are its IN inputs and outf outputs.
    let (x, y) = (xs.remainder(), ys.into_remainder());
    if x.len() == IN && y.len() == outf {
        extend_one(x, &mut xbuf, MaybeUninit::new);
        let blocks = outf / 4;
        if blocks > 0 {
            let shift = p.shift.as_ptr();
            let yp = y.as_mut_ptr();
            let dist = |a: usize, b: usize| a.wrapping_sub(b) as u32;
            let f = Frame1 {
                // Multipliers of block k at bias + 16·(k + 1) + dm (after the bias LDM).
                dm: dist(p.mult.as_ptr() as usize, p.bias.as_ptr() as usize).wrapping_sub(16),
                shift,
                // Outputs of block k at shift + 4·(k + 1) + dy (after the shift load).
                dy: dist(yp as usize, shift as usize).wrapping_sub(4),
                c,
                k: 0xfefe_fefe,
                // SAFETY: within `w` (4·blocks ≤ outf rows of IN bytes).
                end_w: unsafe { w.add(4 * blocks * IN) },
                xbase: xbuf.as_ptr().cast(),
                pad: 0,
            };
            // SAFETY: `x` is IN bytes (IN a multiple of 8), so `extend_one` wrote IN/2
            // aligned words of `xbuf`; rows 0..4·blocks of IN bytes are in `w`, which is
            // 4-byte aligned (checked by the caller); `bias`, `mult` are i32 slices and
            // `shift` an i8 slice of outf entries, shifts in -31..=-2 and zp in -128..=127
            // (`asm_requant_ok`, checked by the caller); `y` is the token's outf outputs.
            unsafe { pass_4x1::<IN>(&f, w, p.bias.as_ptr()) };
        }
        if 4 * blocks < outf {
            tail_rows(&p, x, y, 4 * blocks, zp);
        }
    }
    true
}
