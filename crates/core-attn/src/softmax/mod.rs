//! Integer softmax over one row, numerically stable (the row maximum is subtracted first).
//!
//! `p_j = exp(x_j − max) / Σ_k exp(x_k − max)`
//!
//! 1. the row maximum is found in the integer domain;
//! 2. each difference `max − x_j ≥ 0` is requantized to a 16-bit index `d_j` in units of the
//!    table step (differences past `65535` steps saturate, where `exp` is below 2^-17);
//! 3. `exp(−d · step)` is read from two 256-entry tables built at pack time ([`ExpTable`]):
//!    `exp(−(256·h + l)·step) = hi[h] · lo[l]`, one multiply and a shift. A single 256-entry table
//!    would quantize score differences to ~0.04 (the 11-unit useful range over 256 steps), which
//!    costs ~10 dB of attention SQNR when many keys have similar weights; the two-level table
//!    resolves differences to ~2·10^-4 for one extra load and multiply;
//! 4. the exponentials (≤ 65535) are summed in a `u32` (at most `MAX_SEQ_LEN · 65535 < 2^31`),
//!    one 64-bit reciprocal `2^47 / Σ` is taken per row, and each probability is
//!    `(e_j · recip + 2^31) >> 32` in Q15 (`1.0 = 32768`).
//!
//! No float, no division per element. [`softmax_i8`] on an int8 row of length `N` is within
//! `SOFTMAX_MAX_LSB_ERROR + p_j·(6 + 0.55·N)` Q15 LSBs of the f64 softmax `p_j` of the same int8
//! inputs (tested in `tests/kernels.rs`). The `N`-proportional part is the tables' rounding: every
//! exponential carries up to ~1 unit of `1/65535` absolute error, and the `N − 1` others' errors
//! all land in the sum that divides `e_j`; `6·p_j` is the index rounding (½ step, relative
//! `9·10^-5` on each exponential). A constant bound (the earlier "2 LSBs") does not hold: a row
//! of 17 with one dominant value already showed 4, a row of 1000 over 40.
// Size-first builds (`cfg(core_attn_small)`) keep one copy of each loop: the fast
// variants they leave out are dead there.
#![cfg_attr(core_attn_small, allow(dead_code))]

use core::num::NonZeroU32;

use crate::dsp::passes::Passes;
use crate::error::check_len;
use crate::requant::Requant;
use crate::{Error, MAX_SEQ_LEN};

mod row_i8;
mod variants;

pub use row_i8::{softmax_i8, softmax_i8_generic};
pub use variants::{SoftmaxI8Fn, SoftmaxScoresFn, SoftmaxVariant, SOFTMAX_VARIANTS};

/// Q15 probability of 1.0.
pub const PROB_ONE: u32 = 1 << 15;

/// Constant part of the documented bound between [`softmax_i8`] and the f64 softmax of the same
/// inputs, in Q15 LSBs; the full bound is `SOFTMAX_MAX_LSB_ERROR + p_j·(6 + 0.55·N)` (module
/// docs).
pub const SOFTMAX_MAX_LSB_ERROR: u32 = 2;

/// Largest table index: differences are saturated here.
pub const MAX_INDEX: i32 = 65535;

/// `exp(−d · step)` for `d = 256·h + l` as `hi[h] · lo[l] / 65536`, each entry `≤ 65535`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExpTable<'a> {
    /// `round(65535 · exp(−256·h·step))`, non-increasing, entry 0 positive.
    pub hi: &'a [u16; 256],
    /// `round(65535 · exp(−l·step))`, non-increasing, entry 0 positive.
    pub lo: &'a [u16; 256],
}

impl<'a> ExpTable<'a> {
    /// Wrap the tables after checking they are usable (entry 0 positive, non-increasing), so
    /// that every row sum is positive.
    pub fn new(hi: &'a [u16; 256], lo: &'a [u16; 256]) -> Result<Self, Error> {
        for t in [hi, lo] {
            if t[0] == 0 || t.windows(2).any(|w| w[1] > w[0]) {
                return Err(crate::error::bad_blob(
                    "exp table not positive and non-increasing",
                ));
            }
        }
        Ok(ExpTable { hi, lo })
    }

    /// `exp(−d·step)` scaled by 65535 (approximately; `d = 0` gives `65535² >> 16 = 65534`).
    #[inline(always)]
    pub fn exp(&self, d: u32) -> u32 {
        if d >= MAX_INDEX as u32 {
            // Past the table: exp < 2^-17, i.e. below ½ in units of 1/65535. The product of the
            // last entries would round to 1 here, and N saturated keys would then steal N/65535
            // of the probability mass from the ones that matter.
            return 0;
        }
        (self.hi[(d >> 8) as usize] as u32 * self.lo[(d & 255) as usize] as u32 + (1 << 15)) >> 16
    }

    /// Build `(hi, lo)` for a difference step of `step` real units per index (pack time).
    #[cfg(feature = "std")]
    pub fn build(step: f64) -> ([u16; 256], [u16; 256]) {
        let mut hi = [0u16; 256];
        let mut lo = [0u16; 256];
        for i in 0..256 {
            hi[i] = (65535.0 * libm::exp(-(256.0 * i as f64) * step)).round() as u16;
            lo[i] = (65535.0 * libm::exp(-(i as f64) * step)).round() as u16;
        }
        (hi, lo)
    }

    /// The step that spends the 65536 indices on the range where `exp(−x) ≥ 2^-17`.
    #[cfg(feature = "std")]
    pub fn default_step() -> f64 {
        17.0 * core::f64::consts::LN_2 / 65535.0
    }
}

/// `2^47 / sum`, rounded; `sum ≥ 1`.
#[inline]
fn reciprocal(sum: u32) -> u64 {
    let sum = sum.max(1) as u64;
    #[cfg(not(core_attn_small))]
    return ((1u64 << 47) + sum / 2) / sum;
    // Size-first builds: restoring division, one quotient bit per step (the numerator is
    // below 2^48, the remainder below `sum ≤ 2^32`), so that no 64-bit division routine is
    // linked; the same quotient.
    #[cfg(core_attn_small)]
    {
        let n = (1u64 << 47) + sum / 2;
        let (mut q, mut r) = (0u64, 0u64);
        for i in (0..48).rev() {
            r = (r << 1) | ((n >> i) & 1);
            q <<= 1;
            if r >= sum {
                r -= sum;
                q |= 1;
            }
        }
        q
    }
}

/// Q15 probability of an exponential `e ≤ 65535` given `recip = 2^47 / Σ` (`e · recip < 2^63`).
#[inline(always)]
fn probability(e: u32, recip: u64) -> u32 {
    ((e as u64 * recip + (1 << 31)) >> 32) as u32
}

fn check_row_len(len: usize) -> Result<(), Error> {
    if len == 0 || len > MAX_SEQ_LEN {
        Err(Error::BadDimension {
            what: "softmax length",
            value: len,
        })
    } else {
        Ok(())
    }
}

/// Softmax of raw `i32` scores in place, into Q15 probabilities.
///
/// `diff_to_index` maps a score difference (in the scores' units) to table indices
/// (`score_scale / step`). Scores must be within `±2^29` (attention's are within `2^28`).
///
/// Runs this build's native entry of [`SOFTMAX_VARIANTS`] (the only way a softmax kernel is
/// dispatched to).
#[inline]
pub fn softmax_scores_in_place(
    buf: &mut [i32],
    diff_to_index: Requant,
    exp: ExpTable<'_>,
) -> Result<(), Error> {
    variants::NATIVE_SCORES(buf, diff_to_index, exp)
}

/// The fast softmax of raw scores on the passes `P` (the registry's entries): the `asm!`
/// passes' form where `P::DSP_FORM` (maximum and exponentials in one pass, elements between the
/// bounds of the fast range marked and fixed after), else the portable loops of [`ExpIndex`].
pub(crate) fn softmax_scores_fast<P: Passes>(
    buf: &mut [i32],
    diff_to_index: Requant,
    exp: ExpTable<'_>,
) -> Result<(), Error> {
    // Size-first builds (`cfg(core_attn_small)`): the generic loops only (the same bits).
    #[cfg(core_attn_small)]
    return softmax_scores_in_place_generic(buf, diff_to_index, exp);
    #[cfg(not(core_attn_small))]
    {
        check_row_len(buf.len())?;
        if P::DSP_FORM {
            if let Some(p) = quick_exp_loop(diff_to_index, &exp) {
                // Maximum and exponentials in one `asm!` block.
                let sum = P::softmax_exp_i32(buf, &p);
                let sum = if sum & (1 << 31) == 0 {
                    sum
                } else {
                    fix_marked_requant(buf, sum, diff_to_index, &exp)
                };
                scale_in_place::<P>(buf, sum);
                return Ok(());
            }
        }
        let Some(ix) = ExpIndex::new(diff_to_index) else {
            return softmax_scores_in_place_generic(buf, diff_to_index, exp);
        };
        let max = row_max::<P>(buf);
        let sum = ix.exp_pass::<P, false>(buf, max, &exp);
        scale_in_place::<P>(buf, sum);
        Ok(())
    }
}

/// The `asm!` exponential pass's parameters straight from a [`Requant`] in the usual range
/// (about 20 instructions instead of [`ExpIndex::new`]'s general case): multiplier `≥ 2^17`,
/// right shift `r ≤ 32` and `a = r − 1 − k ∈ 0..=14` (`k = bits(m) − 16`, so that
/// `X / 2^k = 131069 · 2^a` fits 32 bits). The bracket is [`ExpIndex::new`]'s (`mt ≥ 2^15`):
/// `t_lo = ⌊131069·2^a / (mt + 1)⌋ ≤ ⌈X/m⌉ ≤ t_lo + 4 + ⌊t_lo / 2^14⌋ = t_hi`, and
/// `t_lo ≤ X/m < 2^(r−1)` (`m ≥ 2^17`), the guard of the single-word index.
#[inline(always)]
fn quick_exp_loop<'t>(r: Requant, exp: &ExpTable<'t>) -> Option<crate::dsp::softmax::ExpLoop<'t>> {
    let m = r.multiplier;
    // sh = 32 − r, r = 31 − shift.
    let sh = r.shift as i32 + 1;
    if m < 1 << 17 || !(0..=31).contains(&sh) {
        return None;
    }
    let k = 16 - m.leading_zeros();
    let a = 31 - sh - k as i32;
    if !(0..=14).contains(&a) {
        return None;
    }
    let mt = (m as u32) >> k;
    let t_lo = (131069u32 << a) / (mt + 1);
    Some(crate::dsp::softmax::ExpLoop {
        t_lo,
        sh: sh as u32,
        m,
        hi: exp.hi,
        lo: exp.lo,
        t_hi: t_lo + 4 + (t_lo >> 14),
        max: 0,
    })
}

/// [`ExpIndex::fix_marked`] for [`quick_exp_loop`]'s pass (rare: a difference within a few
/// steps of the saturation threshold).
#[cold]
#[inline(never)]
fn fix_marked_requant(buf: &mut [i32], sum: u32, r: Requant, exp: &ExpTable<'_>) -> u32 {
    match ExpIndex::new(r) {
        Some(ix) => ix.fix_marked(buf, sum, exp),
        // Unreachable: `quick_exp_loop` accepted `r` (multiplier `≥ 2^17`, right shift
        // `1..=32`), which `ExpIndex::new` accepts too. The generic index, for completeness.
        None => {
            debug_assert!(false, "quick_exp_loop accepted the requantization");
            let mut sum = sum & !(1 << 31);
            for x in buf.iter_mut().filter(|x| **x < 0) {
                let d = (*x as u32) & !(1 << 31);
                let e = exp.exp(r.apply(d as i32).clamp(0, MAX_INDEX) as u32);
                *x = e as i32;
                sum += e;
            }
            sum
        }
    }
}

/// Largest element of a non-empty row (4 at a time: fewer loop branches).
#[inline(always)]
pub(crate) fn row_max<P: Passes>(buf: &[i32]) -> i32 {
    // Callers pass non-empty rows (so this folds away); an empty one gives the maximum's
    // identity instead of an out-of-bounds read of element 0.
    if buf.is_empty() {
        return i32::MIN;
    }
    if P::DSP_FORM {
        return P::row_max_i32(buf);
    }
    let mut chunks = buf.chunks_exact(4);
    let mut m = buf[0]; // non-empty
    for c in &mut chunks {
        m = m.max(c[0]).max(c[1]).max(c[2]).max(c[3]);
    }
    for &x in chunks.remainder() {
        m = m.max(x);
    }
    m
}

/// `buf[j] ← probability(buf[j], round(2^47 / sum))`, the exponentials replaced in place.
#[inline(always)]
pub(crate) fn scale_in_place<P: Passes>(buf: &mut [i32], sum: u32) {
    let recip = reciprocal_fast(sum);
    match u32::try_from(recip) {
        Ok(r32) => {
            if !P::DSP_FORM {
                for x in buf.iter_mut() {
                    *x = probability32(*x as u32, r32) as i32;
                }
            } else if r32 < 1 << 31 {
                P::scale_i32::<true>(buf, r32);
            } else {
                P::scale_i32::<false>(buf, r32);
            }
        }
        Err(_) => {
            for x in buf.iter_mut() {
                *x = probability(*x as u32, recip) as i32;
            }
        }
    }
}

/// The score-difference → exponential conversion of one [`Requant`], prepared once (per call,
/// or once per attention layer) so that the per-element work is a compare, two single-word
/// multiply/shift instructions and the two table reads.
///
/// With `r = 31 − shift` the generic index is `q(d) = ⌊(d·m + 2^(r−1)) / 2^r⌋` (then clamped to
/// `0..=65535`, and `exp` is 0 at 65535). For `d < t_lo`:
/// - `r ≤ 32`: `q(d) = ⌊((d·2^(32−r))·m + 2^31) / 2^32⌋` (numerator and denominator times
///   `2^(32−r)`), one `SMMULR` of `d << (32 − r)` (`< 2^31` as `t_lo ≤ 2^(r−1)`) by `m`;
/// - `r ≥ 33`: `q(d) = ⌊(⌊d·m / 2^32⌋ + 2^(r−33)) / 2^(r−32)⌋` (as [`crate::dsp::RowRequant`]:
///   `2^(r−1)` is a multiple of `2^32`), `SMMLA` and a shift (`d < 2^31`).
///
/// `q(d) < 65535 ⟺ d·m < X = 131069·2^(r−1)`: `t_lo ≤ ⌈X/m⌉ ≤ t_hi` are bounds from a 15-bit
/// divisor (`t_lo` is exact after a short refinement when the bounds are close, as they are for
/// usual scales), `d ≥ t_hi` gives 0 and `t_lo ≤ d < t_hi` takes the exact 64-bit path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExpIndex {
    m: i32,
    /// `r ≤ 32`: left shift `32 − r`; `r ≥ 33`: right shift `r − 32`.
    sh: u32,
    /// `r ≥ 33`: rounding constant `2^(r−33)`.
    c: i32,
    right: u32,
    t_lo: u32,
    t_hi: u32,
}

impl ExpIndex {
    /// `None` for a negative multiplier or a right shift outside `1..=62` (generic path).
    #[inline]
    pub(crate) fn new(r: Requant) -> Option<Self> {
        let right = 31 - r.shift as i32;
        if r.multiplier < 0 || !(1..=62).contains(&right) {
            return None;
        }
        let right = right as u32;
        let m = r.multiplier as u32;
        let (sh, c) = if right <= 32 {
            (32 - right, 0)
        } else {
            (right - 32, 1i32 << (right - 33))
        };
        // Fast path: d·2^(32−r) < 2^31 (r ≤ 32), d < 2^31 (r ≥ 33).
        let guard: u32 = if right <= 32 {
            1 << (right - 1)
        } else {
            1 << 31
        };
        let (t_lo, t_hi) = if m == 0 {
            (guard, u32::MAX)
        } else {
            // X = 131069·2^(r−1); m ∈ [mt·2^k, (mt+1)·2^k) with mt < 2^16.
            let k = (32 - m.leading_zeros()).saturating_sub(16);
            let mt = m >> k;
            let a = right as i32 - 1 - k as i32;
            if a <= 14 {
                // ⌊X/2^k⌋ and ⌈X/2^k⌉ fit 32 bits: one division each.
                let (n_lo, n_hi) = if a >= 0 {
                    (131069u32 << a, 131069u32 << a)
                } else {
                    let a = (-a) as u32;
                    (131069u32 >> a, (131069u32 + (1 << a) - 1) >> a)
                };
                let lo = n_lo / (mt + 1);
                let hi = if k > 0 {
                    // mt ≥ 2^15: ⌈X/m⌉ ≤ ⌈n_hi/mt⌉ ≤ lo + 2 + (lo + 2)/mt (n_lo < (lo+1)(mt+1),
                    // n_hi ≤ n_lo + 1) ≤ lo + 4 + ⌊lo/2^14⌋, without a second division.
                    lo.saturating_add(4 + (lo >> 14))
                } else {
                    // k = 0: mt = m, non-zero in this branch (`max` only tells the compiler).
                    n_hi.div_ceil(mt.max(1))
                };
                (lo.min(guard), hi)
            } else {
                bounds_wide(a as u32, mt, guard)
            }
        };
        Some(ExpIndex {
            m: m as i32,
            sh,
            c,
            right,
            t_lo,
            t_hi,
        })
    }

    /// Move `t_lo` up to the exact threshold when the bounds are close (a few steps of the
    /// 64-bit index): then every difference is either on the fast path or gives 0.
    #[inline]
    pub(crate) fn refined(mut self) -> Self {
        if self.right <= 32 {
            // Below the guard the single-word index is exact: two instructions per step.
            let guard: u32 = 1 << (self.right - 1);
            if self.t_hi <= guard && self.t_hi - self.t_lo <= 8 {
                while self.t_lo < self.t_hi
                    && self.fast_index::<false>(self.t_lo) < MAX_INDEX as u32
                {
                    self.t_lo += 1;
                }
                self.t_hi = self.t_lo;
            }
        } else if self.t_hi <= 1 << 31 && self.t_hi - self.t_lo <= 8 {
            while self.t_lo < self.t_hi && self.exact_index(self.t_lo) < MAX_INDEX as u32 {
                self.t_lo += 1;
            }
            self.t_hi = self.t_lo;
        }
        self
    }

    /// The generic index `min(q(d), 65535)` in 64-bit arithmetic.
    #[inline(always)]
    fn exact_index(&self, d: u32) -> u32 {
        let q = (d as u64 * self.m as u32 as u64 + (1u64 << (self.right - 1))) >> self.right;
        q.min(MAX_INDEX as u64) as u32
    }

    /// `q(d)` for `d < t_lo` (see the type's docs).
    #[inline(always)]
    fn fast_index<const BIG: bool>(&self, d: u32) -> u32 {
        if BIG {
            let hi = ((d as i32 as i64 * self.m as i64) >> 32) as i32;
            (hi.wrapping_add(self.c) >> self.sh) as u32
        } else {
            let x = (d << self.sh) as i32;
            ((x as i64 * self.m as i64 + (1 << 31)) >> 32) as u32
        }
    }

    /// `exp` of a difference `d ≥ 0` past the fast range.
    #[cold]
    #[inline(never)]
    fn slow(&self, d: u32, exp: &ExpTable<'_>) -> u32 {
        exp.exp(self.exact_index(d))
    }

    /// `ExpTable::exp(clamp(diff_to_index.apply(diff), 0, 65535))` for `diff = max − x`
    /// (wrapping, as the generic loop), for one element.
    #[inline(always)]
    pub(crate) fn exp<const BIG: bool>(&self, diff: i32, exp: &ExpTable<'_>) -> u32 {
        // A negative (wrapped) difference rounds to index ≤ 0, i.e. 0.
        let d = diff.max(0) as u32;
        if d < self.t_lo {
            let q = self.fast_index::<BIG>(d);
            lookup(exp, q)
        } else if d >= self.t_hi {
            0
        } else {
            self.slow(d, exp)
        }
    }

    /// `buf[j] ← exp(max − buf[j])`, returning the sum. `NONNEG`: the caller guarantees
    /// `max − buf[j]` does not wrap. Size-first builds (`cfg(core_attn_small)`) keep one
    /// out-of-line copy.
    #[cfg_attr(not(core_attn_small), inline(always))]
    #[cfg_attr(core_attn_small, inline(never))]
    pub(crate) fn exp_pass<P: Passes, const NONNEG: bool>(
        &self,
        buf: &mut [i32],
        max: i32,
        exp: &ExpTable<'_>,
    ) -> u32 {
        if self.right <= 32 {
            if P::DSP_FORM {
                let sum = P::exp_pass_i32(buf, &self.exp_loop(max, exp));
                return self.fix_marked(buf, sum, exp);
            }
            self.exp_pass_mode::<false, NONNEG>(buf, max, exp)
        } else {
            self.exp_pass_mode::<true, NONNEG>(buf, max, exp)
        }
    }

    /// The `asm!` pass's parameters (fast range, right shift `≤ 32`).
    #[inline(always)]
    pub(crate) fn exp_loop<'t>(
        &self,
        max: i32,
        exp: &ExpTable<'t>,
    ) -> crate::dsp::softmax::ExpLoop<'t> {
        crate::dsp::softmax::ExpLoop {
            t_lo: self.t_lo,
            sh: self.sh,
            m: self.m,
            hi: exp.hi,
            lo: exp.lo,
            t_hi: self.t_hi,
            max,
        }
    }

    /// After an `asm!` exponential pass: bit 31 of `sum` set means some elements (differences
    /// between the two bounds) were left as `d | 2^31`; compute those exactly.
    #[inline(always)]
    pub(crate) fn fix_marked(&self, buf: &mut [i32], sum: u32, exp: &ExpTable<'_>) -> u32 {
        if sum & (1 << 31) == 0 {
            return sum;
        }
        self.fix_marked_cold(buf, sum, exp)
    }

    #[cold]
    #[inline(never)]
    fn fix_marked_cold(&self, buf: &mut [i32], sum: u32, exp: &ExpTable<'_>) -> u32 {
        let mut sum = sum & !(1 << 31);
        for x in buf.iter_mut().filter(|x| **x < 0) {
            let e = self.slow((*x as u32) & !(1 << 31), exp);
            *x = e as i32;
            sum += e;
        }
        sum
    }

    #[inline(always)]
    fn exp_pass_mode<const BIG: bool, const NONNEG: bool>(
        &self,
        buf: &mut [i32],
        max: i32,
        exp: &ExpTable<'_>,
    ) -> u32 {
        let mut sum = 0u32;
        for x in buf.iter_mut() {
            let diff = max.wrapping_sub(*x);
            let e = if NONNEG {
                self.exp_nonneg::<BIG>(diff as u32, exp)
            } else {
                self.exp::<BIG>(diff, exp)
            };
            *x = e as i32;
            sum = sum.wrapping_add(e);
        }
        sum
    }

    /// [`ExpIndex::exp`] of a difference known to be non-negative.
    #[inline(always)]
    fn exp_nonneg<const BIG: bool>(&self, d: u32, exp: &ExpTable<'_>) -> u32 {
        if d < self.t_lo {
            lookup(exp, self.fast_index::<BIG>(d))
        } else if d >= self.t_hi {
            0
        } else {
            self.slow(d, exp)
        }
    }
}

/// `hi[q >> 8] · lo[q & 255]`, rounded, for an index `q < 65535` (the masks only keep the
/// compiler's bounds checks away).
#[inline(always)]
fn lookup(exp: &ExpTable<'_>, q: u32) -> u32 {
    (exp.hi[((q >> 8) & 255) as usize] as u32 * exp.lo[(q & 255) as usize] as u32 + (1 << 15)) >> 16
}

/// [`ExpIndex`] bounds when `X / 2^k = 131069·2^a` does not fit 32 bits (`a > 14`: scales
/// under ~2^-16 index per score unit), in 64-bit arithmetic with 16-bit division digits.
#[cold]
#[inline(never)]
fn bounds_wide(a: u32, mt: u32, guard: u32) -> (u32, u32) {
    // `mt` is the top 16 bits of a non-zero multiplier: never 0 (the bounds would be the trivial
    // ones then, which are still correct).
    let (true, Some(mt_nz)) = (a <= 46, NonZeroU32::new(mt)) else {
        return (guard, u32::MAX);
    };
    let n = 131069u64 << a;
    // `div_small` needs a divisor ≤ 2^15: with mt ≥ 2^15, use mt/2 on the exactly halved
    // numerator (`n` is even; m ∈ [⌊mt/2⌋·2^(k+1), (⌊mt/2⌋+1)·2^(k+1))).
    let (n, mt) = match NonZeroU32::new(mt_nz.get() >> 1) {
        Some(half) if mt_nz.get() >= 1 << 15 => (n >> 1, half),
        _ => (n, mt_nz),
    };
    let lo = div_small(n, mt.saturating_add(1));
    let q = div_small(n, mt);
    let hi = q + (q * mt.get() as u64 != n) as u64;
    (lo.min(guard as u64) as u32, hi.min(u32::MAX as u64) as u32)
}

/// `n / d` for `1 ≤ d ≤ 2^15`, in 16-bit digits (every partial remainder `< 2^15`, so each step
/// is one 32-bit division).
#[inline]
fn div_small(n: u64, d: NonZeroU32) -> u64 {
    let mut q = 0u64;
    let mut r = 0u32;
    for k in (0..4).rev() {
        let cur = (r << 16) | ((n >> (16 * k)) as u32 & 0xffff);
        q = (q << 16) | (cur / d) as u64;
        r = cur % d;
    }
    q
}

/// [`reciprocal`] (`round(2^47 / sum)`) with hardware 32-bit divisions: for `2^16 ≤ sum <
/// 2^24` (every row of up to 256 keys whose maximum has the table's top value) the top 32 bits
/// of `2^47 + ⌊sum/2⌋` first, then two 8-bit digits (each partial remainder is `< sum < 2^24`,
/// so shifting it by 8 cannot overflow); other sums take long division in `clz(sum)`-bit digits.
#[inline]
fn reciprocal_fast(sum: u32) -> u64 {
    let s = sum.max(1);
    if (1 << 16..1 << 24).contains(&s) {
        let n_lo = (s / 2) & 0xffff; // low 16 bits of 2^47 + ⌊s/2⌋ (⌊s/2⌋ < 2^23)
        let n_hi = (1u32 << 31) + ((s / 2) >> 16);
        let q1 = n_hi / s;
        let r1 = n_hi - q1 * s;
        let c2 = (r1 << 8) | (n_lo >> 8);
        let q2 = c2 / s;
        let r2 = c2 - q2 * s;
        let c3 = (r2 << 8) | (n_lo & 0xff);
        let q3 = c3 / s;
        return ((q1 << 16) | (q2 << 8) | q3) as u64;
    }
    // `s ≥ 1`; as a `NonZeroU32` the divisions below need no zero check (out of line, the
    // callers' `max(1)` is not always seen there: a panic path in the Cortex-M33 firmware).
    reciprocal_digits(NonZeroU32::new(s).unwrap_or(NonZeroU32::MIN))
}

#[cold]
#[inline(never)]
fn reciprocal_digits(sn: NonZeroU32) -> u64 {
    let s = sn.get();
    let n: u64 = (1u64 << 47) + (s / 2) as u64; // < 2^48
    let b = s.leading_zeros().min(16); // digit width
    if b == 0 {
        return reciprocal(s);
    }
    let mut q: u64 = 0;
    let mut r: u32 = 0;
    let mut bits = 48i32;
    while bits > 0 {
        let take = (b as i32).min(bits) as u32;
        bits -= take as i32;
        let digit = ((n >> bits) as u32) & ((1u32 << take) - 1);
        let cur = (r << take) | digit;
        q = (q << take) | (cur / sn) as u64;
        r = cur % sn;
    }
    q
}

/// Turn the `n` exponentials at the start of `buf` (summing to `sum`) into Q15 probabilities
/// packed in 16-bit pairs, in place: `buf[k] = p_2k | p_2k+1 << 16` for `k < ⌈n/2⌉` (a missing
/// last partner is 0). Returns the number of pairs and whether any probability has bit 15 set
/// (only `p = 32768` can: a signed 16-bit multiply would read it as −32768).
#[inline(always)]
pub(crate) fn probs_to_pairs<P: Passes>(buf: &mut [i32], n: usize, sum: u32) -> (usize, bool) {
    // Callers pass `n ≤ buf.len()` (the visible keys of a score row): the early return is
    // unreachable, and every index below is then provably inside `buf`.
    let Some(buf) = buf.get_mut(..n) else {
        debug_assert!(false, "probs_to_pairs: n > buf.len()");
        return (0, false);
    };
    let recip = reciprocal_fast(sum);
    let pairs = n.div_ceil(2);
    let mut or = 0u32;
    match u32::try_from(recip) {
        Ok(r) => {
            if P::DSP_FORM {
                or = if r < 1 << 31 {
                    P::pairs_i32::<true>(buf, n / 2, r)
                } else {
                    P::pairs_i32::<false>(buf, n / 2, r)
                };
                // Bit 31 of a pair is the second probability's bit 15.
                or |= or >> 16;
            } else {
                for k in 0..n / 2 {
                    // `2k + 1 < n = buf.len()`: never `None`. Read with `get` so that a caller
                    // where the compiler cannot see it (the grouped-query pair path on the
                    // Cortex-M0) keeps no panic branch.
                    let (Some(&e0), Some(&e1)) = (buf.get(2 * k), buf.get(2 * k + 1)) else {
                        break;
                    };
                    let p0 = probability32(e0 as u32, r);
                    let p1 = probability32(e1 as u32, r);
                    or |= p0 | p1;
                    if let Some(pair) = buf.get_mut(k) {
                        *pair = (p0 | (p1 << 16)) as i32;
                    }
                }
            }
            if n % 2 == 1 {
                // `buf.len() = n`: the last element is `buf[n − 1]`, and `n / 2 < n`.
                let p = buf.last().map_or(0, |&e| probability32(e as u32, r));
                or |= p;
                if let Some(pair) = buf.get_mut(n / 2) {
                    *pair = p as i32;
                }
            }
        }
        Err(_) => {
            for k in 0..pairs {
                // `2k < n = buf.len()`; a missing last partner (`2k + 1 = n`) is 0.
                let p = |j: usize| buf.get(j).map_or(0, |&e| probability(e as u32, recip));
                let (p0, p1) = (p(2 * k), p(2 * k + 1));
                or |= p0 | p1;
                if let Some(pair) = buf.get_mut(k) {
                    *pair = (p0 | (p1 << 16)) as i32;
                }
            }
        }
    }
    (pairs, or & 0x8000 != 0)
}

/// [`probability`] when the reciprocal fits 32 bits: one `UMULL` and a rounding add.
#[inline(always)]
fn probability32(e: u32, recip: u32) -> u32 {
    // (x + 2^31) >> 32 = hi(x) + bit 31 of lo(x): `umull` and one `add …, lsr #31`.
    let x = e as u64 * recip as u64;
    ((x >> 32) as u32).wrapping_add(x as u32 >> 31)
}

/// [`softmax_scores_in_place`] with the generic reference loops: the variant every optimized
/// kernel is tested against, bit for bit.
#[cfg_attr(core_attn_small, inline(never))]
pub fn softmax_scores_in_place_generic(
    buf: &mut [i32],
    diff_to_index: Requant,
    exp: ExpTable<'_>,
) -> Result<(), Error> {
    check_row_len(buf.len())?;
    let max = buf.iter().copied().max().unwrap_or(0);
    let mut sum = 0u32;
    for x in buf.iter_mut() {
        let d = diff_to_index
            .apply(max.wrapping_sub(*x))
            .clamp(0, MAX_INDEX) as u32;
        let e = exp.exp(d);
        *x = e as i32;
        sum += e;
    }
    let recip = reciprocal(sum);
    for x in buf.iter_mut() {
        *x = probability(*x as u32, recip) as i32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `reciprocal` against 128-bit division of the same numerator, `round(2^47 / sum)`, on
    /// the edges of its range and a pseudo-random spread. Under `cfg(core_attn_small)`
    /// (`--features compact`) it checks the restoring division; a restoring division of 47
    /// steps instead of 48 (the numerator's top bit dropped) fails it.
    #[test]
    fn reciprocal_is_rounded_quotient() {
        let mut sums = std::vec![0u32, 1, 2, 3, 255, 256, 32767, 32768, 65535, 65536, 1 << 24];
        sums.extend([
            (1 << 24) - 1,
            1 << 31,
            (1 << 31) + 1,
            u32::MAX - 1,
            u32::MAX,
        ]);
        let mut x = 0x2545_f491_u32;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            sums.push(x >> (x % 32));
        }
        for s in sums {
            let d = s.max(1) as u128;
            let want = ((1u128 << 47) + d / 2) / d;
            assert_eq!(super::reciprocal(s) as u128, want, "sum {s}");
        }
    }
}
