//! Grouped-query attention ([`Attention::run_grouped`]): `heads` query heads over `kv_heads`
//! key/value heads, query head `h` reading the key/value head `h / (heads / kv_heads)`.
//!
//! The two query heads of a pair sharing one key/value head (the group of Llama
//! stories260K: 8 query heads over 4 key/value heads) are scored in one pass over its K rows
//! ([`crate::dsp::gqa::scores_pair`]: per key word one load and one sign extension feed the
//! `SMLAD`s of both queries), and share the per-call work (shape checks, the exponential's
//! index, the requantization); each keeps its own softmax and its weighted sum of V (the
//! one-row kernel's `SMLAD` loop, [`Attention::run`]'s). A head left without a partner (an
//! odd group), a head width the `SMLAD` loops do not take, a score requantization outside the
//! fast range or more than [`GQA_PAIR_MAX_KEYS`] visible keys go through the one-head
//! [`Attention::run`] instead. Same bits as [`Attention::run_generic`] run head by head on the
//! key/value head's columns: integer sums in another order, the same softmax passes.
//!
//! Why V is not shared: a weighted sum of two heads over the same V rows needs 8 accumulators
//! per 4 columns besides the two probability pairs, the row words and pointers — more than
//! the 12 registers an `asm!` block may name — and a first version in Rust (the compiler's
//! register allocation, V words repacked once for both heads, scores in Rust too) took 10%
//! more estimated M4 cycles in the bench's profiled attention than the one-head `asm!`
//! passes; packing V once for both heads would cost about what the packed sum saves (by the
//! instruction counts of the loops: ~7 + 8 per key and head against 18 for dh = 8).

use super::*;
use crate::dsp::hw::{sxtb16, sxtb16_ror8};

/// The softmax / weighted-sum passes of the pair path: the `asm!` ones where the target has
/// them, the portable loops elsewhere (as [`Attention::run_packed`] selects them).
#[cfg(any(core_attn_dsp, core_attn_mve))]
type PairPasses = crate::dsp::passes::Asm;
#[cfg(not(any(core_attn_dsp, core_attn_mve)))]
type PairPasses = crate::dsp::passes::Portable;

/// Visible keys up to which [`Attention::run_grouped`] pairs query heads: the second head's
/// scores live on the stack (`4 ·` this many bytes); longer rows run head by head.
pub const GQA_PAIR_MAX_KEYS: usize = 256;

impl<'a> Attention<'a> {
    /// Grouped-query attention: `q` and `out` are `heads · head_dim` wide, `k` and `v`
    /// `kv_heads · head_dim` wide (`kv_heads` divides `heads`); query head `h` attends over the
    /// columns `g·head_dim .. (g+1)·head_dim` of `k`/`v`, `g = h / (heads / kv_heads)`.
    /// `scratch` needs `k.rows()` entries. Same results, bit for bit, as
    /// [`Attention::run_generic`] with one head on those columns, head by head (see the module).
    #[allow(clippy::too_many_arguments)]
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
        let dims = self.check_shapes(q, k, None, out, scratch)?;
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
                            .split_at_mut_checked(dh)
                            .ok_or(SHAPE)?;
                        self.pair_row(qa, qb, k, v, c, visible, &ix, oa, ob, scratch)
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

    /// Two query heads `qa`, `qb` over the same key/value head (columns `c..c + head_dim` of
    /// `k` and `v`), the first `visible` keys: the scores of both per key row read
    /// ([`crate::dsp::gqa::scores_pair`]), a softmax each, then each head's weighted sum (the
    /// one-row kernel's). The second head's scores go after the first's in `scratch` where it
    /// holds both, else on the stack. `None` (unreachable for `run_grouped`, which checked the
    /// shapes, `head_dim` a multiple of 4 up to [`PACK_MAX_HEAD_DIM`] and `visible ≤`
    /// [`GQA_PAIR_MAX_KEYS`]) if a slice is shorter.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn pair_row(
        &self,
        qa: &[i8],
        qb: &[i8],
        k: Rows<'_>,
        v: Rows<'_>,
        c: usize,
        visible: usize,
        ix: &ExpIndex,
        oa: &mut [i8],
        ob: &mut [i8],
        scratch: &mut [i32],
    ) -> Option<()> {
        if scratch.len() >= 2 * visible {
            let (sa, sb) = scratch.split_at_mut_checked(visible)?;
            self.pair_scores(qa, qb, k, v, c, ix, oa, ob, sa, sb.get_mut(..visible)?)
        } else {
            self.pair_row_stack(qa, qb, k, v, c, visible, ix, oa, ob, scratch)
        }
    }

    /// [`Attention::pair_row`] with the second head's scores on the stack (a function of its
    /// own, so that the buffer is only there, and zeroed, when it is used).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn pair_row_stack(
        &self,
        qa: &[i8],
        qb: &[i8],
        k: Rows<'_>,
        v: Rows<'_>,
        c: usize,
        visible: usize,
        ix: &ExpIndex,
        oa: &mut [i8],
        ob: &mut [i8],
        scratch: &mut [i32],
    ) -> Option<()> {
        let mut sb = [0i32; GQA_PAIR_MAX_KEYS];
        let (sa, sb) = (scratch.get_mut(..visible)?, sb.get_mut(..visible)?);
        self.pair_scores(qa, qb, k, v, c, ix, oa, ob, sa, sb)
    }

    /// The body of [`Attention::pair_row`]: `sa`, `sb` are `visible` long.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pair_scores(
        &self,
        qa: &[i8],
        qb: &[i8],
        k: Rows<'_>,
        v: Rows<'_>,
        c: usize,
        ix: &ExpIndex,
        oa: &mut [i8],
        ob: &mut [i8],
        sa: &mut [i32],
        sb: &mut [i32],
    ) -> Option<()> {
        let (dh, visible) = (self.head_dim, sa.len());
        let w = dh / 2;
        let mut qe = [0u32; PACK_MAX_HEAD_DIM];
        let qe = qe.get_mut(..2 * w)?;
        let (qea, qeb) = qe.split_at_mut_checked(w)?;
        extend(qa, qea)?;
        extend(qb, qeb)?;
        let (kh, vh) = (k.columns(c, dh).ok()?, v.columns(c, dh).ok()?);
        if !crate::dsp::gqa::scores_pair(kh, qe, sa, sb) {
            return None;
        }
        let rq = crate::dsp::RowRequant::new(self.output.multiplier, self.output.shift);
        let zp = self.output_zero_point;
        for (s, o) in [(sa, oa), (sb, ob)] {
            // |s| ≤ 2^28: `max − s` never wraps.
            let max = crate::softmax::row_max::<PairPasses>(s);
            let sum = ix.exp_pass::<PairPasses, true>(s, max, &self.exp);
            let (pairs, big) = crate::softmax::probs_to_pairs::<PairPasses>(s, visible, sum);
            let pp = s.get(..pairs)?;
            // The one-row kernel's weighted sum (`SMLAD` over probability pairs × V rows).
            match dh {
                #[cfg(not(core_attn_small))]
                16 => wsum_direct::<PairPasses, 16>(pp, v, vh, c, visible, big, o, rq, zp),
                #[cfg(not(core_attn_small))]
                24 => wsum_direct::<PairPasses, 24>(pp, v, vh, c, visible, big, o, rq, zp),
                #[cfg(not(core_attn_small))]
                32 => wsum_direct::<PairPasses, 32>(pp, v, vh, c, visible, big, o, rq, zp),
                _ => wsum_direct_any::<PairPasses>(pp, v, vh, c, visible, big, o, rq, zp),
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
    for (e, c) in zip_lazy(
        qe.get_mut(..2 * words)?.chunks_exact_mut(2),
        qh.chunks_exact(4),
    ) {
        let (Some(x), [e0, e1]) = (word(c), e) else {
            return None;
        };
        *e0 = sxtb16(x);
        *e1 = sxtb16_ror8(x);
    }
    Some(())
}
