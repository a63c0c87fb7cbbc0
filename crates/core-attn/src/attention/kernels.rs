//! The inner loops [`Attention`](super::Attention) selects from: packing one head's V into
//! sign-extended key pairs, scores and weighted sums unrolled per head width, and the exact
//! correction for rows whose probabilities do not fit the packed form.

use super::*;

/// What [`Attention::check`] established, kept in types the compiler sees through calls: the
/// key count `nk = k.rows() = v.rows()` (`≤ MAX_SEQ_LEN`, `≤ scratch.len()`), the model width
/// `heads · head_dim` (no overflow, `≤ MAX_WIDTH`) and the head width, all non-zero (so
/// `chunks_exact` never sees 0 and a row of scores is never empty).
#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub(super) nk: NonZeroUsize,
    pub(super) width: NonZeroUsize,
    pub(super) dh: NonZeroUsize,
}

/// Words of the packed-V buffer of [`Attention::run_packed`] (on the stack): one head's
/// `⌈keys/2⌉ · head_dim` must fit (65 keys × 16 columns: 528).
pub const PACK_WORDS: usize = 544;

/// Largest head width [`Attention::run_packed`] handles.
pub const PACK_MAX_HEAD_DIM: usize = 64;

pub(super) const ZEROS: [i8; PACK_MAX_HEAD_DIM] = [0; PACK_MAX_HEAD_DIM];

/// The first four bytes of `c` as a little-endian word (one unaligned `LDR`); `None` if `c`
/// is shorter (the callers pass 4-byte chunks: the check folds away, and there is no panic
/// path even where it does not).
#[inline(always)]
pub(super) fn word(c: &[i8]) -> Option<u32> {
    let &[a, b, c, d] = c.first_chunk::<4>()?;
    Some(u32::from_le_bytes([a as u8, b as u8, c as u8, d as u8]))
}

/// One head's V (`vh`: `nk` rows of `dh` columns, `npk = ⌈nk/2⌉`) as key pairs of
/// sign-extended 16-bit values into `vp`, laid out `[dh/4 column groups][npk key pairs][4
/// words]`: word `(g, kp, c)` = `v[2kp][4g+c] | v[2kp+1][4g+c] << 16`, a missing last partner
/// row read as `zeros` (`vh.get_row(nk)` is `None`). `None` (unreachable for
/// [`Attention::run_packed_v`], which sizes `vp` to `npk·dh` and `zeros` to `dh`) if a write
/// would leave `vp` or a row is missing.
#[inline(never)]
pub(super) fn pack_v(vh: Rows<'_>, npk: usize, zeros: &[i8], vp: &mut [u32]) -> Option<()> {
    // Size-first builds (`cfg(core_attn_small)`) keep only the looped copy (same words).
    match zeros.len() {
        #[cfg(not(core_attn_small))]
        8 => pack_v_fixed::<8>(vh, npk, vp),
        #[cfg(not(core_attn_small))]
        16 => pack_v_fixed::<16>(vh, npk, vp),
        #[cfg(not(core_attn_small))]
        24 => pack_v_fixed::<24>(vh, npk, vp),
        #[cfg(not(core_attn_small))]
        32 => pack_v_fixed::<32>(vh, npk, vp),
        _ => {
            for kp in 0..npk {
                let r0 = vh.get_row(2 * kp)?;
                let r1 = vh.get_row(2 * kp + 1).unwrap_or(zeros);
                let groups = zip_lazy(r0.chunks_exact(4), r1.chunks_exact(4));
                for (g, (a, b)) in groups.enumerate() {
                    let at = (g * npk + kp) * 4;
                    pack_word(
                        word(a)?,
                        word(b)?,
                        vp.get_mut(at..at + 4)?.first_chunk_mut()?,
                    );
                }
            }
            Some(())
        }
    }
}

/// [`pack_v`] for a head width `DH` known at compile time (the rows as arrays: the column
/// groups unrolled, one bounds check per packed word group).
#[cfg(not(core_attn_small))]
#[inline(always)]
pub(super) fn pack_v_fixed<const DH: usize>(
    vh: Rows<'_>,
    npk: usize,
    vp: &mut [u32],
) -> Option<()> {
    for kp in 0..npk {
        let r0: &[i8; DH] = vh.get_row(2 * kp)?.first_chunk()?;
        let r1: &[i8; DH] = match vh.get_row(2 * kp + 1) {
            Some(r) => r.first_chunk()?,
            None => &[0; DH],
        };
        for (g, (a, b)) in r0.chunks_exact(4).zip(r1.chunks_exact(4)).enumerate() {
            let at = (g * npk + kp) * 4;
            pack_word(
                word(a)?,
                word(b)?,
                vp.get_mut(at..at + 4)?.first_chunk_mut()?,
            );
        }
    }
    Some(())
}

/// The same four columns `a`, `b` of two V rows as four halfword-pair words (`SXTB16`,
/// `PKHBT`/`PKHTB`): `w[c] = a[c] | b[c] << 16` in the order `SXTB16` extends them.
#[inline(always)]
pub(super) fn pack_word(a: u32, b: u32, w: &mut [u32; 4]) {
    use crate::dsp::hw::{sxtb16, sxtb16_ror8};
    let (ae, ao) = (sxtb16(a), sxtb16_ror8(a));
    let (be, bo) = (sxtb16(b), sxtb16_ror8(b));
    w[0] = (ae & 0xffff) | (be << 16);
    w[1] = (ao & 0xffff) | (bo << 16);
    w[2] = (ae >> 16) | (be & 0xffff_0000);
    w[3] = (ao >> 16) | (bo & 0xffff_0000);
}

/// Scores of one query row's head against every visible key, for a head width `DH` known at
/// compile time (`W = DH / 2` sign-extended query words, kept in registers): per key one
/// bounds check, then `DH / 4` × (`LDR`, 2 `SXTB16`, 2 `SMLAD`). Returns the row maximum;
/// `None` (unreachable for the callers) if `qe` has fewer than `W` words, `kh` is not `DH`
/// wide or has fewer rows than `scores`.
#[cfg(not(core_attn_small))]
#[inline(always)]
pub(super) fn scores_fixed<const DH: usize, const W: usize>(
    scores: &mut [i32],
    kh: Rows<'_>,
    qe: &[u32],
) -> Option<i32> {
    use crate::dsp::hw::{smlad, sxtb16, sxtb16_ror8};
    let qe: [u32; W] = *qe.first_chunk::<W>()?;
    let mut max = i32::MIN;
    for (j, s) in scores.iter_mut().enumerate() {
        let kr: &[i8; DH] = kh.get_row(j)?.first_chunk::<DH>()?;
        let mut acc = 0i32;
        for (c, e) in kr.chunks_exact(4).zip(qe.chunks_exact(2)) {
            let (Some(x), &[e0, e1]) = (word(c), e) else {
                return None;
            };
            acc = smlad(e0, sxtb16(x), acc);
            acc = smlad(e1, sxtb16_ror8(x), acc);
        }
        *s = acc;
        max = max.max(acc);
    }
    Some(max)
}

/// `acc[4g..4g+4] += p_2k·v[2k][c] + p_2k+1·v[2k+1][c]` for one key pair and the four columns
/// of word `g` of both V rows: `SXTB16` ×4, the pairs `(v[2k][c], v[2k+1][c])` as halfword
/// pairs (`PKHBT`/`PKHTB`), `SMLAD` ×4.
#[inline(always)]
pub(super) fn wsum_word(p: u32, a: u32, b: u32, acc: &mut [i32; 4]) {
    use crate::dsp::hw::{smlad, sxtb16, sxtb16_ror8};
    let (ae, ao) = (sxtb16(a), sxtb16_ror8(a));
    let (be, bo) = (sxtb16(b), sxtb16_ror8(b));
    acc[0] = smlad(p, (ae & 0xffff) | (be << 16), acc[0]);
    acc[1] = smlad(p, (ao & 0xffff) | (bo << 16), acc[1]);
    acc[2] = smlad(p, (ae >> 16) | (be & 0xffff_0000), acc[2]);
    acc[3] = smlad(p, (ao >> 16) | (bo & 0xffff_0000), acc[3]);
}

/// The weighted sum of one query row's head straight from V (no packing: one row shares
/// nothing): key pairs outer (`pp[k] = p_2k | p_2k+1 << 16`), the head's `DH` accumulators
/// inner, then the requantization. An odd last key pairs with itself (its partner
/// probability is 0). `big`: a probability of exactly 1.0 (`0x8000`) was multiplied as
/// −32768 and is corrected by `+65536·v`.
///
/// `vh` is the head's columns of `v` (`c0..c0 + DH`), `nk` the visible keys (`≤ v.rows()`),
/// `pp` their `⌈nk/2⌉` probability pairs, `oh` the head's `DH` outputs. Bounds: every row
/// read is `< nk ≤ v.rows()` (`get` is `Some`); the early returns (debug-asserted) are
/// unreachable for [`Attention::run_direct_inner`]'s arguments.
#[allow(clippy::too_many_arguments)]
#[cfg(not(core_attn_small))]
#[inline(always)]
pub(super) fn wsum_direct<P: Passes, const DH: usize>(
    pp: &[i32],
    v: Rows<'_>,
    vh: Rows<'_>,
    c0: usize,
    nk: usize,
    big: bool,
    oh: &mut [i8],
    rq: crate::dsp::RowRequant,
    zp: i32,
) {
    let mut acc = [0i32; DH];
    if P::DSP_FORM {
        // Full key pairs in `asm!`, four columns at a time; an odd last key in Rust.
        let full = nk / 2;
        let Some(ppf) = pp.get(..full) else {
            return unreachable_shape();
        };
        for (g, a) in acc.chunks_exact_mut(4).enumerate() {
            let Some(a) = a.first_chunk_mut::<4>() else {
                return unreachable_shape();
            };
            P::wsum_pairs4(ppf, v, c0 + 4 * g, a);
        }
        if nk % 2 == 1 {
            // Read as `SMLAD` reads it (0x8000 as −32768, fixed by `fix_big`).
            let (Some(&p), Some(r)) = (pp.get(full), vh.get_row(nk - 1)) else {
                return unreachable_shape();
            };
            let p = p as u16 as i16 as i32;
            for (a, &x) in acc.iter_mut().zip(r) {
                *a = a.wrapping_add(p * x as i32);
            }
        }
    } else {
        for (kp, &p) in pp.iter().enumerate() {
            let Some(r0) = vh.get_row(2 * kp).and_then(|r| r.first_chunk::<DH>()) else {
                return unreachable_shape();
            };
            let r1 = if 2 * kp + 1 < nk {
                let Some(r1) = vh.get_row(2 * kp + 1).and_then(|r| r.first_chunk::<DH>()) else {
                    return unreachable_shape();
                };
                r1
            } else {
                r0
            };
            for ((a, b), acc) in r0
                .chunks_exact(4)
                .zip(r1.chunks_exact(4))
                .zip(acc.chunks_exact_mut(4))
            {
                let (Some(acc), Some(a), Some(b)) = (acc.first_chunk_mut::<4>(), word(a), word(b))
                else {
                    return unreachable_shape();
                };
                wsum_word(p as u32, a, b, acc);
            }
        }
    }
    if big {
        fix_big(pp, vh, nk, &mut acc);
    }
    for (o, &a) in oh.iter_mut().zip(&acc) {
        *o = rq.to_i8(a, zp);
    }
}

/// [`wsum_direct`] for any head width that is a multiple of 4 (up to [`PACK_MAX_HEAD_DIM`]);
/// the head width is `oh.len()` (= `vh.width()`).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub(super) fn wsum_direct_any<P: Passes>(
    pp: &[i32],
    v: Rows<'_>,
    vh: Rows<'_>,
    c0: usize,
    nk: usize,
    big: bool,
    oh: &mut [i8],
    rq: crate::dsp::RowRequant,
    zp: i32,
) {
    let dh = oh.len();
    let mut acc = [0i32; PACK_MAX_HEAD_DIM];
    // `dh ≤ PACK_MAX_HEAD_DIM` by `Attention::dsp_fits`.
    let Some(acc) = acc.get_mut(..dh) else {
        return unreachable_shape();
    };
    if P::DSP_FORM {
        let full = nk / 2;
        let Some(ppf) = pp.get(..full) else {
            return unreachable_shape();
        };
        for (g, a) in acc.chunks_exact_mut(4).enumerate() {
            let Some(a) = a.first_chunk_mut::<4>() else {
                return unreachable_shape();
            };
            P::wsum_pairs4(ppf, v, c0 + 4 * g, a);
        }
        if nk % 2 == 1 {
            let (Some(&p), Some(r)) = (pp.get(full), vh.get_row(nk - 1)) else {
                return unreachable_shape();
            };
            let p = p as u16 as i16 as i32;
            for (a, &x) in acc.iter_mut().zip(r) {
                *a = a.wrapping_add(p * x as i32);
            }
        }
    } else {
        for (kp, &p) in pp.iter().enumerate() {
            let Some(r0) = vh.get_row(2 * kp) else {
                return unreachable_shape();
            };
            let r1 = if 2 * kp + 1 < nk {
                let Some(r1) = vh.get_row(2 * kp + 1) else {
                    return unreachable_shape();
                };
                r1
            } else {
                r0
            };
            for ((a, b), acc) in r0
                .chunks_exact(4)
                .zip(r1.chunks_exact(4))
                .zip(acc.chunks_exact_mut(4))
            {
                let (Some(acc), Some(a), Some(b)) = (acc.first_chunk_mut::<4>(), word(a), word(b))
                else {
                    return unreachable_shape();
                };
                wsum_word(p as u32, a, b, acc);
            }
        }
    }
    if big {
        fix_big(pp, vh, nk, acc);
    }
    for (o, &a) in oh.iter_mut().zip(acc.iter()) {
        *o = rq.to_i8(a, zp);
    }
}

/// Add `65536·v[j][c]` for every key `j < nk` whose probability is exactly 1.0 (`0x8000`,
/// which `SMLAD` read as −32768); `vh` is the head's columns of V, `pp` the probability pairs
/// (`pp[k]` holds keys `2k`, `2k + 1`). Rows are read with `get` (every `j < nk ≤ vh.rows()`
/// is `Some`; a missing row is skipped, unreachable for the callers).
#[cold]
#[inline(never)]
pub(super) fn fix_big(pp: &[i32], vh: Rows<'_>, nk: usize, acc: &mut [i32]) {
    for (kp, &p) in pp.iter().enumerate() {
        for half in 0..2 {
            let j = 2 * kp + half;
            if j < nk && (p as u32 >> (16 * half)) & 0xffff == 0x8000 {
                let Some(r) = vh.get_row(j) else {
                    return unreachable_shape();
                };
                for (a, &x) in acc.iter_mut().zip(r) {
                    *a = a.wrapping_add((x as i32) << 16);
                }
            }
        }
    }
}

/// Columns of V accumulated together in [`Attention::run`].
#[cfg_attr(core_attn_small, allow(dead_code))]
pub(super) const COLS: usize = 4;

/// The error of a shape that [`Attention::check`] has already rejected: the `else` branch of
/// the kernels' bounds checks, unreachable after it (never a panic).
pub(super) const SHAPE: Error = Error::BadDimension {
    what: "attention shapes (unreachable after the check)",
    value: 0,
};
