//! Rotary position embedding (RoPE) on int8 query/key rows, integer-only.
//!
//! Each head of width `H` (even) is split into `H/2` pairs; pair `i` at position `p` is turned
//! by the angle `p · θ^(−2i/H)`: `(a, b) → (a·cos − b·sin, a·sin + b·cos)`. Which two elements
//! form pair `i` is the checkpoint's convention ([`RopeStyle`]): llama2.c `run.c` rotates
//! interleaved pairs `(2i, 2i+1)`, Hugging Face Llama the two halves `(i, i + H/2)`
//! (`rotate_half`); the importer picks it, the kernel is the same.
//!
//! # Integer formulation
//! Queries and keys are symmetric int8 (zero point 0, see the numerical contract). The cosines
//! and sines come from a table ([`RopeTable`], built at pack time by
//! `RopeTableParams::build`, `std` feature): `round(cos · 2^14)` and `round(sin · 2^14)` as
//! `i16` for every position below the table's length and every pair, `2·positions·H` bytes
//! (stories260K's head 8 at 512 positions: 8 KiB). Per pair, `acc = a·C − b·S` and `a·S + b·C`
//! (`|acc| ≤ 2·128·2^14 = 2^22`), then one [`Requant`] with the factor
//! `s_in / s_out · 2^−14` to the output scale (a rotation can lengthen a component by up to
//! `√2`, so the output scale may differ from the input's).
//!
//! # Error
//! Against the f64 rotation of the same int8 values with exact cosines and sines, quantized to
//! the output grid: the table's rounding adds at most `(|a| + |b|) · 2^-15 · s_in/s_out ≤
//! s_in/s_out / 128` output LSB and the requantization rounds once, so the result is within
//! [`ROPE_MAX_LSB_ERROR`] = 1 LSB for `s_in / s_out ≤ 32`, and exact wherever the real value is
//! farther than `s_in/s_out / 128` (plus the multiplier's `2^-30` relative error) from a rounding
//! boundary.

use crate::error::check_len;
use crate::requant::Requant;
use crate::{Error, MAX_SEQ_LEN, MAX_WIDTH};

/// Fractional bits of the table's cosines and sines (Q1.14 in `i16`: `1.0` is 16384).
pub const ROPE_FRAC_BITS: u32 = 14;

/// Documented bound: output LSBs between [`Rope::run_in_place`] and the f64 rotation of the same
/// int8 values quantized to the output grid (for `s_in / s_out ≤ 32`).
pub const ROPE_MAX_LSB_ERROR: u32 = 1;

/// Which elements of a head rotate together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RopeStyle {
    /// llama2.c `run.c`: pair `i` is `(2i, 2i + 1)`.
    Interleaved,
    /// Hugging Face Llama (`rotate_half`): pair `i` is `(i, i + H/2)`.
    HalfSplit,
}

impl RopeStyle {
    /// The two element indices of pair `i` in a head of width `head_dim`.
    #[inline(always)]
    pub fn pair(self, i: usize, head_dim: usize) -> (usize, usize) {
        match self {
            RopeStyle::Interleaved => (2 * i, 2 * i + 1),
            RopeStyle::HalfSplit => (i, i + head_dim / 2),
        }
    }
}

/// Cosines and sines for `positions × head_dim/2` angles, borrowed (zero-copy from a blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RopeTable<'a> {
    /// Head width `H`, even, `2..=MAX_WIDTH`.
    pub head_dim: usize,
    /// Positions covered, `1..=MAX_SEQ_LEN`.
    pub positions: usize,
    /// `round(cos(p·θ^(−2i/H)) · 2^14)` at `[p · H/2 + i]`.
    pub cos: &'a [i16],
    /// `round(sin(p·θ^(−2i/H)) · 2^14)` at `[p · H/2 + i]`.
    pub sin: &'a [i16],
}

/// One rotary embedding: table, pairing convention and requantization to the output scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rope<'a> {
    /// The angles.
    pub table: RopeTable<'a>,
    /// The pairing convention.
    pub style: RopeStyle,
    /// `s_in / s_out · 2^−14`.
    pub requant: Requant,
}

impl<'a> Rope<'a> {
    /// Check the head width, the table's lengths and the requantization factor.
    pub fn validate(&self) -> Result<(), Error> {
        let t = &self.table;
        if t.head_dim < 2 || t.head_dim % 2 != 0 || t.head_dim > MAX_WIDTH {
            return Err(Error::BadDimension {
                what: "rope head width",
                value: t.head_dim,
            });
        }
        if t.positions == 0 || t.positions > MAX_SEQ_LEN {
            return Err(Error::BadDimension {
                what: "rope table positions",
                value: t.positions,
            });
        }
        let n = t.positions * (t.head_dim / 2);
        check_len("rope cos table", n, t.cos.len())?;
        check_len("rope sin table", n, t.sin.len())?;
        self.requant.validate()?;
        Ok(())
    }

    /// Rotates every head of `row` (`heads × head_dim` int8 values, symmetric) for position
    /// `pos`, in place. Errors: a bad table (see [`Rope::validate`]), a row that is not a whole
    /// number of heads, `pos` at or past the table's positions.
    pub fn run_in_place(&self, row: &mut [i8], pos: usize) -> Result<(), Error> {
        self.validate()?;
        let t = &self.table;
        if row.len() % t.head_dim != 0 {
            return Err(Error::ShapeMismatch {
                what: "rope input",
                expected: row.len() / t.head_dim * t.head_dim,
                found: row.len(),
            });
        }
        if pos >= t.positions {
            return Err(Error::BadDimension {
                what: "rope position",
                value: pos,
            });
        }
        let half = t.head_dim / 2;
        let bad = Error::BadDimension {
            what: "rope table",
            value: pos,
        };
        // In range after `validate` and the position check; `get` keeps the firmware free of
        // panic paths (boards/no-panic).
        let rows = pos * half..(pos + 1) * half;
        let (Some(cos), Some(sin)) = (t.cos.get(rows.clone()), t.sin.get(rows)) else {
            return Err(bad);
        };
        for head in row.chunks_exact_mut(t.head_dim.max(1)) {
            for (i, (&c, &s)) in cos.iter().zip(sin).enumerate() {
                let (ia, ib) = self.style.pair(i, t.head_dim);
                let (Some(&a), Some(&b)) = (head.get(ia), head.get(ib)) else {
                    return Err(bad);
                };
                let (a, b, c, s) = (a as i32, b as i32, c as i32, s as i32);
                let (ra, rb) = (
                    self.requant.to_i8(a * c - b * s, 0),
                    self.requant.to_i8(a * s + b * c, 0),
                );
                if let Some(v) = head.get_mut(ia) {
                    *v = ra;
                }
                if let Some(v) = head.get_mut(ib) {
                    *v = rb;
                }
            }
        }
        Ok(())
    }
}

/// Owned rotary parameters built on the host (pack time).
#[cfg(feature = "std")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RopeTableParams {
    /// See [`RopeTable::head_dim`].
    pub head_dim: usize,
    /// See [`RopeTable::positions`].
    pub positions: usize,
    /// See [`RopeTable::cos`].
    pub cos: std::vec::Vec<i16>,
    /// See [`RopeTable::sin`].
    pub sin: std::vec::Vec<i16>,
}

#[cfg(feature = "std")]
impl RopeTableParams {
    /// The table for `positions` positions of heads of width `head_dim` with base `theta`
    /// (10000 for Llama), computed in f64 with the pure-Rust `libm` (the same bytes on every
    /// host). Errors: [`Error::BadDimension`] for an odd, zero or too large `head_dim`, zero or
    /// too many positions, or a `theta` that is not finite and above 1 (reported as 0).
    pub fn build(head_dim: usize, positions: usize, theta: f64) -> Result<Self, Error> {
        if !theta.is_finite() || theta <= 1.0 {
            return Err(Error::BadDimension {
                what: "rope theta",
                value: 0,
            });
        }
        let half = head_dim / 2;
        let mut cos = std::vec::Vec::with_capacity(positions * half);
        let mut sin = std::vec::Vec::with_capacity(positions * half);
        let one = crate::requant::pow2(ROPE_FRAC_BITS as i32);
        for p in 0..positions.min(MAX_SEQ_LEN) {
            for i in 0..half {
                let angle = p as f64 / libm::pow(theta, (2 * i) as f64 / head_dim as f64);
                let (s, c) = libm::sincos(angle);
                cos.push((c * one).round() as i16);
                sin.push((s * one).round() as i16);
            }
        }
        let params = RopeTableParams {
            head_dim,
            positions,
            cos,
            sin,
        };
        Rope {
            table: params.as_table(),
            style: RopeStyle::Interleaved,
            requant: Requant::ZERO,
        }
        .validate()?;
        Ok(params)
    }

    /// Borrow as the run-time [`RopeTable`].
    pub fn as_table(&self) -> RopeTable<'_> {
        RopeTable {
            head_dim: self.head_dim,
            positions: self.positions,
            cos: &self.cos,
            sin: &self.sin,
        }
    }

    /// The requantization factor `s_in / s_out · 2^−14` for symmetric input and output scales.
    pub fn requant(input_scale: f64, output_scale: f64) -> Result<Requant, Error> {
        if !(input_scale.is_finite() && output_scale.is_finite() && output_scale > 0.0) {
            return Err(Error::BadRequant);
        }
        Requant::from_real(
            input_scale / output_scale * crate::requant::pow2(-(ROPE_FRAC_BITS as i32)),
        )
    }
}
