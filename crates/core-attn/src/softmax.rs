//! Integer softmax over one row, numerically stable (the row maximum is subtracted first).
//!
//! `p_j = exp(x_j − max) / Σ_k exp(x_k − max)`
//!
//! 1. the row maximum is found in the integer domain;
//! 2. each difference `max − x_j ≥ 0` is mapped to an index `d_j ∈ 0..=255` of a 256-entry table
//!    of `round(65535 · exp(−d · step))` built at pack time ([`ExpTable`]); differences past the
//!    table's end give `exp ≈ 0` (the last entry, normally 0);
//! 3. the `u16` exponentials are summed in a `u32` (at most `MAX_SEQ_LEN · 65535 < 2^31`), one
//!    64-bit reciprocal `2^47 / Σ` is taken per row, and each probability is
//!    `(e_j · recip + 2^31) >> 32` in Q15 (`1.0 = 32768`).
//!
//! No float, no division per element. With an int8 row whose scale equals the table's `step`
//! ([`softmax_i8`]) the result is within [`SOFTMAX_MAX_LSB_ERROR`] Q15 LSBs of the f64 softmax of
//! the same int8 inputs (tested).

use crate::error::check_len;
use crate::quant::Requant;
use crate::{Error, MAX_SEQ_LEN};

/// Q15 probability of 1.0.
pub const PROB_ONE: u32 = 1 << 15;

/// Documented bound: Q15 LSBs between [`softmax_i8`] and the f64 softmax of the same inputs.
pub const SOFTMAX_MAX_LSB_ERROR: u32 = 2;

/// Table of `round(65535 · exp(−d · step))` for `d = 0..=255`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExpTable<'a> {
    /// The 256 entries, non-increasing, entry 0 positive.
    pub table: &'a [u16; 256],
}

impl<'a> ExpTable<'a> {
    /// Wrap a table after checking it is usable (entry 0 positive, entries non-increasing), so
    /// that every row sum is positive.
    pub fn new(table: &'a [u16; 256]) -> Result<Self, Error> {
        if table[0] == 0 || table.windows(2).any(|w| w[1] > w[0]) {
            return Err(Error::BadBlob("exp table not positive and non-increasing"));
        }
        Ok(ExpTable { table })
    }

    /// Build the table for a difference step of `step` (real units per index), pack time.
    #[cfg(feature = "std")]
    pub fn build(step: f64) -> [u16; 256] {
        let mut t = [0u16; 256];
        for (d, e) in t.iter_mut().enumerate() {
            *e = (65535.0 * (-(d as f64) * step).exp()).round() as u16;
        }
        t
    }

    /// The step that spends the table's 256 entries exactly on the range where
    /// `65535 · exp(−x)` is still at least ½ (beyond it every entry would round to 0).
    #[cfg(feature = "std")]
    pub fn default_step() -> f64 {
        (2.0 * 65535.0f64).ln() / 255.0
    }
}

/// Turn exponentials held in `buf` (each ≤ 65535) into Q15 probabilities in place, given their
/// sum (> 0).
#[inline]
fn normalize(buf: &mut [i32], sum: u32) {
    let sum = sum.max(1) as u64;
    // sum ≥ 1 and entries ≤ 65535 · len ⇒ recip ≤ 2^47, and e·recip ≤ 2^16·2^47 fits u64.
    let recip = ((1u64 << 47) + sum / 2) / sum;
    for x in buf.iter_mut() {
        *x = ((*x as u64 * recip + (1 << 31)) >> 32) as i32;
    }
}

/// Softmax of raw `i32` scores in place, into Q15 probabilities.
///
/// `diff_to_index` maps a score difference (in the scores' units) to table indices
/// (`score_scale / step`). Used by attention on its `q·k` accumulators.
pub fn softmax_scores_in_place(
    buf: &mut [i32],
    diff_to_index: Requant,
    exp: ExpTable<'_>,
) -> Result<(), Error> {
    if buf.is_empty() || buf.len() > MAX_SEQ_LEN {
        return Err(Error::BadDimension {
            what: "softmax length",
            value: buf.len(),
        });
    }
    let max = buf.iter().copied().max().unwrap_or(0);
    let mut sum = 0u32;
    for x in buf.iter_mut() {
        // Scores are bounded by 2^28 in magnitude (see attention), so the difference fits.
        let d = diff_to_index.apply(max.wrapping_sub(*x)).clamp(0, 255) as usize;
        let e = exp.table[d] as u32;
        *x = e as i32;
        sum += e;
    }
    normalize(buf, sum);
    Ok(())
}

/// Softmax of an int8 row whose LSB equals the exp table's step, into Q15 probabilities
/// (`probs[j] / 32768`).
pub fn softmax_i8(input: &[i8], exp: ExpTable<'_>, probs: &mut [u16]) -> Result<(), Error> {
    check_len("softmax output", input.len(), probs.len())?;
    if input.is_empty() || input.len() > MAX_SEQ_LEN {
        return Err(Error::BadDimension {
            what: "softmax length",
            value: input.len(),
        });
    }
    let max = input.iter().copied().max().unwrap_or(0) as i32;
    let mut sum = 0u32;
    for &x in input {
        sum += exp.table[(max - x as i32) as usize] as u32;
    }
    let recip = {
        let s = sum.max(1) as u64;
        ((1u64 << 47) + s / 2) / s
    };
    for (p, &x) in probs.iter_mut().zip(input) {
        let e = exp.table[(max - x as i32) as usize] as u64;
        *p = ((e * recip + (1 << 31)) >> 32) as u16;
    }
    Ok(())
}
