//! The SwiGLU elementwise step of a Llama MLP, integer-only: `h_i = silu(g_i) · u_i`, where
//! `g = W1·x` (gate) and `u = W3·x` (up) are int8 outputs of two linear layers; `W2·h` follows.
//!
//! # Integer formulation
//! `silu(x) = x·σ(x)` of an int8 gate value (scale `s_g`, zero point `z_g`) has 256 possible
//! inputs, so it is a table built at pack time (`SwiGluParams::quantize`, `std` feature):
//! entry `i` is `round(silu(s_g·(i − 128 − z_g)) / s_t)` as an `i32`, with the table scale
//! `s_t = max |silu| / 2^22` (so `|entry| ≤ 2^22`; an all-zero function gets `s_t = 1`). Per
//! element: `acc = T[g_i] · (u_i − z_u)` (`|acc| ≤ 2^22·255 < 2^30`, within
//! [`crate::requant::MAX_ACCUMULATOR`]), then one [`Requant`] by `s_t·s_u/s_out` and the output
//! zero point, saturated to int8. No intermediate int8 rounding of `silu(g)`: its table keeps
//! 22 bits.
//!
//! # Error
//! Against the f64 `silu(g)·u` of the same int8 inputs, quantized to the output grid: the
//! table's rounding adds at most `½·s_t·255·s_u/s_out` output LSB, which for
//! `s_t·s_u/s_out ≤ 2^-10` (an output range at least `2^22·255·2^-10 / 127 ≈ 2^13` times smaller
//! than the product of the two input ranges — any calibrated layer) is below `2^-3`; the
//! requantization rounds once. So the result is within [`SWIGLU_MAX_LSB_ERROR`] = 1 LSB, and
//! exact away from rounding boundaries.

use crate::error::check_len;
use crate::requant::Requant;
use crate::Error;

/// Largest magnitude of a [`SwiGlu::silu`] entry.
pub const SILU_TABLE_MAX: i32 = 1 << 22;

/// Documented bound: output LSBs between [`SwiGlu::run`] and the f64 `silu(g)·u` of the same
/// int8 inputs quantized to the output grid (for `s_t·s_u/s_out ≤ 2^-10`).
pub const SWIGLU_MAX_LSB_ERROR: u32 = 1;

/// SwiGLU elementwise parameters, borrowed (a 1 KiB table and scalars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwiGlu<'a> {
    /// `silu` of every int8 gate value in units of `s_t`, indexed by `gate + 128`; each entry
    /// within `±SILU_TABLE_MAX`.
    pub silu: &'a [i32; 256],
    /// Zero point of the up projection's output `z_u`, `-128..=127`.
    pub up_zero_point: i32,
    /// `s_t · s_u / s_out`.
    pub requant: Requant,
    /// Output zero point, `-128..=127`.
    pub output_zero_point: i32,
}

impl<'a> SwiGlu<'a> {
    /// Check the table's range, the zero points and the requantization factor.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(&bad) = self
            .silu
            .iter()
            .find(|v| v.unsigned_abs() > SILU_TABLE_MAX as u32)
        {
            return Err(Error::BadDimension {
                what: "swiglu table entry",
                value: bad.unsigned_abs() as usize,
            });
        }
        for (what, z) in [
            ("swiglu up zero point", self.up_zero_point),
            ("swiglu output zero point", self.output_zero_point),
        ] {
            if !(-128..=127).contains(&z) {
                return Err(Error::BadDimension {
                    what,
                    value: z.unsigned_abs() as usize,
                });
            }
        }
        self.requant.validate()?;
        Ok(())
    }

    #[inline(always)]
    fn one(&self, g: i8, u: i8) -> i8 {
        let t = self.silu[(g as u8 ^ 0x80) as usize];
        // Within `±2^30` for a validated table; wrapping keeps an unvalidated one panic-free.
        let acc = t.wrapping_mul((u as i32).wrapping_sub(self.up_zero_point));
        self.requant.to_i8(acc, self.output_zero_point)
    }

    /// `out_i = silu(gate_i) · up_i` for equal-length `gate`, `up` and `out`.
    ///
    /// Lengths are checked; the parameters are not (call [`SwiGlu::validate`] once when they
    /// are loaded: it scans the table). Unvalidated parameters give wrong values, never a panic.
    pub fn run(&self, gate: &[i8], up: &[i8], out: &mut [i8]) -> Result<(), Error> {
        check_len("swiglu up", gate.len(), up.len())?;
        check_len("swiglu output", gate.len(), out.len())?;
        for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
            *o = self.one(g, u);
        }
        Ok(())
    }

    /// [`SwiGlu::run`] writing over the gate buffer.
    pub fn run_in_place(&self, gate: &mut [i8], up: &[i8]) -> Result<(), Error> {
        check_len("swiglu up", gate.len(), up.len())?;
        for (g, &u) in gate.iter_mut().zip(up) {
            *g = self.one(*g, u);
        }
        Ok(())
    }
}

/// Owned SwiGLU parameters built on the host (pack time).
#[cfg(feature = "std")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiGluParams {
    /// See [`SwiGlu::silu`].
    pub silu: [i32; 256],
    /// See [`SwiGlu::up_zero_point`].
    pub up_zero_point: i32,
    /// See [`SwiGlu::requant`].
    pub requant: Requant,
    /// See [`SwiGlu::output_zero_point`].
    pub output_zero_point: i32,
}

#[cfg(feature = "std")]
impl SwiGluParams {
    /// Tabulates `silu` for the gate's quantization and folds the scales. Errors:
    /// [`Error::BadRequant`] for a non-positive or non-finite scale or a combined factor the
    /// requantization cannot represent; [`Error::BadDimension`] for a zero point outside int8.
    pub fn quantize(
        gate: crate::requant::QParams,
        up: crate::requant::QParams,
        output: crate::requant::QParams,
    ) -> Result<Self, Error> {
        let ok = |s: f64| s.is_finite() && s > 0.0;
        if !ok(gate.scale) || !ok(up.scale) || !ok(output.scale) {
            return Err(Error::BadRequant);
        }
        let silu = |x: f64| x / (1.0 + libm::exp(-x));
        let values: std::vec::Vec<f64> = (0..256i32)
            .map(|i| silu(gate.dequantize((i - 128) as i8)))
            .collect();
        let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let table_scale = if max > 0.0 {
            max / SILU_TABLE_MAX as f64
        } else {
            1.0
        };
        let mut table = [0i32; 256];
        for (t, v) in table.iter_mut().zip(&values) {
            *t = ((v / table_scale).round() as i32).clamp(-SILU_TABLE_MAX, SILU_TABLE_MAX);
        }
        let params = SwiGluParams {
            silu: table,
            up_zero_point: up.zero_point,
            requant: Requant::from_real(table_scale * up.scale / output.scale)?,
            output_zero_point: output.zero_point,
        };
        params.as_swiglu().validate()?;
        Ok(params)
    }

    /// Borrow as the run-time [`SwiGlu`].
    pub fn as_swiglu(&self) -> SwiGlu<'_> {
        SwiGlu {
            silu: &self.silu,
            up_zero_point: self.up_zero_point,
            requant: self.requant,
            output_zero_point: self.output_zero_point,
        }
    }
}
