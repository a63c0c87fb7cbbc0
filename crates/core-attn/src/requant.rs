//! Integer requantization: the gemmlowp / TFLite / CMSIS-NN multiplier-and-shift form.
//!
//! Three modules hold the quantization, by when it runs: [`crate::requant`] applies scales at
//! run time (integer only, on the device); `quantize_block` (pack time, host, feature `std`) turns
//! calibration ranges into one block's int8 parameters; `quantize_model` (pack time,
//! host) calibrates and quantizes a whole model into the parameters `blob::write`
//! packs into a blob.
//!
//! A real scale factor `r > 0` is stored as a Q31 multiplier `m ∈ [2^30, 2^31)` and a left shift
//! `s`, with `r ≈ m · 2^(s-31)`. Applying it to an `i32` accumulator is one 32×32→64 multiply, an
//! add and a shift (TFLite's "single rounding" form): the result is the real product rounded to
//! nearest (ties up). Because the rounding is done once on the exact 64-bit product, the result is
//! within one LSB of the exactly rounded real-valued requantization `round(acc · r)`; it differs
//! only when `acc · r` lies within `|acc| · 2^(s-62)` of a rounding boundary.
//!
//! Everything here is integer arithmetic; the constructors from a real scale live in
//! `Requant::from_real` behind the `std` feature (pack time, never at run time).

use crate::Error;

/// Largest accumulator magnitude any kernel feeds to [`Requant::apply`]; with `|m| < 2^31` the
/// 64-bit product then stays below 2^61, so the rounding add cannot overflow.
pub const MAX_ACCUMULATOR: i64 = 1 << 30;

/// One requantization factor: `real ≈ multiplier · 2^(shift - 31)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Requant {
    /// Q31 multiplier, normally in `[2^30, 2^31)`; 0 encodes the factor 0.
    pub multiplier: i32,
    /// Left shift applied with the multiplier; the total right shift `31 - shift` must be in
    /// `1..=62`.
    pub shift: i8,
}

impl Requant {
    /// The factor zero (every input maps to 0).
    pub const ZERO: Requant = Requant {
        multiplier: 0,
        shift: 0,
    };

    /// Check that the pair is in the supported range (multiplier non-negative, total right
    /// shift in `1..=62`).
    pub const fn validate(self) -> Result<Self, Error> {
        let right = 31 - self.shift as i32;
        if self.multiplier < 0 || right < 1 || right > 62 {
            Err(Error::BadRequant)
        } else {
            Ok(self)
        }
    }

    /// `round(acc · multiplier · 2^(shift-31))`, ties rounded up, saturated to the `i32` range.
    ///
    /// The pair must have passed [`Requant::validate`] (all constructors and the blob reader
    /// check it); an out-of-range shift is clamped rather than left to overflow.
    #[inline(always)]
    pub fn apply(self, acc: i32) -> i32 {
        let right = (31 - self.shift as i32).clamp(1, 62) as u32;
        let prod = acc as i64 * self.multiplier as i64;
        // Saturate instead of truncating: with a factor above 1 the rounded product can leave
        // the i32 range, and a wrapped value would make `to_i8` saturate to the wrong end.
        ((prod + (1i64 << (right - 1))) >> right).clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }

    /// [`Requant::apply`] followed by adding `zero_point` and saturating to `i8`.
    #[inline(always)]
    pub fn to_i8(self, acc: i32, zero_point: i32) -> i8 {
        (self.apply(acc).saturating_add(zero_point)).clamp(-128, 127) as i8
    }

    /// The real factor this pair encodes (host-side diagnostics and tests).
    #[cfg(feature = "std")]
    pub fn to_real(self) -> f64 {
        self.multiplier as f64 * pow2(self.shift as i32 - 31)
    }

    /// Encode a real factor `r ≥ 0` as multiplier and shift (pack time only).
    ///
    /// Factors too small to represent (total right shift over 62) become [`Requant::ZERO`];
    /// factors of 2^30 or more (they would need a total right shift of 0), NaN or negative values
    /// are an error.
    #[cfg(feature = "std")]
    pub fn from_real(r: f64) -> Result<Self, Error> {
        if !r.is_finite() || r < 0.0 {
            return Err(Error::BadRequant);
        }
        if r == 0.0 {
            return Ok(Requant::ZERO);
        }
        // r = frac · 2^exp with frac in [0.5, 1), read exactly from the bits (no libm: the
        // packer must give the same bytes on every host).
        let bits = r.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        if biased == 0 {
            // Subnormal: far below the smallest representable factor 2^-31 · 2^-31.
            return Ok(Requant::ZERO);
        }
        let mut exp = biased - 1022;
        let frac = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1022u64 << 52));
        let mut m = (frac * pow2(31)).round() as i64;
        if m == 1i64 << 31 {
            m /= 2;
            exp += 1;
        }
        // Total right shift is 31 - exp.
        if 31 - exp > 62 {
            return Ok(Requant::ZERO);
        }
        if 31 - exp < 1 {
            return Err(Error::BadRequant);
        }
        Requant {
            multiplier: m as i32,
            shift: exp as i8,
        }
        .validate()
    }
}

/// `2^k`, exactly, for `-1022 ≤ k ≤ 1023` (built from the bits: `powi` is not guaranteed exact).
#[cfg(feature = "std")]
pub fn pow2(k: i32) -> f64 {
    f64::from_bits(((k.clamp(-1022, 1023) + 1023) as u64) << 52)
}

/// Per-output-channel requantization, stored as two parallel arrays so that it can be read
/// zero-copy from a model blob.
#[derive(Debug, Clone, Copy)]
pub struct ChannelRequant<'a> {
    /// Q31 multipliers, one per channel.
    pub multipliers: &'a [i32],
    /// Shifts, one per channel.
    pub shifts: &'a [i8],
}

impl<'a> ChannelRequant<'a> {
    /// Number of channels; errors if the two arrays disagree or any pair is out of range.
    #[inline(never)] // load-time check: one copy, not inlined into each caller
    pub fn validate(&self) -> Result<usize, Error> {
        crate::error::check_len("requant shifts", self.multipliers.len(), self.shifts.len())?;
        for (&m, &s) in self.multipliers.iter().zip(self.shifts) {
            Requant {
                multiplier: m,
                shift: s,
            }
            .validate()?;
        }
        Ok(self.multipliers.len())
    }

    /// The factor of channel `c`.
    #[inline(always)]
    pub fn get(&self, c: usize) -> Requant {
        Requant {
            multiplier: self.multipliers[c],
            shift: self.shifts[c],
        }
    }
}

/// Saturate an `i32` to `i8`.
#[inline(always)]
pub fn saturate_i8(x: i32) -> i8 {
    x.clamp(-128, 127) as i8
}

/// Affine quantization of a tensor: `real = scale · (q - zero_point)` (host side).
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Real value of one LSB.
    pub scale: f64,
    /// Integer that represents real 0.
    pub zero_point: i32,
}

#[cfg(feature = "std")]
impl QParams {
    /// Symmetric int8 parameters covering `[-max_abs, max_abs]` (zero point 0).
    pub fn symmetric(max_abs: f64) -> Self {
        let m = if max_abs.is_finite() && max_abs > 0.0 {
            max_abs
        } else {
            1e-8
        };
        QParams {
            scale: m / 127.0,
            zero_point: 0,
        }
    }

    /// Asymmetric int8 parameters covering `[lo, hi]` (which is widened to include 0).
    pub fn asymmetric(lo: f64, hi: f64) -> Self {
        let lo = lo.min(0.0);
        let hi = hi.max(0.0);
        let span = (hi - lo).max(1e-8);
        let scale = span / 255.0;
        let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
        QParams { scale, zero_point }
    }

    /// Quantize one value (round to nearest, saturate).
    pub fn quantize(&self, x: f64) -> i8 {
        ((x / self.scale).round() + self.zero_point as f64).clamp(-128.0, 127.0) as i8
    }

    /// Real value of `q`.
    pub fn dequantize(&self, q: i8) -> f64 {
        self.scale * (q as i32 - self.zero_point) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_rounds_half_up() {
        // 0.5 exactly: multiplier 2^30, shift 0.
        let half = Requant {
            multiplier: 1 << 30,
            shift: 0,
        };
        assert_eq!(half.apply(3), 2); // 1.5 -> 2
        assert_eq!(half.apply(-3), -1); // -1.5 -> -1 (ties up)
        assert_eq!(half.apply(4), 2);
    }

    #[test]
    fn validate_rejects_bad_shift() {
        assert_eq!(
            Requant {
                multiplier: 1 << 30,
                shift: 31
            }
            .validate(),
            Err(Error::BadRequant)
        );
        assert_eq!(
            Requant {
                multiplier: -5,
                shift: 0
            }
            .validate(),
            Err(Error::BadRequant)
        );
    }
}
