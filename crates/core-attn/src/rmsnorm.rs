//! RMSNorm (Llama), integer-only.
//!
//! `y_i = x_i / √(mean(x²) + ε) · γ_i` over the last axis (width `D`), no mean subtraction and
//! no β.
//!
//! # Integer formulation
//! The input is an int8 row `q_i` with scale `s_x` and zero point `z_x`; `u_i = q_i − z_x`
//! (`|u_i| ≤ 255`) is the real value in input LSBs. The division by the root mean square
//! removes `s_x` except in `ε`, which in input-LSB² units is `e = ε / s_x²`, stored as
//! [`RmsNorm::epsilon`] in the same Q24.40 format as LayerNorm's ([`EPSILON_FRAC_BITS`]).
//! Multiplying numerator and denominator by `D`:
//!
//! - `Q = Σ u_j²`, `c_i = D·u_i`;
//! - `T = D·Q·2^40 + D²·e_q` (`e_q` = `e` in Q24.40), so that
//!   `n_i = c_i·2^20 / √T = u_i / √(Q/D + e)` exactly in real arithmetic;
//! - `1/√T ≈ r·2^(−62−k)` from [`rsqrt_u128`](crate::norm::rsqrt_u128) (the LayerNorm kernel's reciprocal square root,
//!   relative error below `2^-29`), `ñ_i = round(c_i·r·2^−(18+k))` (Q24);
//! - `y_i = round(ñ_i·g_i·2^−40) + z_out`, saturated to int8, with
//!   `g_i = round(γ_i / s_out · 2^16)` ([`GAMMA_FRAC_BITS`]) folded at pack time
//!   (`RmsNormParams::quantize`, `std` feature). Rounding is half up.
//!
//! A row with `T = 0` (every `u_i = 0` and `e_q = 0`) outputs `z_out` (the limit of `0/√ε`).
//!
//! # Overflow (for `1 ≤ D ≤ MAX_WIDTH = 2^14`, any `i32` γ and any `u64` ε)
//! - `Q ≤ 255²·D < 2^30` (`u32`), `D·Q < 2^44`, so `T < 2^84 + 2^92 < 2^93` (`u128`) and `k ≤ 16`;
//!   a row with `Q ≥ 1` has `T ≥ 2^40`, so `k ≥ −10` and the shift `18 + k` is in `8..=34`
//!   (a row with `Q = 0` has `c_i = 0`: only `T = 0` needs the special case);
//! - `|c_i| ≤ 255·D < 2^22`, `r < 2^32`: `|c_i·r| < 2^54` (`i64`);
//! - `|n_i| ≤ √D ≤ 128` (one non-zero element), so `|ñ_i| ≤ 2^31 + 2^3`, `|ñ_i·g_i| < 2^63 − 2^61`
//!   and the rounding constant `2^39` keeps the sum in `i64`.
//!
//! # Error
//! Against the f64 RMSNorm of the same int8 inputs (the reference in
//! `reference::llama`), quantized with the output parameters, at most [`RMS_NORM_MAX_LSB_ERROR`]
//! = 1 LSB, by LayerNorm's argument: before the final rounding the value is within `2^-6`
//! output LSB of the real one for `|γ/s_out| < 2^15` (`|n|·2^-17` from γ's rounding, `≤ 2^-10`;
//! `|γ/s_out|·2^-25` from `ñ`'s; a relative `2^-29` from the reciprocal square root on a value
//! below `2^7·2^15`, `≤ 2^-7`; ε's rounding less).

use crate::error::check_len;
use crate::norm::{rsqrt, EPSILON_FRAC_BITS, GAMMA_FRAC_BITS};
use crate::{Error, MAX_WIDTH};

/// Fractional bits of the normalized value inside the kernel.
const NORM_FRAC_BITS: u32 = 24;

/// Documented bound: output LSBs between [`RmsNorm::run`] and the f64 RMSNorm of the same int8
/// inputs quantized with the output parameters.
pub const RMS_NORM_MAX_LSB_ERROR: u32 = 1;

/// Parameters of one RMSNorm, borrowed (one `i32` array and scalars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RmsNorm<'a> {
    /// Features per row `D`, `1..=MAX_WIDTH`.
    pub width: usize,
    /// `round(γ_i / s_out · 2^GAMMA_FRAC_BITS)`, one per feature (Q15.16; any `i32` is safe).
    pub gamma: &'a [i32],
    /// `ε / s_x²` in input LSB², Q24.40 ([`EPSILON_FRAC_BITS`]). Any value is safe.
    pub epsilon: u64,
    /// Input zero point `z_x`, `-128..=127` (0 for a symmetric input).
    pub input_zero_point: i32,
    /// Output zero point, `-128..=127`.
    pub output_zero_point: i32,
}

impl<'a> RmsNorm<'a> {
    /// Check the width, the length of `gamma` and both zero points.
    pub fn validate(&self) -> Result<(), Error> {
        self.check_width()?;
        check_len("rms norm gamma", self.width, self.gamma.len())?;
        for (what, z) in [
            ("rms norm input zero point", self.input_zero_point),
            ("rms norm output zero point", self.output_zero_point),
        ] {
            if !(-128..=127).contains(&z) {
                return Err(Error::BadDimension {
                    what,
                    value: z.unsigned_abs() as usize,
                });
            }
        }
        Ok(())
    }

    fn check_width(&self) -> Result<(), Error> {
        if self.width == 0 || self.width > MAX_WIDTH {
            return Err(Error::BadDimension {
                what: "rms norm width",
                value: self.width,
            });
        }
        Ok(())
    }

    fn check_shapes(&self, len: usize) -> Result<(), Error> {
        self.validate()?;
        if len % self.width != 0 {
            return Err(Error::ShapeMismatch {
                what: "rms norm input",
                expected: len / self.width * self.width,
                found: len,
            });
        }
        Ok(())
    }

    /// Normalize every row of `input` (`[rows][width]`) into `output` (same length).
    pub fn run(&self, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
        self.check_shapes(input.len())?;
        check_len("rms norm output", input.len(), output.len())?;
        for (x, y) in input
            .chunks_exact(self.width)
            .zip(output.chunks_exact_mut(self.width))
        {
            y.copy_from_slice(x);
            self.row(y);
        }
        Ok(())
    }

    /// [`RmsNorm::run`] in place (the row's sum of squares is taken before it is overwritten).
    pub fn run_in_place(&self, data: &mut [i8]) -> Result<(), Error> {
        self.check_shapes(data.len())?;
        for row in data.chunks_exact_mut(self.width) {
            self.row(row);
        }
        Ok(())
    }

    fn row(&self, row: &mut [i8]) {
        let d = row.len() as u64;
        let z = self.input_zero_point;
        let q: u32 = row
            .iter()
            .map(|&v| {
                let u = v as i32 - z;
                (u * u) as u32
            })
            .sum();
        let t = (((d * q as u64) as u128) << EPSILON_FRAC_BITS)
            + (d * d) as u128 * self.epsilon as u128;
        let out_zero = self.output_zero_point.clamp(-128, 127) as i8;
        if t == 0 {
            row.fill(out_zero);
            return;
        }
        let (recip, k) = rsqrt(t);
        // n = c · 2^20 / √T ≈ c · r · 2^(20 − 62 − k); in Q24 the right shift is 18 + k.
        let shift =
            (62 + k - (EPSILON_FRAC_BITS / 2) as i32 - NORM_FRAC_BITS as i32).clamp(1, 62) as u32;
        const OUT_SHIFT: u32 = NORM_FRAC_BITS + GAMMA_FRAC_BITS;
        for (v, &g) in row.iter_mut().zip(self.gamma) {
            let c = d as i64 * (*v as i64 - z as i64);
            let n = (c * recip as i64 + (1i64 << (shift - 1))) >> shift;
            let acc = n * g as i64 + (1i64 << (OUT_SHIFT - 1));
            let y = (acc >> OUT_SHIFT) + self.output_zero_point as i64;
            *v = y.clamp(-128, 127) as i8;
        }
    }
}

/// Owned RMSNorm parameters built on the host from float γ and ε (pack time).
#[cfg(feature = "std")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RmsNormParams {
    /// See [`RmsNorm::gamma`].
    pub gamma: std::vec::Vec<i32>,
    /// See [`RmsNorm::epsilon`].
    pub epsilon: u64,
    /// See [`RmsNorm::input_zero_point`].
    pub input_zero_point: i32,
    /// See [`RmsNorm::output_zero_point`].
    pub output_zero_point: i32,
}

#[cfg(feature = "std")]
impl RmsNormParams {
    /// Fold γ with the output scale and express ε in input LSB².
    ///
    /// Errors: [`Error::BadDimension`] for a width of 0 or above [`MAX_WIDTH`] or a zero point
    /// outside int8; [`Error::BadRequant`] for a non-positive or non-finite scale, a negative or
    /// non-finite ε, ε / s_x² of `2^24` LSB² or more, or a γ / s_out outside Q15.16.
    pub fn quantize(
        gamma: &[f32],
        eps: f64,
        input: crate::requant::QParams,
        output: crate::requant::QParams,
    ) -> Result<Self, Error> {
        let scale_ok = |s: f64| s.is_finite() && s > 0.0;
        if !scale_ok(input.scale) || !scale_ok(output.scale) || !eps.is_finite() || eps < 0.0 {
            return Err(Error::BadRequant);
        }
        let e = (eps / (input.scale * input.scale)
            * crate::requant::pow2(EPSILON_FRAC_BITS as i32))
        .round();
        if !e.is_finite() || e >= 18_446_744_073_709_551_616.0 {
            return Err(Error::BadRequant);
        }
        let gamma = gamma
            .iter()
            .map(|&g| {
                let q = (g as f64 / output.scale * crate::requant::pow2(GAMMA_FRAC_BITS as i32))
                    .round();
                if q.is_finite() && q >= i32::MIN as f64 && q <= i32::MAX as f64 {
                    Ok(q as i32)
                } else {
                    Err(Error::BadRequant)
                }
            })
            .collect::<Result<_, _>>()?;
        let params = RmsNormParams {
            gamma,
            epsilon: e as u64,
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
        };
        params.as_rms_norm().validate()?;
        Ok(params)
    }

    /// Borrow as the run-time [`RmsNorm`].
    pub fn as_rms_norm(&self) -> RmsNorm<'_> {
        RmsNorm {
            width: self.gamma.len(),
            gamma: &self.gamma,
            epsilon: self.epsilon,
            input_zero_point: self.input_zero_point,
            output_zero_point: self.output_zero_point,
        }
    }
}
