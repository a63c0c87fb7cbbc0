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

use crate::error::check_len;
use crate::quant::Requant;
use crate::{Error, MAX_SEQ_LEN};

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
                return Err(Error::BadBlob("exp table not positive and non-increasing"));
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
    ((1u64 << 47) + sum / 2) / sum
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
pub fn softmax_scores_in_place(
    buf: &mut [i32],
    diff_to_index: Requant,
    exp: ExpTable<'_>,
) -> Result<(), Error> {
    check_row_len(buf.len())?;
    let Some(index) = FastIndex::new(diff_to_index) else {
        return softmax_scores_in_place_generic(buf, diff_to_index, exp);
    };
    let max = buf.iter().copied().max().unwrap_or(0);
    let sum = if index.right >= 32 {
        exp_pass::<true>(buf, max, index, &exp)
    } else {
        exp_pass::<false>(buf, max, index, &exp)
    };
    let recip = reciprocal_fast(sum);
    match u32::try_from(recip) {
        Ok(r32) => {
            for x in buf.iter_mut() {
                *x = probability32(*x as u32, r32) as i32;
            }
        }
        Err(_) => {
            for x in buf.iter_mut() {
                *x = probability(*x as u32, recip) as i32;
            }
        }
    }
    Ok(())
}

/// Score difference → `exp` value, as `ExpTable::exp(diff_to_index.apply(diff).clamp(0,
/// MAX_INDEX))` but in unsigned arithmetic with the clamps folded: a difference `≤ 0` gives index
/// 0 (the rounded product of a non-positive number is non-positive), and an index at or past
/// [`MAX_INDEX`] gives 0.
#[derive(Clone, Copy)]
struct FastIndex {
    multiplier: u64,
    half: u64,
    right: u32,
}

impl FastIndex {
    #[inline(always)]
    fn new(r: Requant) -> Option<Self> {
        let right = 31 - r.shift as i32;
        if r.multiplier < 0 || !(1..=62).contains(&right) {
            return None;
        }
        Some(FastIndex {
            multiplier: r.multiplier as u64,
            half: 1u64 << (right - 1),
            right: right as u32,
        })
    }

    #[inline(always)]
    fn exp(self, diff: i32, exp: &ExpTable<'_>) -> u32 {
        let d = if diff <= 0 {
            0
        } else {
            // ≤ 2^31 · 2^31 + 2^61: no overflow in u64.
            let q = (diff as u32 as u64 * self.multiplier + self.half) >> self.right;
            if q >= MAX_INDEX as u64 {
                return 0;
            }
            q as u32
        };
        (exp.hi[(d >> 8) as u8 as usize] as u32 * exp.lo[d as u8 as usize] as u32 + (1 << 15)) >> 16
    }
}

/// [`reciprocal`] (`round(2^47 / sum)`) by long division in 32-bit digits of `clz(sum)` bits
/// (each partial remainder `< sum`, so shifting it left by `clz(sum)` bits cannot overflow):
/// a few hardware `UDIV`s instead of a 64-bit software division.
#[inline]
fn reciprocal_fast(sum: u32) -> u64 {
    let s = sum.max(1);
    let n: u64 = (1u64 << 47) + (s / 2) as u64; // < 2^48
    let b = s.leading_zeros().min(16); // digit width, ≥ 1 as s < 2^31 here
    if b == 0 {
        return reciprocal(sum);
    }
    let mut q: u64 = 0;
    let mut r: u32 = 0;
    let mut bits = 48i32;
    while bits > 0 {
        let take = (b as i32).min(bits) as u32;
        bits -= take as i32;
        let digit = ((n >> bits) as u32) & ((1u32 << take) - 1);
        let cur = (r << take) | digit;
        q = (q << take) | (cur / s) as u64;
        r = cur % s;
    }
    q
}

/// `buf[j] ← exp(max − buf[j])` (as the generic loop), returning the sum; branch-free per
/// element: a difference `≤ 0` rounds to index 0 by itself (`half >> right = 0`), and an index
/// at or past [`MAX_INDEX`] selects 0.
#[inline(always)]
fn exp_pass<const BIG: bool>(buf: &mut [i32], max: i32, f: FastIndex, exp: &ExpTable<'_>) -> u32 {
    let mut sum = 0u32;
    for x in buf.iter_mut() {
        let diff = max.wrapping_sub(*x).max(0) as u32;
        let p = diff as u64 * f.multiplier + f.half;
        let (hi, lo) = ((p >> 32) as u32, p as u32);
        let (q, over) = if BIG {
            (hi >> (f.right - 32), false)
        } else {
            ((lo >> f.right) | (hi << (32 - f.right)), hi >> f.right != 0)
        };
        let e = (exp.hi[((q >> 8) & 255) as usize] as u32 * exp.lo[(q & 255) as usize] as u32
            + (1 << 15))
            >> 16;
        let e = if over || q >= MAX_INDEX as u32 { 0 } else { e };
        *x = e as i32;
        sum += e;
    }
    sum
}

/// [`probability`] when the reciprocal fits 32 bits: one `UMULL` and a rounding add.
#[inline(always)]
fn probability32(e: u32, recip: u32) -> u32 {
    ((e as u64 * recip as u64 + (1 << 31)) >> 32) as u32
}

/// [`softmax_scores_in_place`] with the generic reference loops: the variant every optimized
/// kernel is tested against, bit for bit.
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

/// Softmax of an int8 row into Q15 probabilities (`probs[j] / 32768`); `diff_to_index` maps
/// one input LSB difference to table indices (`input_scale / step`).
pub fn softmax_i8(
    input: &[i8],
    diff_to_index: Requant,
    exp: ExpTable<'_>,
    probs: &mut [u16],
) -> Result<(), Error> {
    check_len("softmax output", input.len(), probs.len())?;
    check_row_len(input.len())?;
    let Some(index) = FastIndex::new(diff_to_index) else {
        return softmax_i8_generic(input, diff_to_index, exp, probs);
    };
    let max = input.iter().copied().max().unwrap_or(0) as i32;
    // Only 256 possible inputs, but a row is usually shorter than a table: compute each
    // exponential once into `probs` (≤ 65535 fits u16), then scale in place.
    let mut sum = 0u32;
    for (p, &x) in probs.iter_mut().zip(input) {
        let e = index.exp(max - x as i32, &exp);
        *p = e as u16;
        sum += e;
    }
    let recip = reciprocal_fast(sum);
    match u32::try_from(recip) {
        Ok(r32) => {
            for p in probs.iter_mut() {
                *p = probability32(*p as u32, r32) as u16;
            }
        }
        Err(_) => {
            for p in probs.iter_mut() {
                *p = probability(*p as u32, recip) as u16;
            }
        }
    }
    Ok(())
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
