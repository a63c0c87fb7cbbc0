//! Grouped-query attention ([`Attention::run_grouped`]): `heads` query heads over `kv_heads`
//! key/value heads, query head `h` reading the key/value head `h / (heads / kv_heads)`.
//!
//! The two query heads of a pair sharing one key/value head (the group of Llama
//! stories260K: 8 query heads over 4 key/value heads) go through one pass over their K and V
//! rows: per key row one load and one sign extension (`SXTB16`) of each key word feed the
//! `SMLAD`s of both queries, and per pair of V rows one load and one repacking into halfword
//! pairs feed the weighted sums of both heads. Each head keeps its own softmax (the same
//! exponential and probability passes as [`Attention::run`]). A head left without a partner
//! (an odd group), a head width the `SMLAD` loops do not take, a score requantization outside
//! the fast range or more than [`GQA_PAIR_MAX_KEYS`] visible keys go through the one-head
//! [`Attention::run`] instead. Same bits as [`Attention::run_generic`] run head by head on
//! the key/value head's columns: integer sums in another order, the same softmax passes.
//!
//! Written over [`crate::dsp::hw`] (the instructions on the DSP and Helium cores, their
//! portable definitions elsewhere): one algorithm, tested on the host as it runs on the device.

use super::*;
use crate::dsp::hw::{smlad, sxtb16, sxtb16_ror8};

/// Visible keys up to which [`Attention::run_grouped`] pairs query heads: the second head's
/// scores live on the stack (`4 ·` this many bytes); longer rows run head by head.
pub const GQA_PAIR_MAX_KEYS: usize = 256;

impl<'a> Attention<'a> {
    /// Grouped-query attention: `q` and `out` are `heads · head_dim` wide, `k` and `v`
    /// `kv_heads · head_dim` wide (`kv_heads` divides `heads`); query head `h` attends over the
    /// columns `g·head_dim .. (g+1)·head_dim` of `k`/`v`, `g = h / (heads / kv_heads)`.
    /// `scratch` needs `k.rows()` entries. Same results, bit for bit, as
    /// [`Attention::run_generic`] with one head on those columns, head by head (see the module).
    pub fn run_grouped(
        &self,
        kv_heads: usize,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Rows<'_>,
        mask: Mask,
        out: &mut [i8],
        scratch: &mut [i32],
    ) -> Result<(), Error> {
        let group = self
            .heads
            .checked_rem(kv_heads)
            .filter(|&r| r == 0)
            .and_then(|_| self.heads.checked_div(kv_heads))
            .and_then(NonZeroUsize::new)
            .ok_or(Error::BadDimension {
                what: "attention kv heads (must divide the query heads)",
                value: kv_heads,
            })?;
        // The one-head kernel's checks, on the first key/value head's columns, validate every
        // shape but the widths of `k`/`v`, which are checked here.
        let dh = self.head_dim;
        let kv_width = kv_heads.saturating_mul(dh);
        check_len("attention key width", kv_width, k.width())?;
        check_len("attention value width", kv_width, v.width())?;
        check_len("attention values", k.rows(), v.rows())?;
        let one = Attention { heads: 1, ..*self };
        let dims = self.check_grouped(q, k, out, scratch)?;
        let (width, dh, nk) = (dims.width.get(), dims.dh.get(), dims.nk.get());
        let ix = ExpIndex::new(self.score_to_index).map(ExpIndex::refined);
        let pairs_ok = ix.is_some() && self.dsp_fits() && group.get() >= 2;
        for (i, out_row) in out.chunks_exact_mut(width).enumerate() {
            let visible = visible_keys(mask, i, nk);
            let row_mask = match mask {
                Mask::None => Mask::None,
                Mask::Causal { first_position } => Mask::Causal {
                    first_position: first_position.saturating_add(i),
                },
            };
            let qi = q.get_row(i).ok_or(SHAPE)?;
            let mut h = 0;
            while h < self.heads {
                let c = (h / group) * dh;
                let (kh, vh) = (k.columns(c, dh)?, v.columns(c, dh)?);
                let partner = h + 1 < self.heads && (h + 1) / group == h / group;
                let c0 = h * dh;
                match ix {
                    Some(ix) if pairs_ok && partner && visible <= GQA_PAIR_MAX_KEYS => {
                        let (qa, qb) = (
                            qi.get(c0..c0 + dh).ok_or(SHAPE)?,
                            qi.get(c0 + dh..c0 + 2 * dh).ok_or(SHAPE)?,
                        );
                        let (oa, ob) = out_row
                            .get_mut(c0..c0 + 2 * dh)
                            .ok_or(SHAPE)?
                            .split_at_mut(dh);
                        self.pair_row(qa, qb, kh, vh, visible, &ix, oa, ob, scratch)
                            .ok_or(SHAPE)?;
                        h += 2;
                    }
                    _ => {
                        let oh = out_row.get_mut(c0..c0 + dh).ok_or(SHAPE)?;
                        let qh = Rows::strided(qi, c0, 1, dh, width)?;
                        one.run(qh, kh, vh, row_mask, oh, scratch)?;
                        h += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// The shape checks of [`Attention::check`] for grouped K/V: `q`/`out` `heads · head_dim`
    /// wide (`k`/`v` widths and `v.rows() = k.rows()` are the caller's checks), keys in
    /// `1..=MAX_SEQ_LEN`, `scratch.len() ≥ nk`.
    fn check_grouped(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        out: &[i8],
        scratch: &[i32],
    ) -> Result<Dims, Error> {
        // K itself stands in for V (their widths and row counts were checked by the caller or
        // are checked here): `check` wants three views of the full width.
        let (Some(width_nz), Some(dh)) = (
            self.heads
                .checked_mul(self.head_dim)
                .filter(|&w| w <= MAX_WIDTH)
                .and_then(NonZeroUsize::new),
            NonZeroUsize::new(self.head_dim),
        ) else {
            return Err(Error::BadDimension {
                what: "attention head_dim",
                value: self.head_dim,
            });
        };
        check_len("attention query width", width_nz.get(), q.width())?;
        check_len("attention output", q.rows() * width_nz.get(), out.len())?;
        let nk = k.rows();
        let Some(nk) = NonZeroUsize::new(nk).filter(|n| n.get() <= MAX_SEQ_LEN) else {
            return Err(Error::BadDimension {
                what: "attention key count",
                value: nk,
            });
        };
        if scratch.len() < nk.get() {
            return Err(Error::BufferTooSmall {
                what: "attention scratch",
                needed: nk.get(),
                available: scratch.len(),
            });
        }
        Ok(Dims {
            nk,
            width: width_nz,
            dh,
        })
    }

    /// Two query heads `qa`, `qb` over the same key/value head (`kh`, `vh`: its columns), the
    /// first `visible` keys: scores of both per key row read, a softmax each, the weighted sums
    /// of both per V row pair read. `None` (unreachable for `run_grouped`, which checked the
    /// shapes, `head_dim` a multiple of 4 up to [`PACK_MAX_HEAD_DIM`] and `visible ≤`
    /// [`GQA_PAIR_MAX_KEYS`]) if a slice is shorter.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn pair_row(
        &self,
        qa: &[i8],
        qb: &[i8],
        kh: Rows<'_>,
        vh: Rows<'_>,
        visible: usize,
        ix: &ExpIndex,
        oa: &mut [i8],
        ob: &mut [i8],
        scratch: &mut [i32],
    ) -> Option<()> {
        let dh = self.head_dim;
        let mut qe = [0u32; PACK_MAX_HEAD_DIM];
        let (qea, qeb) = qe.split_at_mut(PACK_MAX_HEAD_DIM / 2);
        extend(qa, qea)?;
        extend(qb, qeb)?;
        let (qea, qeb) = (qea.get(..dh / 2)?, qeb.get(..dh / 2)?);
        let sa = scratch.get_mut(..visible)?;
        let mut sb = [0i32; GQA_PAIR_MAX_KEYS];
        let sb = sb.get_mut(..visible)?;
        let (ma, mb) = match dh {
            #[cfg(not(core_attn_small))]
            8 => scores2_fixed::<8, 4>(kh, qea, qeb, sa, sb)?,
            #[cfg(not(core_attn_small))]
            16 => scores2_fixed::<16, 8>(kh, qea, qeb, sa, sb)?,
            _ => scores2_any(kh, qea, qeb, sa, sb)?,
        };
        // |s| ≤ 2^28: `max − s` never wraps.
        let sum = ix.exp_pass::<true>(sa, ma, &self.exp);
        let (na, biga) = crate::softmax::probs_to_pairs(sa, visible, sum);
        let sum = ix.exp_pass::<true>(sb, mb, &self.exp);
        let (nb, bigb) = crate::softmax::probs_to_pairs(sb, visible, sum);
        let (ppa, ppb) = (sa.get(..na)?, sb.get(..nb)?);
        let rq = crate::dsp::RowRequant::new(self.output.multiplier, self.output.shift);
        let zp = self.output_zero_point;
        let full = visible / 2;
        for (g, (oa, ob)) in zip_lazy(oa.chunks_exact_mut(4), ob.chunks_exact_mut(4)).enumerate() {
            let (mut acca, mut accb) = ([0i32; 4], [0i32; 4]);
            let vg = vh.columns(4 * g, 4).ok()?;
            let pairs = zip_lazy(ppa.get(..full)?.iter(), ppb.get(..full)?.iter());
            for (kp, (&pa, &pb)) in pairs.enumerate() {
                let (Some(a), Some(b)) = (vg.get_row(2 * kp), vg.get_row(2 * kp + 1)) else {
                    return None;
                };
                let mut w = [0u32; 4];
                pack_word(word(a)?, word(b)?, &mut w);
                for ((aa, ab), &w) in acca.iter_mut().zip(accb.iter_mut()).zip(&w) {
                    *aa = smlad(pa as u32, w, *aa);
                    *ab = smlad(pb as u32, w, *ab);
                }
            }
            if visible % 2 == 1 {
                // The odd last key, its probability read as `SMLAD` reads it (0x8000 as
                // −32768, fixed by `fix_big` below).
                let (pa, pb) = (*ppa.get(full)? as i16 as i32, *ppb.get(full)? as i16 as i32);
                let r = vg.get_row(visible - 1)?;
                for ((aa, ab), &x) in acca.iter_mut().zip(accb.iter_mut()).zip(r) {
                    *aa = aa.wrapping_add(pa * x as i32);
                    *ab = ab.wrapping_add(pb * x as i32);
                }
            }
            if biga {
                fix_big(ppa, vg, visible, &mut acca);
            }
            if bigb {
                fix_big(ppb, vg, visible, &mut accb);
            }
            for (o, &a) in oa.iter_mut().zip(&acca) {
                *o = rq.to_i8(a, zp);
            }
            for (o, &a) in ob.iter_mut().zip(&accb) {
                *o = rq.to_i8(a, zp);
            }
        }
        Some(())
    }
}

/// A query head's bytes as sign-extended halfword pairs: `qe[2c] = SXTB16(word c)`,
/// `qe[2c+1] = SXTB16(word c, ROR 8)`. `None` if `qe` is too short for `qh`'s words.
#[inline(always)]
fn extend(qh: &[i8], qe: &mut [u32]) -> Option<()> {
    let words = qh.len() / 4;
    for (e, c) in zip_lazy(qe.get_mut(..2 * words)?.chunks_exact_mut(2), qh.chunks_exact(4)) {
        let (Some(x), [e0, e1]) = (word(c), e) else {
            return None;
        };
        *e0 = sxtb16(x);
        *e1 = sxtb16_ror8(x);
    }
    Some(())
}

/// Scores of two query heads (extended: `qea`, `qeb`, `W = DH / 2` words each) against the
/// key rows of `kh` (`DH` wide), one row read for both: per 4 key bytes one load, 2 `SXTB16`,
/// 4 `SMLAD`. Returns both row maxima; `None` if `kh` has fewer rows than `sa` (unreachable).
#[cfg(not(core_attn_small))]
#[inline(always)]
fn scores2_fixed<const DH: usize, const W: usize>(
    kh: Rows<'_>,
    qea: &[u32],
    qeb: &[u32],
    sa: &mut [i32],
    sb: &mut [i32],
) -> Option<(i32, i32)> {
    let qa: [u32; W] = *qea.first_chunk::<W>()?;
    let qb: [u32; W] = *qeb.first_chunk::<W>()?;
    let (mut ma, mut mb) = (i32::MIN, i32::MIN);
    for (j, (a, b)) in zip_lazy(sa.iter_mut(), sb.iter_mut()).enumerate() {
        let kr: &[i8; DH] = kh.get_row(j)?.first_chunk::<DH>()?;
        let (mut acca, mut accb) = (0i32, 0i32);
        for ((c, ea), eb) in kr
            .chunks_exact(4)
            .zip(qa.chunks_exact(2))
            .zip(qb.chunks_exact(2))
        {
            let (Some(x), &[a0, a1], &[b0, b1]) = (word(c), ea, eb) else {
                return None;
            };
            let (xe, xo) = (sxtb16(x), sxtb16_ror8(x));
            acca = smlad(a0, xe, acca);
            accb = smlad(b0, xe, accb);
            acca = smlad(a1, xo, acca);
            accb = smlad(b1, xo, accb);
        }
        *a = acca;
        *b = accb;
        ma = ma.max(acca);
        mb = mb.max(accb);
    }
    Some((ma, mb))
}

/// [`scores2_fixed`] for any head width that is a multiple of 4 (the head width is
/// `2 · qea.len()`).
#[inline(never)]
fn scores2_any(
    kh: Rows<'_>,
    qea: &[u32],
    qeb: &[u32],
    sa: &mut [i32],
    sb: &mut [i32],
) -> Option<(i32, i32)> {
    let (mut ma, mut mb) = (i32::MIN, i32::MIN);
    for (j, (a, b)) in zip_lazy(sa.iter_mut(), sb.iter_mut()).enumerate() {
        let kr = kh.get_row(j)?;
        let (mut acca, mut accb) = (0i32, 0i32);
        for ((c, ea), eb) in zip_lazy(
            zip_lazy(kr.chunks_exact(4), qea.chunks_exact(2)),
            qeb.chunks_exact(2),
        ) {
            let (Some(x), &[a0, a1], &[b0, b1]) = (word(c), ea, eb) else {
                return None;
            };
            let (xe, xo) = (sxtb16(x), sxtb16_ror8(x));
            acca = smlad(a0, xe, acca);
            accb = smlad(b0, xe, accb);
            acca = smlad(a1, xo, acca);
            accb = smlad(b1, xo, accb);
        }
        *a = acca;
        *b = accb;
        ma = ma.max(acca);
        mb = mb.max(accb);
    }
    Some((ma, mb))
}
