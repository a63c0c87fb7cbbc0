//! Attention, one query row at a time: general (cross), self, causal self, multi-head, and the
//! KV cache that makes decoding one token O(N).
//!
//! The lecture's general attention layer takes queries `Q` from one sequence and keys `K` /
//! values `V` from another (cross-attention); self-attention is the same layer with all three
//! projected from one sequence; causal (masked) self-attention lets query `i` see only keys
//! `j ≤ i`. Multi-head attention splits the width into `heads` slices of `head_dim` and runs
//! the layer on each slice. All of them are [`Attention::run`] with a different [`Mask`] and
//! different views.
//!
//! For each query row `i` and head `h`:
//! 1. `s_j = Σ_d q_{i,d} · k_{j,d}` over the head's columns (int8 × int8 → i32), for every
//!    visible key `j` — causal masking *skips* `j > i` instead of writing −∞;
//! 2. softmax of the `s_j` through the exp table ([`crate::softmax`]); `1/√d_head` is folded into
//!    the score-difference requantization at pack time;
//! 3. `o_{i,d} = Σ_j p_j · v_{j,d}` (Q15 × int8 → i32), requantized to the output scale.
//!
//! # Memory
//! The only working memory is one `i32` per key (`scratch`, `4 · N_k` bytes), reused for every
//! query row and head: O(N) per head, never an `N × N` matrix.
//!
//! # Quantization
//! Q, K and V are symmetric (zero point 0): that removes three subtractions from every MAC.
//!
//! # Overflow
//! `|s_j| ≤ 128 · 128 · head_dim ≤ 2^28` for `head_dim ≤ MAX_WIDTH`, so `max − s_j < 2^29`. The
//! weighted sum is at most `Σ p_j · 128 ≤ (2^15 + N_k) · 128 < 2^23` (probabilities sum to
//! 2^15 up to one rounding LSB each).

//!
//! # Layout
//! This file holds the contract, the generic kernel ([`Attention::run_generic`]), the
//! dispatcher ([`Attention::run`]) and the kernel its registry entries run, generic over the
//! passes (`run_with`: the DSP form on `dsp::passes::Asm` or `Emulated`, query rows on
//! `Portable`); `kernels.rs` the per-head-width and packed-V inner loops it selects from (the
//! `asm!` ones are in `crate::dsp::attention`); `kv_cache.rs` the [`KvCache`]; `variants.rs` the
//! registry [`ATTENTION_VARIANTS`] the dispatcher picks from and the shared suite runs.

use crate::dsp::passes::{Asm, Passes, Portable};
use crate::error::check_len;
use crate::requant::Requant;
use crate::softmax::{softmax_scores_fast, softmax_scores_in_place, ExpIndex, ExpTable};
use crate::tensor::{zip_lazy, Rows};
use crate::{Error, MAX_SEQ_LEN, MAX_WIDTH};
use core::num::NonZeroUsize;

mod gqa;
mod kernels;
mod kv_cache;
mod shapes;
mod variants;

pub use gqa::GQA_PAIR_MAX_KEYS;
use kernels::*;
pub use kernels::{PACK_MAX_HEAD_DIM, PACK_WORDS};
pub use kv_cache::KvCache;
pub use variants::{AttentionFn, AttentionVariant, ATTENTION_VARIANTS};

/// Which keys a query may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mask {
    /// Every key (encoder self-attention, cross-attention).
    None,
    /// Query row `i` is at sequence position `first_position + i` and sees keys
    /// `0..=first_position + i` (decoder self-attention; `first_position` is the number of
    /// tokens already in the KV cache when the queries were computed).
    Causal {
        /// Position of the first query row.
        first_position: usize,
    },
}

/// Parameters of one (multi-head) attention layer after the Q/K/V projections.
#[derive(Debug, Clone, Copy)]
pub struct Attention<'a> {
    /// Number of heads.
    pub heads: usize,
    /// Width of each head; `heads · head_dim` is the width of Q, K, V and the output.
    pub head_dim: usize,
    /// Score difference (units `s_q · s_k`) → exp-table index: `s_q · s_k / (√head_dim · step)`.
    pub score_to_index: Requant,
    /// `exp(−d · step)` tables.
    pub exp: ExpTable<'a>,
    /// Weighted sum (units `2^-15 · s_v`) → output: `s_v / (2^15 · s_out)`.
    pub output: Requant,
    /// Output zero point.
    pub output_zero_point: i32,
}

impl<'a> Attention<'a> {
    /// Model width `heads · head_dim` (saturating: hostile public fields give `usize::MAX`,
    /// which every check refuses, instead of an overflow).
    pub fn width(&self) -> usize {
        self.heads.saturating_mul(self.head_dim)
    }

    /// Check the parameters.
    #[inline(never)] // load-time check: one copy, not inlined into each caller
    pub fn validate(&self) -> Result<(), Error> {
        if self.heads == 0 {
            return Err(Error::BadDimension {
                what: "attention heads",
                value: 0,
            });
        }
        if self.head_dim == 0 || self.width() > MAX_WIDTH {
            return Err(Error::BadDimension {
                what: "attention head_dim",
                value: self.head_dim,
            });
        }
        self.score_to_index.validate()?;
        self.output.validate()?;
        ExpTable::new(self.exp.hi, self.exp.lo)?;
        if !(-128..=127).contains(&self.output_zero_point) {
            return Err(Error::BadRequant);
        }
        Ok(())
    }

    /// Attend every row of `q` over the rows of `k`/`v`, writing `[q.rows()][width]` to `out`.
    ///
    /// `scratch` needs at least `k.rows()` entries. Rows of `q`, `k`, `v` are `width()` wide
    /// (use [`Rows::strided`] / [`Rows::columns`] to point into a fused QKV buffer).
    ///
    /// Shapes are checked once up front (an error, never a panic); every access after that
    /// is in bounds by that check and is written so that the compiler sees it (`get`,
    /// iterators, `chunks_exact` of non-zero widths): no panic call site is left in the
    /// linked firmware.
    ///
    /// Runs this build's native entry of [`ATTENTION_VARIANTS`] (the only way an attention
    /// kernel is dispatched to).
    #[inline]
    pub fn run(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Rows<'_>,
        mask: Mask,
        out: &mut [i8],
        scratch: &mut [i32],
    ) -> Result<(), Error> {
        variants::NATIVE_ATTENTION(self, q, k, v, mask, out, scratch)
    }

    /// The attention kernel on the passes `P` (the registry's entries): where `P::DSP_FORM`,
    /// the DSP form ([`Attention::run_packed`]'s algorithm) for the layers it takes, else (and
    /// for the other layers) query row by query row with the portable inner loops.
    #[cfg_attr(core_attn_small, inline(never))]
    pub(crate) fn run_with<P: Passes>(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Rows<'_>,
        mask: Mask,
        out: &mut [i8],
        scratch: &mut [i32],
    ) -> Result<(), Error> {
        let dims = self.check(q, k, v, out, scratch)?;
        let ix = ExpIndex::new(self.score_to_index).map(ExpIndex::refined);
        if P::DSP_FORM {
            if let Some(ix) = ix {
                if self.dsp_fits() {
                    // Two or more query rows share each head's packed V; one row (decoding)
                    // reads V directly.
                    let pack = q.rows() >= 2 && self.packed_fits(dims.nk.get());
                    self.run_packed_inner::<P>(q, k, v, mask, out, scratch, dims, ix, pack);
                    return Ok(());
                }
            }
        }
        let (width, dh, nk) = (dims.width.get(), dims.dh.get(), dims.nk.get());
        #[cfg(not(core_attn_small))]
        let out_rq = crate::dsp::RowRequant::new(self.output.multiplier, self.output.shift);
        // In bounds by `check`: `width = heads · dh` with `dh ≥ 1`, no overflow; `out` is
        // `q.rows()` rows of `width`, split into `heads` slices of `dh`; `nk = k.rows() =
        // v.rows()` in `1..=scratch.len()`, and `visible` in `1..=nk`. So every `get` below is
        // `Some` (the `else` branches are unreachable; they return an error instead of a panic).
        if q.rows() != out.len() / width {
            return Err(SHAPE);
        }
        for (i, (out_row, qi)) in out.chunks_exact_mut(width).zip(q.iter()).enumerate() {
            let visible = visible_keys(mask, i, nk);
            let Some(scores) = scratch.get_mut(..visible) else {
                return Err(SHAPE);
            };
            let heads = zip_lazy(qi.chunks_exact(dh), out_row.chunks_exact_mut(dh));
            for (h, (qh, oh)) in heads.enumerate() {
                let c0 = h * dh;
                let (kh, vh) = (k.columns(c0, dh)?, v.columns(c0, dh)?);
                if kh.rows() < visible || vh.rows() < visible {
                    return Err(SHAPE);
                }
                // Rows of `kh`/`vh` by iterator: at least `visible` of them (just checked).
                for (s, kr) in scores.iter_mut().zip(kh.iter()) {
                    *s = crate::dsp::dot_i8(qh, kr);
                }
                match ix {
                    // Size-first builds: one softmax for both cases (the same bits).
                    #[cfg(not(core_attn_small))]
                    Some(ix) => {
                        let max = crate::softmax::row_max::<P>(scores);
                        let sum = ix.exp_pass::<P, true>(scores, max, &self.exp);
                        crate::softmax::scale_in_place::<P>(scores, sum);
                    }
                    _ => softmax_scores_fast::<P>(scores, self.score_to_index, self.exp)?,
                }
                // Weighted sum of V, COLS columns at a time (accumulators in registers);
                // size-first builds keep only the column-by-column loop below (same sums).
                #[cfg(not(core_attn_small))]
                for (g, og) in oh.chunks_exact_mut(COLS).enumerate() {
                    // This group's COLS columns of V (rows exactly COLS wide).
                    let vg = vh.columns(g * COLS, COLS)?;
                    let mut acc = [0i32; COLS];
                    for (&p, vr) in scores.iter().zip(vg.iter()) {
                        let Some(vr) = vr.first_chunk::<COLS>() else {
                            return Err(SHAPE);
                        };
                        for (a, &x) in acc.iter_mut().zip(vr) {
                            *a = a.wrapping_add(p.wrapping_mul(x as i32));
                        }
                    }
                    for (o, &a) in og.iter_mut().zip(&acc) {
                        *o = out_rq.to_i8(a, self.output_zero_point);
                    }
                }
                #[cfg(not(core_attn_small))]
                let d = dh - dh % COLS;
                #[cfg(core_attn_small)]
                let d = 0;
                for (dd, o) in oh.iter_mut().enumerate().skip(d) {
                    let mut acc = 0i32;
                    for (j, &p) in scores.iter().enumerate() {
                        let Some(&x) = vh.get_row(j).and_then(|r| r.get(dd)) else {
                            return Err(SHAPE);
                        };
                        acc = acc.wrapping_add(p.wrapping_mul(x as i32));
                    }
                    *o = self.output.to_i8(acc, self.output_zero_point);
                }
            }
        }
        Ok(())
    }

    /// Whether [`Attention::run_packed`] handles this layer with `nk` keys: head width a
    /// multiple of 4 up to [`PACK_MAX_HEAD_DIM`], and the head's packed V within
    /// [`PACK_WORDS`].
    fn packed_fits(&self, nk: usize) -> bool {
        self.dsp_fits() && nk.div_ceil(2) * self.head_dim <= PACK_WORDS
    }

    /// Head width a multiple of 4 up to [`PACK_MAX_HEAD_DIM`]: what the `SMLAD` kernel's
    /// word loops need.
    fn dsp_fits(&self) -> bool {
        self.head_dim % 4 == 0 && self.head_dim <= PACK_MAX_HEAD_DIM
    }

    /// [`Attention::run`]'s kernel on cores with the DSP extension (and for two or more query
    /// rows), public so that the shared suite can run the same algorithm on the host (with the
    /// instructions emulated). Same results as [`Attention::run_generic`], bit for bit; layers
    /// it does not handle (head width not a multiple of 4 or over [`PACK_MAX_HEAD_DIM`], more
    /// than [`PACK_WORDS`] packed words per head, a score requantization outside the fast
    /// range) go to [`Attention::run`].
    ///
    /// Heads outer, query rows inner: each head's V is packed once into key pairs of
    /// sign-extended 16-bit values (`[column group][key pair][4 columns]` words, `PACK_WORDS`
    /// on the stack), the probabilities of a row are packed in pairs (Q15, `p_2k | p_2k+1 <<
    /// 16`), and the weighted sum is one `SMLAD` per two MACs. The query row's head is
    /// sign-extended once (`SXTB16`) for its scores.
    pub fn run_packed(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Rows<'_>,
        mask: Mask,
        out: &mut [i8],
        scratch: &mut [i32],
    ) -> Result<(), Error> {
        let dims = self.check(q, k, v, out, scratch)?;
        match ExpIndex::new(self.score_to_index).map(ExpIndex::refined) {
            Some(ix) if self.dsp_fits() => {
                let pack = q.rows() >= 2 && self.packed_fits(dims.nk.get());
                // The `asm!` passes where the target has them, the portable loops elsewhere.
                if cfg!(any(core_attn_dsp, core_attn_mve)) {
                    self.run_packed_inner::<Asm>(q, k, v, mask, out, scratch, dims, ix, pack);
                } else {
                    self.run_packed_inner::<Portable>(q, k, v, mask, out, scratch, dims, ix, pack);
                }
                Ok(())
            }
            _ => self.run(q, k, v, mask, out, scratch),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn run_packed_inner<P: Passes>(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Rows<'_>,
        mask: Mask,
        out: &mut [i8],
        scratch: &mut [i32],
        dims: Dims,
        ix: ExpIndex,
        pack: bool,
    ) {
        // Size-first builds (`cfg(core_attn_small)`): the direct path only, the same bits
        // (both are exact integer sums); the packed-V path (`run_packed_v`, `pack_v`, the
        // packed weighted sum: about 1.5 KB at opt-level "s") is not linked, for a few percent
        // more instructions on multi-row attention.
        // Two functions, so that the packed-V buffer is only on the stack when it is used.
        if pack && !cfg!(core_attn_small) {
            self.run_packed_v::<P>(q, k, v, mask, out, scratch, dims, ix);
        } else {
            self.run_direct_inner::<P>(q, k, v, mask, out, scratch, dims, ix);
        }
    }

    /// [`Attention::run_packed_inner`] with V packed per head (two or more query rows).
    ///
    /// Bounds: the caller ran [`Attention::check`] (see there) and [`Attention::packed_fits`]
    /// (`head_dim` a multiple of 4 in `4..=PACK_MAX_HEAD_DIM`, `⌈nk/2⌉ · head_dim ≤
    /// PACK_WORDS`); `nk = k.rows()`. Every `get` below is then `Some`; the `else` branches
    /// (an early return, debug-asserted) are unreachable.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn run_packed_v<P: Passes>(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Rows<'_>,
        mask: Mask,
        out: &mut [i8],
        scratch: &mut [i32],
        dims: Dims,
        ix: ExpIndex,
    ) {
        let (dh, nk) = (dims.dh.get(), dims.nk.get());
        let npk = nk.div_ceil(2);
        let mut vp = [0u32; PACK_WORDS];
        let mut qe = [0u32; PACK_MAX_HEAD_DIM / 2];
        // `vp` is `[dh / 4 column groups][npk key pairs][4 words]`; `npk ≥ 1` as `nk ≥ 1`.
        let (Some(vp), Some(zeros), Some(group)) = (
            vp.get_mut(..npk * dh),
            ZEROS.get(..dh),
            NonZeroUsize::new(4 * npk),
        ) else {
            return unreachable_shape();
        };
        for h in 0..self.heads {
            let c0 = h * dh;
            let (Ok(qv), Ok(vh)) = (q.columns(c0, dh), v.columns(c0, dh)) else {
                return unreachable_shape();
            };
            let done = pack_v(vh, npk, zeros, vp).and_then(|()| {
                self.packed_head::<P>(qv, k, c0, vp, group, mask, out, scratch, dims, &ix, &mut qe)
            });
            if done.is_none() {
                return unreachable_shape();
            }
        }
    }

    /// The query rows of one head of [`Attention::run_packed_v`] (`qv`: the head's columns
    /// `c0..c0 + head_dim` of Q) against its packed V `vp` (`group = 4·⌈nk/2⌉` words per
    /// column group). `None` only if a slice is shorter than `run_packed_v`'s checks make it
    /// (unreachable).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn packed_head<P: Passes>(
        &self,
        qv: Rows<'_>,
        k: Rows<'_>,
        c0: usize,
        vp: &[u32],
        group: NonZeroUsize,
        mask: Mask,
        out: &mut [i8],
        scratch: &mut [i32],
        dims: Dims,
        ix: &ExpIndex,
        qe: &mut [u32; PACK_MAX_HEAD_DIM / 2],
    ) -> Option<()> {
        let (width, dh, nk) = (dims.width.get(), dims.dh.get(), dims.nk.get());
        let out_rq = crate::dsp::RowRequant::new(self.output.multiplier, self.output.shift);
        let zp = self.output_zero_point;
        for (i, out_row) in zip_lazy(0..qv.rows(), out.chunks_exact_mut(width)) {
            let visible = visible_keys(mask, i, nk);
            let (qh, oh) = (qv.get_row(i)?, out_row.get_mut(c0..c0 + dh)?);
            let (pairs, big) = self.head_probs::<P>(qh, k, c0, visible, ix, scratch, qe)?;
            let pp = scratch.get(..pairs)?;
            for (o, vg) in zip_lazy(oh.chunks_exact_mut(4), vp.chunks_exact(group.get())) {
                let vg = vg.get(..4 * pairs)?;
                let mut acc = [0i32; 4];
                if P::DSP_FORM {
                    P::wsum_packed4(pp, vg, &mut acc);
                } else {
                    for (&p, w) in pp.iter().zip(vg.chunks_exact(4)) {
                        use crate::dsp::hw::smlad;
                        let p = p as u32;
                        for (a, &w) in acc.iter_mut().zip(w) {
                            *a = smlad(p, w, *a);
                        }
                    }
                }
                if big {
                    // A probability of exactly 1.0 (0x8000) was multiplied as −32768.
                    for (&p, w) in pp.iter().zip(vg.chunks_exact(4)) {
                        let p = p as u32;
                        for (a, &w) in acc.iter_mut().zip(w) {
                            if p & 0xffff == 0x8000 {
                                *a = a.wrapping_add((w as u16 as i16 as i32) << 16);
                            }
                            if p >> 16 == 0x8000 {
                                *a = a.wrapping_add(((w >> 16) as u16 as i16 as i32) << 16);
                            }
                        }
                    }
                }
                for (o, &a) in o.iter_mut().zip(&acc) {
                    *o = out_rq.to_i8(a, zp);
                }
            }
        }
        Some(())
    }

    /// Query-row-by-row kernel without V packing (one query row, e.g. decoding over a KV
    /// cache, or more keys than [`PACK_WORDS`] hold): the scores and softmax of
    /// [`Attention::run_packed`], the weighted sum straight from V (`wsum_direct`).
    ///
    /// Bounds: the caller ran [`Attention::check`] and [`Attention::dsp_fits`] (`head_dim` a
    /// multiple of 4 in `4..=PACK_MAX_HEAD_DIM`); `nk = k.rows()`. The `else` branches (an
    /// early return, debug-asserted) are unreachable.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn run_direct_inner<P: Passes>(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Rows<'_>,
        mask: Mask,
        out: &mut [i8],
        scratch: &mut [i32],
        dims: Dims,
        ix: ExpIndex,
    ) {
        let (width, dh, nk) = (dims.width.get(), dims.dh.get(), dims.nk.get());
        let out_rq = crate::dsp::RowRequant::new(self.output.multiplier, self.output.shift);
        let zp = self.output_zero_point;
        let mut qe = [0u32; PACK_MAX_HEAD_DIM / 2];
        for (i, out_row) in out.chunks_exact_mut(width).enumerate() {
            let visible = visible_keys(mask, i, nk);
            let Some(qi) = q.get_row(i) else {
                return unreachable_shape();
            };
            let heads = zip_lazy(qi.chunks_exact(dh), out_row.chunks_exact_mut(dh));
            for (h, (qh, oh)) in heads.enumerate() {
                let c0 = h * dh;
                let Some((pairs, big)) =
                    self.head_probs::<P>(qh, k, c0, visible, &ix, scratch, &mut qe)
                else {
                    return unreachable_shape();
                };
                let (Some(pp), Ok(vh)) = (scratch.get(..pairs), v.columns(c0, dh)) else {
                    return unreachable_shape();
                };
                // Size-first builds keep only the looped copy (same sums).
                match dh {
                    #[cfg(not(core_attn_small))]
                    16 => wsum_direct::<P, 16>(pp, v, vh, c0, visible, big, oh, out_rq, zp),
                    #[cfg(not(core_attn_small))]
                    24 => wsum_direct::<P, 24>(pp, v, vh, c0, visible, big, oh, out_rq, zp),
                    #[cfg(not(core_attn_small))]
                    32 => wsum_direct::<P, 32>(pp, v, vh, c0, visible, big, oh, out_rq, zp),
                    _ => wsum_direct_any::<P>(pp, v, vh, c0, visible, big, oh, out_rq, zp),
                }
            }
        }
    }

    /// Scores of one query row's head `qh` (columns `c0..c0 + head_dim`) against the first
    /// `visible` keys, softmax, probabilities packed in pairs into `scratch` (see
    /// [`crate::softmax::probs_to_pairs`]); returns the number of pairs and whether one
    /// probability is exactly 1.0. `None` (unreachable after the callers' checks) unless
    /// `qh` is `head_dim ≤ PACK_MAX_HEAD_DIM` wide, `1 ≤ visible ≤ k.rows()`,
    /// `visible ≤ scratch.len()` and the head's columns are inside `k`.
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(not(core_attn_small), inline(always))]
    #[cfg_attr(core_attn_small, inline(never))]
    fn head_probs<P: Passes>(
        &self,
        qh: &[i8],
        k: Rows<'_>,
        c0: usize,
        visible: usize,
        ix: &ExpIndex,
        scratch: &mut [i32],
        qe: &mut [u32; PACK_MAX_HEAD_DIM / 2],
    ) -> Option<(usize, bool)> {
        use crate::dsp::hw::{smlad, sxtb16, sxtb16_ror8};
        let dh = self.head_dim;
        for (e, c) in zip_lazy(qe.chunks_exact_mut(2), qh.chunks_exact(4)) {
            let (Some(x), [e0, e1]) = (word(c), e) else {
                return None;
            };
            *e0 = sxtb16(x);
            *e1 = sxtb16_ror8(x);
        }
        let qe = qe.get(..dh / 2)?;
        let scores = scratch.get_mut(..visible)?;
        let fixed = if P::DSP_FORM {
            P::scores_row(qe, k, c0, scores)
        } else {
            None
        };
        let max = match fixed {
            Some(max) => max,
            None => {
                // The head's columns of K: rows exactly `dh` wide.
                let kh = k.columns(c0, dh).ok()?;
                // Size-first builds keep only the looped copy (same scores).
                match dh {
                    #[cfg(not(core_attn_small))]
                    8 => scores_fixed::<8, 4>(scores, kh, qe)?,
                    #[cfg(not(core_attn_small))]
                    16 => scores_fixed::<16, 8>(scores, kh, qe)?,
                    #[cfg(not(core_attn_small))]
                    24 => scores_fixed::<24, 12>(scores, kh, qe)?,
                    #[cfg(not(core_attn_small))]
                    32 => scores_fixed::<32, 16>(scores, kh, qe)?,
                    _ => {
                        let mut max = i32::MIN;
                        for (j, s) in scores.iter_mut().enumerate() {
                            let kr = kh.get_row(j)?;
                            let mut acc = 0i32;
                            for (e, c) in zip_lazy(qe.chunks_exact(2), kr.chunks_exact(4)) {
                                let (Some(x), &[e0, e1]) = (word(c), e) else {
                                    return None;
                                };
                                acc = smlad(e0, sxtb16(x), acc);
                                acc = smlad(e1, sxtb16_ror8(x), acc);
                            }
                            *s = acc;
                            max = max.max(acc);
                        }
                        max
                    }
                }
            }
        };
        // |s| ≤ 2^28: `max − s` never wraps.
        let sum = ix.exp_pass::<P, true>(scores, max, &self.exp);
        Some(crate::softmax::probs_to_pairs::<P>(scores, visible, sum))
    }

    /// [`Attention::run`] with the generic reference loops: the variant every optimized kernel
    /// is tested against, bit for bit.
    pub fn run_generic(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Rows<'_>,
        mask: Mask,
        out: &mut [i8],
        scratch: &mut [i32],
    ) -> Result<(), Error> {
        let width = self.width();
        let nk = self.check(q, k, v, out, scratch)?.nk.get();
        let dh = self.head_dim;
        for i in 0..q.rows() {
            let visible = match mask {
                Mask::None => nk,
                Mask::Causal { first_position } => (first_position + i + 1).min(nk),
            };
            let qi = q.row(i);
            let out_row = &mut out[i * width..(i + 1) * width];
            for h in 0..self.heads {
                let cols = h * dh..(h + 1) * dh;
                let qh = &qi[cols.clone()];
                let scores = &mut scratch[..visible];
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = crate::linear::dot_i8(qh, &k.row(j)[cols.clone()]);
                }
                softmax_scores_in_place(scores, self.score_to_index, self.exp)?;
                for (d, o) in out_row[cols.clone()].iter_mut().enumerate() {
                    let col = h * dh + d;
                    let mut acc = 0i32;
                    for (j, &p) in scores.iter().enumerate() {
                        acc += p * v.row(j)[col] as i32;
                    }
                    *o = self.output.to_i8(acc, self.output_zero_point);
                }
            }
        }
        Ok(())
    }

    /// Self-attention over one sequence (all keys visible), from a fused `[n][3·width]` QKV
    /// buffer laid out `q | k | v`.
    pub fn self_attention(
        &self,
        qkv: &[i8],
        out: &mut [i8],
        scratch: &mut [i32],
        mask: Mask,
    ) -> Result<(), Error> {
        let (q, k, v) = self.split_qkv(qkv)?;
        self.run(q, k, v, mask, out, scratch)
    }

    /// [`Attention::self_attention`] with [`Attention::run_generic`].
    pub fn self_attention_generic(
        &self,
        qkv: &[i8],
        out: &mut [i8],
        scratch: &mut [i32],
        mask: Mask,
    ) -> Result<(), Error> {
        let (q, k, v) = self.split_qkv(qkv)?;
        self.run_generic(q, k, v, mask, out, scratch)
    }

    /// Q, K and V views of a fused `[n][3·width]` buffer (the `n` rows `qkv.len() / (3·width)`,
    /// which must divide exactly; a zero or overflowing `3·width` is an error, not a division
    /// by zero).
    fn split_qkv<'q>(&self, qkv: &'q [i8]) -> Result<(Rows<'q>, Rows<'q>, Rows<'q>), Error> {
        let w = self.width();
        // `0 < w ≤ MAX_WIDTH`: `3·w` neither overflows nor divides by zero.
        if w == 0 || w > MAX_WIDTH {
            return Err(Error::BadDimension {
                what: "attention width",
                value: w,
            });
        }
        let stride = 3 * w;
        let n = qkv.len() / stride;
        if n * stride != qkv.len() {
            return Err(Error::ShapeMismatch {
                what: "attention qkv",
                expected: n * stride,
                found: qkv.len(),
            });
        }
        let q = Rows::strided(qkv, 0, n, w, stride)?;
        let k = Rows::strided(qkv, w, n, w, stride)?;
        let v = Rows::strided(qkv, 2 * w, n, w, stride)?;
        Ok((q, k, v))
    }
}

/// Marks an early return of an internal kernel that its callers' validation makes
/// unreachable ([`Attention::check`], [`Attention::dsp_fits`], [`Attention::packed_fits`]):
/// nothing in release builds, a failed assertion in debug builds.
#[inline(always)]
pub(super) fn unreachable_shape() {
    debug_assert!(
        false,
        "attention: shape already validated by Attention::check"
    );
}

/// Keys that query row `i` sees: all `nk`, or under the causal mask the first
/// `first_position + i + 1` (at most `nk`). In `1..=nk` for `nk ≥ 1` (saturating: no
/// overflow, and never 0, so a row's maximum always has an element).
#[inline(always)]
pub(super) fn visible_keys(mask: Mask, i: usize, nk: usize) -> usize {
    match mask {
        Mask::None => nk,
        Mask::Causal { first_position } => {
            first_position.saturating_add(i).saturating_add(1).min(nk)
        }
    }
}

/// Owned attention parameters built from real scales (pack time, host only).
#[cfg(feature = "std")]
#[derive(Debug, Clone)]
pub struct AttentionParams {
    /// Heads.
    pub heads: usize,
    /// Head width.
    pub head_dim: usize,
    /// See [`Attention::score_to_index`].
    pub score_to_index: Requant,
    /// High half of [`Attention::exp`].
    pub exp_hi: [u16; 256],
    /// Low half of [`Attention::exp`].
    pub exp_lo: [u16; 256],
    /// See [`Attention::output`].
    pub output: Requant,
    /// Output zero point.
    pub output_zero_point: i32,
}

#[cfg(feature = "std")]
impl AttentionParams {
    /// Parameters for symmetric Q/K/V scales `s_q`, `s_k`, `s_v` and output quantization `out`,
    /// with `1/√head_dim` folded into the score requantization and the exp table's default step.
    pub fn quantize(
        heads: usize,
        head_dim: usize,
        s_q: f64,
        s_k: f64,
        s_v: f64,
        out: crate::requant::QParams,
    ) -> Result<Self, Error> {
        let step = ExpTable::default_step();
        let score_to_index = Requant::from_real(s_q * s_k / ((head_dim as f64).sqrt() * step))?;
        let output = Requant::from_real(s_v / (32768.0 * out.scale))?;
        let (exp_hi, exp_lo) = ExpTable::build(step);
        Ok(AttentionParams {
            heads,
            head_dim,
            score_to_index,
            exp_hi,
            exp_lo,
            output,
            output_zero_point: out.zero_point,
        })
    }

    /// Borrow as the kernel's parameter struct.
    pub fn as_attention(&self) -> Attention<'_> {
        Attention {
            heads: self.heads,
            head_dim: self.head_dim,
            score_to_index: self.score_to_index,
            exp: ExpTable {
                hi: &self.exp_hi,
                lo: &self.exp_lo,
            },
            output: self.output,
            output_zero_point: self.output_zero_point,
        }
    }
}
