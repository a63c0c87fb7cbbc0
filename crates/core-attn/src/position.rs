//! Positional encodings: sinusoidal (computed in fixed point) and learned (from a checkpoint).
//!
//! # Sinusoidal encoding
//! Vaswani et al.: `PE[pos][2k] = sin(pos·ω_k)`, `PE[pos][2k+1] = cos(pos·ω_k)`,
//! `ω_k = 10000^(−2k/d)` for a model width `d` (an odd width simply ends on a sine column).
//!
//! Everything is computed with the `fixed` crate's integer-backed types — no float anywhere,
//! so the same bits come out on an FPU-less Cortex-M0+, a Cortex-M4 and the host — and every
//! function is a `const fn`, so a small [`SinusoidalTable`] can be a `static` built at compile
//! time (it then lives in flash):
//!
//! 1. `t = log2(10000)·2k/d` in `U68F60` (`log2(10000) = 4·log2(10)` from
//!    [`fixed::consts::LOG2_10`]); `ω_k = 2^(−t) = 2^(−⌊t⌋) · Π_{bit i of frac(t)} 2^(−2^(−i))`
//!    in `U1F63`, the 60 constants `2^(−2^(−i))` derived from `1/√2` by repeated fixed-point
//!    square roots at compile time ([`frequency`]).
//! 2. `angle = pos·ω_k` exactly in `U64F64` (an integer times a `U1F63`), reduced modulo 2π and
//!    then to `x ∈ [−π/4, π/4]` plus a quadrant, with 2π and π/2 from [`fixed::consts`].
//! 3. `sin x`, `cos x` by their Taylor series to the x¹⁷/x¹⁶ terms in `I2F62` (truncation error
//!    below 2⁻⁶⁰ on `[−π/4, π/4]`), then mapped to the quadrant.
//!
//! Error budget for `pos < 2^16` (see the tests for the measured figures): `ω_k` is within about
//! 2⁻⁵⁸ relative, so the angle is within `pos·2⁻⁵⁸ ≤ 2⁻⁴²`; the range reduction adds at most
//! `pos/2π · 2⁻⁶⁴`; the series and its fixed-point evaluation add a few 2⁻⁶²; the final rounding
//! to [`I2F30`] adds 2⁻³¹. [`sinusoid`] is therefore within `2⁻³⁰` of the exact value, far
//! inside the contract's `2⁻¹⁰`. For much larger positions the angle error grows as
//! `pos·2⁻⁵⁸` (still below `2⁻²⁶` at `pos = 2³²`).
//!
//! The int8 table holds `round(127·PE)`, i.e. scale `1/127`, zero point 0, so that `±1` are
//! exactly representable. Adding it to int8 token embeddings is a
//! [`ResidualAdd`] with `b_scale = (1/127)/s_y`, `b_zero_point = 0` ([`add_sinusoidal`]).
//!
//! # Learned encoding
//! A learned table `[positions][width]` int8 comes from the checkpoint with its own scale; adding
//! it is the same residual add ([`add_learned`]).

use fixed::consts;
use fixed::types::{I2F30, I2F62, U1F63, U4F60, U64F64, U68F60};

use crate::residual::ResidualAdd;
use crate::Error;

/// Scale denominator of the int8 sinusoid table: entries are `round(127·PE)`.
pub const TABLE_SCALE_DENOMINATOR: i32 = 127;

/// `log2(10000) = 4·log2(10)`: the `U2F126` bits of `log2(10)` read as `U4F60` after dropping 64
/// bits (rounded).
const LOG2_10000: U4F60 = U4F60::from_bits(round_shr_u128(consts::LOG2_10.to_bits(), 64) as u64);

/// 2π in `U64F64` (from `U3F125`, rounded).
const TAU: U64F64 = U64F64::from_bits(round_shr_u128(consts::TAU.to_bits(), 61));

/// π/2 in `U64F64` (from `U1F127`, rounded).
const FRAC_PI_2: U64F64 = U64F64::from_bits(round_shr_u128(consts::FRAC_PI_2.to_bits(), 63));

/// Fractional bits of the exponent `t` used by the exp2 product.
const EXP2_FRAC_BITS: usize = 60;

/// `EXP2_NEG[i] = 2^(−2^(−i))`: `EXP2_NEG[1] = 1/√2` and each next one is the square root of the
/// previous one.
const EXP2_NEG: [U1F63; EXP2_FRAC_BITS + 1] = {
    let mut c = [U1F63::ZERO; EXP2_FRAC_BITS + 1];
    c[0] = U1F63::from_bits(1 << 62); // 2^-1
    c[1] = U1F63::from_bits(round_shr_u128(consts::FRAC_1_SQRT_2.to_bits(), 65) as u64);
    let mut i = 2;
    while i <= EXP2_FRAC_BITS {
        c[i] = c[i - 1].sqrt();
        i += 1;
    }
    c
};

/// Taylor terms (after the leading one) in the sine and cosine series.
const SERIES_TERMS: i64 = 8;

/// `x >> s` rounded to nearest (ties up), `1 ≤ s < 128`.
const fn round_shr_u128(x: u128, s: u32) -> u128 {
    (x >> s) + ((x >> (s - 1)) & 1)
}

const fn bad_index(index: u32, width: u32) -> Error {
    if width == 0 {
        Error::BadDimension {
            what: "sinusoid width",
            value: 0,
        }
    } else {
        Error::BadDimension {
            what: "sinusoid index",
            value: index as usize,
        }
    }
}

/// The angular frequency `ω_k = 10000^(−2k/width)` of column `index` (`k = ⌊index/2⌋`), in
/// `U1F63` (`ω_0 = 1` exactly).
///
/// Errors when `width == 0` or `index >= width`.
pub const fn frequency(index: u32, width: u32) -> Result<U1F63, Error> {
    if width == 0 || index >= width {
        return Err(bad_index(index, width));
    }
    let two_k = (index & !1) as u128;
    // t = log2(10000)·2k/d < log2(10000) < 14, with 60 fractional bits.
    let t = U68F60::from_bits(LOG2_10000.to_bits() as u128)
        .strict_mul_int(two_k)
        .strict_div_int(width as u128);
    let whole = (t.to_bits() >> EXP2_FRAC_BITS) as u32;
    let frac = t.to_bits() & ((1u128 << EXP2_FRAC_BITS) - 1);
    let mut p = U1F63::ONE;
    let mut i = 1;
    while i <= EXP2_FRAC_BITS {
        if (frac >> (EXP2_FRAC_BITS - i)) & 1 == 1 {
            p = p.strict_mul(EXP2_NEG[i]);
        }
        i += 1;
    }
    Ok(p.strict_shr(whole))
}

/// `1 − x²/(a(a+1))·(1 − x²/((a+2)(a+3))·(…))`: `a = 1` gives `cos x`, `a = 2` gives `sin x / x`.
const fn series(x2: I2F62, first: i64) -> I2F62 {
    let mut acc = I2F62::ONE;
    let mut j = SERIES_TERMS;
    while j > 0 {
        j -= 1;
        let a = first + 2 * j;
        acc = I2F62::ONE.strict_sub(x2.strict_mul(acc).strict_div_int(a * (a + 1)));
    }
    acc
}

/// `sin(pos·ω)` (`odd == false`) or `cos(pos·ω)` (`odd == true`) in `I2F62`.
const fn sinusoid_wide(pos: u32, omega: U1F63, odd: bool) -> I2F62 {
    // Exact: a 32-bit integer times a 63-fractional-bit value fits U64F64 without rounding.
    let angle = U64F64::from_bits((omega.to_bits() as u128) << 1).strict_mul_int(pos as u128);
    let r = angle.strict_rem(TAU).to_bits();
    let half_pi = FRAC_PI_2.to_bits();
    // Nearest multiple of π/2: r = m·π/2 + x with |x| ≤ π/4 (m ∈ 0..=4).
    let m = (r + half_pi / 2) / half_pi;
    let x64 = r as i128 - (m * half_pi) as i128;
    // To I2F62: drop two fractional bits, rounded.
    let x = I2F62::from_bits(((x64 + 2) >> 2) as i64);
    let x2 = x.strict_mul(x);
    let sin = x.strict_mul(series(x2, 2));
    let cos = series(x2, 1);
    // sin(x + mπ/2) and cos(x + mπ/2).
    let quadrant = (m as u32 + odd as u32) % 4;
    let v = match quadrant {
        0 => sin,
        1 => cos,
        2 => sin.strict_neg(),
        _ => cos.strict_neg(),
    };
    // Clamp the (at most a few ulp) overshoot so that |v| ≤ 1 always holds.
    if v.to_bits() > I2F62::ONE.to_bits() {
        I2F62::ONE
    } else if v.to_bits() < -I2F62::ONE.to_bits() {
        I2F62::ONE.strict_neg()
    } else {
        v
    }
}

/// `I2F62` → `I2F30`, rounded to nearest.
const fn narrow(v: I2F62) -> I2F30 {
    I2F30::from_bits(((v.to_bits() + (1 << 31)) >> 32) as i32)
}

/// `round(127·v)` for `|v| ≤ 1`, ties up.
const fn quantize(v: I2F62) -> i8 {
    let q = (v.to_bits() as i128 * TABLE_SCALE_DENOMINATOR as i128 + (1i128 << 61)) >> 62;
    q as i8 // |q| ≤ 127
}

/// `PE[pos][index]` for a model of `width` features, in `I2F30` (always in `[−1, 1]`; within
/// `2⁻³⁰` of the exact value for `pos < 2^16`, see the module docs).
///
/// Errors when `width == 0` or `index >= width`.
pub const fn sinusoid(pos: u32, index: u32, width: u32) -> Result<I2F30, Error> {
    match frequency(index, width) {
        Ok(omega) => Ok(narrow(sinusoid_wide(pos, omega, index & 1 == 1))),
        Err(e) => Err(e),
    }
}

/// `round(127·PE[pos][index])`: one entry of the int8 table (scale 1/127).
///
/// Errors when `width == 0` or `index >= width`.
pub const fn sinusoid_i8(pos: u32, index: u32, width: u32) -> Result<i8, Error> {
    match frequency(index, width) {
        Ok(omega) => Ok(quantize(sinusoid_wide(pos, omega, index & 1 == 1))),
        Err(e) => Err(e),
    }
}

/// Checks `width` and returns the number of rows `table` holds.
fn table_rows(what: &'static str, table_len: usize, width: usize) -> Result<usize, Error> {
    if width == 0 || width > u32::MAX as usize {
        return Err(Error::BadDimension {
            what: "position width",
            value: width,
        });
    }
    if table_len % width != 0 {
        return Err(Error::ShapeMismatch {
            what,
            expected: table_len / width * width,
            found: table_len,
        });
    }
    Ok(table_len / width)
}

/// Fill `table` (`[rows][width]`, `rows = table.len() / width`) with the int8 sinusoid rows of
/// positions `first_position ..`, i.e. `table[r][i] = round(127·PE[first_position + r][i])`.
///
/// A row depends only on its position and the width, never on how many rows are filled.
/// Errors when `width` is 0, `table.len()` is not a multiple of it, or a position exceeds
/// `u32::MAX`.
pub fn fill_sinusoidal(table: &mut [i8], width: usize, first_position: usize) -> Result<(), Error> {
    let rows = table_rows("sinusoid table", table.len(), width)?;
    if rows > 0 && first_position.saturating_add(rows - 1) > u32::MAX as usize {
        return Err(Error::BadDimension {
            what: "sinusoid position",
            value: first_position.saturating_add(rows - 1),
        });
    }
    for col in 0..width {
        let omega = frequency(col as u32, width as u32)?;
        let odd = col & 1 == 1;
        for (r, row) in table.chunks_exact_mut(width).enumerate() {
            row[col] = quantize(sinusoid_wide((first_position + r) as u32, omega, odd));
        }
    }
    Ok(())
}

/// A static int8 sinusoid table for positions `0..POSITIONS` of a `WIDTH`-feature model, scale
/// 1/127 (`rows[pos][i] = round(127·PE[pos][i])`).
///
/// [`SinusoidalTable::new`] is a `const fn`: `static PE: SinusoidalTable<64, 32> =
/// SinusoidalTable::new();` is computed by the compiler and placed in flash (about 2 s of
/// compile time on the development machine). Compile-time evaluation is slow: a
/// `SinusoidalTable<256, 64>` takes about 15 s and needs `#[allow(long_running_const_eval)]` on
/// the `static`. For large tables, build the table at run time into a `static` buffer with
/// [`fill_sinusoidal`] (same bits), or let the tools pack it into the blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinusoidalTable<const POSITIONS: usize, const WIDTH: usize> {
    rows: [[i8; WIDTH]; POSITIONS],
}

impl<const POSITIONS: usize, const WIDTH: usize> SinusoidalTable<POSITIONS, WIDTH> {
    /// Compute the table (usable in `const` and `static` initializers).
    ///
    /// A `WIDTH` of 0 gives an empty table; `WIDTH` and `POSITIONS` must fit `u32` (any table
    /// that fits a microcontroller does).
    pub const fn new() -> Self {
        let mut rows = [[0i8; WIDTH]; POSITIONS];
        let mut col = 0;
        while col < WIDTH {
            let omega = match frequency(col as u32, WIDTH as u32) {
                Ok(w) => w,
                Err(_) => U1F63::ZERO, // unreachable: col < WIDTH
            };
            let mut pos = 0;
            while pos < POSITIONS {
                rows[pos][col] = quantize(sinusoid_wide(pos as u32, omega, col & 1 == 1));
                pos += 1;
            }
            col += 1;
        }
        SinusoidalTable { rows }
    }

    /// Row `pos` (`WIDTH` values), or [`Error::BufferTooSmall`] past the table.
    pub fn row(&self, pos: usize) -> Result<&[i8], Error> {
        self.rows
            .get(pos)
            .map(|r| r.as_slice())
            .ok_or(Error::BufferTooSmall {
                what: "sinusoid table rows",
                needed: pos + 1,
                available: POSITIONS,
            })
    }

    /// All rows, flattened (`[POSITIONS][WIDTH]`), as [`add_sinusoidal`] takes them.
    pub fn as_flat(&self) -> &[i8] {
        self.rows.as_flattened()
    }

    /// Add rows `first_position ..` to the int8 token rows `x` (`[tokens][WIDTH]`); see
    /// [`add_sinusoidal`].
    pub fn add_to(
        &self,
        x: &mut [i8],
        first_position: usize,
        add: &ResidualAdd,
    ) -> Result<(), Error> {
        add_sinusoidal(x, WIDTH, first_position, self.as_flat(), add)
    }
}

impl<const POSITIONS: usize, const WIDTH: usize> Default for SinusoidalTable<POSITIONS, WIDTH> {
    fn default() -> Self {
        Self::new()
    }
}

/// `x[t] ← x[t] ⊕ table[first_position + t]` for each token row `t`, shared by both encodings.
fn add_position_rows(
    what: &'static str,
    x: &mut [i8],
    width: usize,
    first_position: usize,
    table: &[i8],
    add: &ResidualAdd,
) -> Result<(), Error> {
    let tokens = table_rows("position input", x.len(), width)?;
    let positions = table_rows(what, table.len(), width)?;
    let needed = first_position.saturating_add(tokens);
    if needed > positions {
        return Err(Error::BufferTooSmall {
            what,
            needed,
            available: positions,
        });
    }
    // Rows `first_position..needed` of the table (`needed ≤ positions` checked above).
    let rows = table.chunks_exact(width).skip(first_position);
    for (xr, pr) in x.chunks_exact_mut(width).zip(rows) {
        add.run_in_place(xr, pr)?;
    }
    Ok(())
}

/// Add the sinusoidal encoding to int8 token rows `x` (`[tokens][width]`) for positions
/// `first_position ..`, from an int8 sinusoid table `table` (`[positions][width]`, scale 1/127,
/// zero point 0, as built by [`fill_sinusoidal`] or [`SinusoidalTable`]).
///
/// `add` is the residual add with `a` = the token embeddings, `b` = the table
/// (`b_scale = (1/127)/s_out`, `b_zero_point = 0`). Errors when shapes disagree or the positions
/// run past the table ([`Error::BufferTooSmall`]).
pub fn add_sinusoidal(
    x: &mut [i8],
    width: usize,
    first_position: usize,
    table: &[i8],
    add: &ResidualAdd,
) -> Result<(), Error> {
    add_position_rows("sinusoid table", x, width, first_position, table, add)
}

/// Add a learned position table (`[positions][width]` int8 from the checkpoint, with its own
/// scale and zero point folded into `add`) to int8 token rows `x` (`[tokens][width]`) for
/// positions `first_position ..`.
///
/// Errors when shapes disagree or the positions run past the table ([`Error::BufferTooSmall`]).
pub fn add_learned(
    x: &mut [i8],
    width: usize,
    first_position: usize,
    table: &[i8],
    add: &ResidualAdd,
) -> Result<(), Error> {
    add_position_rows(
        "learned position table",
        x,
        width,
        first_position,
        table,
        add,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants() {
        assert_eq!(frequency(0, 8), Ok(U1F63::ONE));
        assert_eq!(frequency(1, 8), Ok(U1F63::ONE));
        assert_eq!(sinusoid(0, 1, 8), Ok(I2F30::ONE));
        assert_eq!(sinusoid(0, 0, 8), Ok(I2F30::ZERO));
        assert!(sinusoid(0, 8, 8).is_err());
        assert!(sinusoid(0, 0, 0).is_err());
    }
}
