//! Residual addition of two int8 tensors with different scales.
//!
//! `y = z_y + round( (s_a/s_y)·(a − z_a) + (s_b/s_y)·(b − z_b) )`
//!
//! Each term is first requantized to output LSBs with [`PRE_SHIFT`] extra fractional bits, the two
//! are summed, then rounded once. The result is within one output LSB of the exactly rounded
//! real sum (each term carries at most 2^-PRE_SHIFT LSB of rounding error plus the Q31
//! multiplier's relative error).
//!
//! # Overflow
//! `(a − z_a)` is at most 255 in magnitude; shifted left by `PRE_SHIFT = 12` that is below 2^20,
//! and the scale ratios are validated to be below 2^8, so each term stays below 2^28.

use crate::error::check_len;
use crate::quant::Requant;
use crate::Error;

/// Extra fractional bits carried through the sum.
pub const PRE_SHIFT: u32 = 12;

/// Parameters of one residual add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResidualAdd {
    /// `s_a / s_y`.
    pub a_scale: Requant,
    /// Zero point of `a`.
    pub a_zero_point: i32,
    /// `s_b / s_y`.
    pub b_scale: Requant,
    /// Zero point of `b`.
    pub b_zero_point: i32,
    /// Zero point of the output.
    pub output_zero_point: i32,
}

impl ResidualAdd {
    /// Check the ratios are below 2^8 and the zero points are int8.
    pub fn validate(&self) -> Result<(), Error> {
        for r in [self.a_scale, self.b_scale] {
            r.validate()?;
            // multiplier < 2^31, so the ratio is < 2^shift.
            if r.shift > 8 {
                return Err(Error::BadRequant);
            }
        }
        for zp in [self.a_zero_point, self.b_zero_point, self.output_zero_point] {
            if !(-128..=127).contains(&zp) {
                return Err(Error::BadRequant);
            }
        }
        Ok(())
    }

    /// Add one pair of values.
    #[inline(always)]
    pub fn add_one(&self, a: i8, b: i8) -> i8 {
        let ta = self
            .a_scale
            .apply((a as i32 - self.a_zero_point) << PRE_SHIFT);
        let tb = self
            .b_scale
            .apply((b as i32 - self.b_zero_point) << PRE_SHIFT);
        let sum = (ta + tb + (1 << (PRE_SHIFT - 1))) >> PRE_SHIFT;
        (sum + self.output_zero_point).clamp(-128, 127) as i8
    }

    /// `out[i] = a[i] ⊕ b[i]`.
    pub fn run(&self, a: &[i8], b: &[i8], out: &mut [i8]) -> Result<(), Error> {
        check_len("residual b", a.len(), b.len())?;
        check_len("residual output", a.len(), out.len())?;
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = self.add_one(x, y);
        }
        Ok(())
    }

    /// `acc[i] = acc[i] ⊕ b[i]` in place (the residual stream is `a`).
    pub fn run_in_place(&self, acc: &mut [i8], b: &[i8]) -> Result<(), Error> {
        check_len("residual b", acc.len(), b.len())?;
        for (x, &y) in acc.iter_mut().zip(b) {
            *x = self.add_one(*x, y);
        }
        Ok(())
    }

    /// Broadcast add: `acc[t][i] = acc[t][i] ⊕ b[i]` for every row `t` of width `b.len()`
    /// (a class token or a position row added to every token uses [`Self::run_in_place`]; this
    /// is for a bias-like vector).
    pub fn run_broadcast(&self, acc: &mut [i8], b: &[i8]) -> Result<(), Error> {
        if b.is_empty() || acc.len() % b.len() != 0 {
            return Err(Error::ShapeMismatch {
                what: "residual broadcast",
                expected: b.len(),
                found: acc.len(),
            });
        }
        for row in acc.chunks_exact_mut(b.len()) {
            self.run_in_place(row, b)?;
        }
        Ok(())
    }
}
