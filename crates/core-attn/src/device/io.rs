//! Integer input and output of the device runtime: `u8` pixels to int8 ([`PixelMap`]), logits
//! to Q16.16 ([`Dequant`]), and sampling with an integer temperature ([`Sampler`]).

use crate::model as runner;
use crate::Error;

/// A `u8` pixel → int8 model input table (see [`ModelInfo::pixel_map`](super::ModelInfo::pixel_map)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelMap {
    /// `table[p]` is the model input for pixel value `p`.
    pub table: [i8; 256],
}

impl PixelMap {
    /// Map `pixels` into `out` (same length).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] when the lengths differ.
    pub fn quantize(&self, pixels: &[u8], out: &mut [i8]) -> Result<(), Error> {
        crate::error::check_len("image pixels", out.len(), pixels.len())?;
        for (o, &p) in out.iter_mut().zip(pixels) {
            *o = self.table[p as usize];
        }
        Ok(())
    }
}

/// Integer dequantization of int8 values with an `f32` scale from the header:
/// `(q − zero_point) · scale` in Q16.16 fixed point (`65536` is `1.0`), without floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dequant {
    /// 24-bit mantissa of the scale (with the implicit bit).
    mantissa: u32,
    /// `scale · 2^16 = mantissa · 2^shift`.
    shift: i32,
    /// Zero point.
    zero_point: i32,
}

impl Dequant {
    /// From the `f32` bits of a (positive, finite) scale and a zero point; a scale that is
    /// not a positive finite number dequantizes everything to 0.
    pub const fn new(scale_bits: u32, zero_point: i32) -> Dequant {
        let exp = ((scale_bits >> 23) & 0xff) as i32;
        let negative = scale_bits >> 31 != 0;
        if negative || exp == 0xff || exp == 0 {
            // Negative, infinite, NaN, zero or subnormal (too small to matter): 0.
            return Dequant {
                mantissa: 0,
                shift: 0,
                zero_point,
            };
        }
        Dequant {
            mantissa: (scale_bits & 0x7f_ffff) | 0x80_0000,
            // value = mantissa · 2^(exp − 150); · 2^16.
            shift: exp - 150 + 16,
            zero_point,
        }
    }

    /// `(q − zero_point) · scale` in Q16.16, rounded, saturated to `i32`.
    pub fn q16(&self, q: i8) -> i32 {
        let d = (q as i64 - self.zero_point as i64) * self.mantissa as i64;
        let v = if self.shift >= 0 {
            d.checked_shl(self.shift as u32).unwrap_or(0)
        } else {
            let s = (-self.shift) as u32;
            if s >= 63 {
                0
            } else {
                (d + (1i64 << (s - 1))) >> s
            }
        };
        v.clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
}

/// How [`Lm::generate`](super::Lm::generate) picks the next token from the logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Sampler {
    /// The first largest logit (the same ids as [`crate::model::greedy`]).
    Greedy,
    /// Sample from `softmax(logits / temperature)`, integer only: weights `2^(−Δ·log2 e / T)`
    /// in Q16 for a logit `Δ` below the maximum, drawn with a xorshift32 generator.
    Temperature {
        /// Temperature in Q16.16 (`65536` is `1.0`); 0 behaves as greedy.
        temperature_q16: u32,
        /// Generator state (never 0; advanced by every draw).
        state: u32,
    },
}

impl Sampler {
    /// Temperature sampling with `temperature` in thousandths (`800` is 0.8), seeded with
    /// `seed` (the same seed gives the same tokens).
    pub const fn temperature(temperature_milli: u32, seed: u32) -> Sampler {
        Sampler::Temperature {
            temperature_q16: ((temperature_milli as u64 * 65536 + 500) / 1000) as u32,
            state: if seed == 0 { 0x9e37_79b9 } else { seed },
        }
    }

    /// Pick a token from `logits` (dequantized with `dq`).
    pub fn pick(&mut self, logits: &[i8], dq: &Dequant) -> u32 {
        let (t, state) = match self {
            Sampler::Temperature {
                temperature_q16,
                state,
            } if *temperature_q16 > 0 => (*temperature_q16, state),
            _ => return runner::argmax_i8(logits) as u32,
        };
        let best = runner::argmax_i8(logits);
        let Some(&top) = logits.get(best) else {
            return 0;
        };
        let top_q16 = dq.q16(top) as i64;
        // log2(e) in Q16.
        const LOG2E_Q16: i64 = 94_548;
        let weight = |q: i8| -> u64 {
            let delta = top_q16 - dq.q16(q) as i64; // ≥ 0, Q16
                                                    // e = Δ · log2(e) / T, Q16.
            let e = delta.saturating_mul(LOG2E_Q16) / (t as i64);
            exp2_neg_q16(e)
        };
        let total: u64 = logits.iter().map(|&q| weight(q)).sum();
        // xorshift32
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *state = x;
        // A uniform draw in 0..total (`total` < 2^16 · vocabulary, so the product fits u128).
        let mut r = ((x as u128 * total as u128) >> 32) as u64;
        for (i, &q) in logits.iter().enumerate() {
            let w = weight(q);
            if r < w {
                return i as u32;
            }
            r -= w;
        }
        best as u32
    }
}

/// `2^(−e)` for `e ≥ 0` in Q16, as Q16 (`65536` is 1): table of `2^(−i/16)` and linear
/// interpolation.
pub(super) fn exp2_neg_q16(e: i64) -> u64 {
    const T: [u64; 17] = [
        65536, 62757, 60097, 57549, 55109, 52773, 50535, 48393, 46341, 44376, 42495, 40693, 38968,
        37316, 35734, 34219, 32768,
    ];
    let e = e.max(0) as u64;
    let int = e >> 16;
    if int >= 17 {
        return 0;
    }
    let frac = e & 0xffff; // Q16
    let i = (frac >> 12) as usize; // 0..16
    let f = frac & 0xfff; // Q12 between table entries
    let (a, b) = (T[i & 15], T[(i & 15) + 1]);
    let v = a - (((a - b) * f) >> 12);
    v >> int
}
