//! Elementwise functions of one int8 value: GELU, ReLU, exp, … as 256-entry tables.
//!
//! A function `f` from an int8 input (scale `s_in`, zero point `z_in`) to an int8 output
//! (`s_out`, `z_out`) has only 256 possible inputs, so the tools tabulate
//! `q_out = clamp(round(f(s_in·(q_in − z_in)) / s_out) + z_out)` at pack time. The table is exact
//! to the quantization grid (error ≤ ½ output LSB against f64 `f` on the same int8 input) and
//! costs one load per element on the device.

use crate::Error;

/// A 256-entry int8 → int8 lookup table; entry `i` is the output for input `i − 128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lut<'a> {
    /// The table, indexed by `input + 128`.
    pub table: &'a [i8; 256],
}

impl<'a> Lut<'a> {
    /// Wrap a table.
    pub const fn new(table: &'a [i8; 256]) -> Self {
        Lut { table }
    }

    /// Look up one value.
    #[inline(always)]
    pub fn lookup(&self, x: i8) -> i8 {
        self.table[(x as u8 ^ 0x80) as usize]
    }

    /// Apply the table in place.
    pub fn apply_in_place(&self, data: &mut [i8]) {
        for x in data {
            *x = self.lookup(*x);
        }
    }

    /// Apply the table from `input` into `output` (same length).
    pub fn apply(&self, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
        crate::error::check_len("lut output", input.len(), output.len())?;
        for (o, &x) in output.iter_mut().zip(input) {
            *o = self.lookup(x);
        }
        Ok(())
    }
}

/// Build the table of `f` for the given input and output quantization (pack time).
///
/// `f` is evaluated in f64 on each of the 256 dequantized inputs; non-finite results saturate.
#[cfg(feature = "std")]
pub fn build_lut(
    input: crate::requant::QParams,
    output: crate::requant::QParams,
    f: impl Fn(f64) -> f64,
) -> [i8; 256] {
    let mut t = [0i8; 256];
    for (i, e) in t.iter_mut().enumerate() {
        let q = (i as i32 - 128) as i8;
        let y = f(input.dequantize(q));
        *e = if y.is_nan() {
            output.quantize(0.0)
        } else {
            output.quantize(y)
        };
    }
    t
}

/// ReLU on int8 with zero point `zero_point`: `max(x, zero_point)`. No table needed.
#[inline]
pub fn relu_in_place(data: &mut [i8], zero_point: i8) {
    for x in data {
        *x = (*x).max(zero_point);
    }
}

/// Exact GELU, `0.5·x·(1 + erf(x/√2))` (ViT's `"gelu"`), for building tables.
#[cfg(feature = "std")]
pub fn gelu_erf(x: f64) -> f64 {
    0.5 * x * (1.0 + crate::reference::erf(x / core::f64::consts::SQRT_2))
}

/// Tanh-approximated GELU (GPT-2's `"gelu_new"`), for building tables.
#[cfg(feature = "std")]
pub fn gelu_tanh(x: f64) -> f64 {
    let c = (2.0 / core::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + libm::tanh(c * (x + 0.044715 * x * x * x)))
}
