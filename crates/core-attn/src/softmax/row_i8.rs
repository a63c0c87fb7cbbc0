//! Softmax of an int8 row into Q15 probabilities ([`softmax_i8`]) and its generic reference.

use super::*;

/// Softmax of an int8 row into Q15 probabilities (`probs[j] / 32768`); `diff_to_index` maps
/// one input LSB difference to table indices (`input_scale / step`).
///
/// Runs this build's native entry of [`SOFTMAX_VARIANTS`](super::SOFTMAX_VARIANTS).
#[inline]
pub fn softmax_i8(
    input: &[i8],
    diff_to_index: Requant,
    exp: ExpTable<'_>,
    probs: &mut [u16],
) -> Result<(), Error> {
    super::variants::NATIVE_I8(input, diff_to_index, exp, probs)
}

/// The fast int8 softmax on the passes `P` (the registry's entries; see
/// [`super::softmax_scores_fast`]). Inlined into the dispatcher: [`softmax_i8`] is this
/// function's only caller on a device.
#[inline(always)]
pub(crate) fn softmax_i8_fast<P: Passes>(
    input: &[i8],
    diff_to_index: Requant,
    exp: ExpTable<'_>,
    probs: &mut [u16],
) -> Result<(), Error> {
    check_len("softmax output", input.len(), probs.len())?;
    check_row_len(input.len())?;
    if P::DSP_FORM {
        if let Some(mut p) = quick_exp_loop(diff_to_index, &exp) {
            refine_i8(&mut p);
            p.max = max_i8::<P>(input) as i32;
            let sum = P::exp_pass_i8(input, probs, &p);
            let sum = if sum & (1 << 31) == 0 {
                sum
            } else {
                fix_marked_i8(input, probs, sum, p.max, diff_to_index, &exp)
            };
            scale_u16::<P>(probs, sum);
            return Ok(());
        }
    }
    // Int8 differences are dense in 0..=255: make the threshold exact (a step or two) rather
    // than fix up elements between the bounds.
    let Some(ix) = ExpIndex::new(diff_to_index).map(ExpIndex::refined) else {
        return softmax_i8_generic(input, diff_to_index, exp, probs);
    };
    let max = max_i8::<P>(input) as i32;
    // Only 256 possible inputs, but a row is usually shorter than a table: compute each
    // exponential once into `probs` (≤ 65535 fits u16), then scale in place.
    let sum = if ix.right <= 32 {
        if P::DSP_FORM {
            let sum = P::exp_pass_i8(input, probs, &ix.exp_loop(max, &exp));
            if sum & (1 << 31) == 0 {
                sum
            } else {
                // Differences between the two bounds, left as 0xffff.
                let mut sum = sum & !(1 << 31);
                for (e, &x) in probs.iter_mut().zip(input).filter(|(e, _)| **e == 0xffff) {
                    let v = ix.slow((max - x as i32) as u32, &exp);
                    *e = v as u16;
                    sum += v;
                }
                sum
            }
        } else {
            i8_exp_pass::<false>(&ix, input, max, &exp, probs)
        }
    } else {
        i8_exp_pass::<true>(&ix, input, max, &exp, probs)
    };
    scale_u16::<P>(probs, sum);
    Ok(())
}

/// `probs[j] ← probability(probs[j], round(2^47 / sum))`.
#[inline(always)]
pub(super) fn scale_u16<P: Passes>(probs: &mut [u16], sum: u32) {
    let recip = reciprocal_fast(sum);
    match u32::try_from(recip) {
        Ok(r32) => {
            let done = if !P::DSP_FORM {
                0
            } else if r32 < 1 << 31 {
                P::scale_u16::<true>(probs, r32)
            } else {
                P::scale_u16::<false>(probs, r32)
            };
            for p in probs[done..].iter_mut() {
                *p = probability32(*p as u32, r32) as u16;
            }
        }
        Err(_) => {
            for p in probs.iter_mut() {
                *p = probability(*p as u32, recip) as u16;
            }
        }
    }
}

/// Make [`quick_exp_loop`]'s bracket exact for an int8 row (differences `0..=255`, dense: a
/// marked element would be common): nothing to do when `t_lo ≥ 256` (no difference reaches
/// it); else step `t_lo` up to the first difference whose single-word index (exact below the
/// guard `2^(r−1)`) is 65535 — at most `t_hi − t_lo ≤ 4` steps.
#[inline(always)]
pub(super) fn refine_i8(p: &mut crate::dsp::softmax::ExpLoop<'_>) {
    if p.t_lo >= 256 || p.t_hi > 1 << (31 - p.sh) {
        return;
    }
    let index = |d: u32| ((((d << p.sh) as i32 as i64) * p.m as i64 + (1 << 31)) >> 32) as u32;
    while p.t_lo < p.t_hi && index(p.t_lo) < MAX_INDEX as u32 {
        p.t_lo += 1;
    }
    p.t_hi = p.t_lo;
}

/// The elements [`crate::dsp::softmax::exp_pass_i8`] marked (`0xffff`: a difference between
/// the bounds), computed exactly.
#[cold]
#[inline(never)]
pub(super) fn fix_marked_i8(
    input: &[i8],
    probs: &mut [u16],
    sum: u32,
    max: i32,
    r: Requant,
    exp: &ExpTable<'_>,
) -> u32 {
    // `quick_exp_loop` accepted `r` (multiplier `≥ 2^17`, right shift `1..=32`), which
    // `ExpIndex::new` accepts too; the generic index otherwise, for completeness.
    let ix = ExpIndex::new(r);
    debug_assert!(ix.is_some(), "quick_exp_loop accepted the requantization");
    let mut sum = sum & !(1 << 31);
    for (e, &x) in probs.iter_mut().zip(input).filter(|(e, _)| **e == 0xffff) {
        let d = (max - x as i32) as u32;
        let v = match &ix {
            Some(ix) => ix.slow(d, exp),
            None => exp.exp(r.apply(d as i32).clamp(0, MAX_INDEX) as u32),
        };
        *e = v as u16;
        sum += v;
    }
    sum
}

/// Largest element of a non-empty int8 row.
#[inline(always)]
pub(super) fn max_i8<P: Passes>(input: &[i8]) -> i8 {
    if P::DSP_FORM {
        return P::max_i8(input);
    }
    input.iter().copied().max().unwrap_or(0)
}

#[inline(always)]
pub(super) fn i8_exp_pass<const BIG: bool>(
    ix: &ExpIndex,
    input: &[i8],
    max: i32,
    exp: &ExpTable<'_>,
    probs: &mut [u16],
) -> u32 {
    let mut sum = 0u32;
    for (p, &x) in probs.iter_mut().zip(input) {
        let e = ix.exp_nonneg::<BIG>((max - x as i32) as u32, exp);
        *p = e as u16;
        sum += e;
    }
    sum
}

/// [`softmax_i8`] with the generic reference loops: the variant every optimized kernel is
/// tested against, bit for bit.
pub fn softmax_i8_generic(
    input: &[i8],
    diff_to_index: Requant,
    exp: ExpTable<'_>,
    probs: &mut [u16],
) -> Result<(), Error> {
    check_len("softmax output", input.len(), probs.len())?;
    check_row_len(input.len())?;
    let max = input.iter().copied().max().unwrap_or(0) as i32;
    let index = |x: i8| diff_to_index.apply(max - x as i32).clamp(0, MAX_INDEX) as u32;
    let sum: u32 = input.iter().map(|&x| exp.exp(index(x))).sum();
    let recip = reciprocal(sum);
    for (p, &x) in probs.iter_mut().zip(input) {
        *p = probability(exp.exp(index(x)), recip) as u16;
    }
    Ok(())
}
