//! LayerNorm, integer-only.
//!
//! Standard definition over the last axis (width `D`), biased variance, `ε` inside the root:
//!
//! `y_i = (x_i − μ) / √(σ² + ε) · γ_i + β_i`,  `μ = Σx/D`,  `σ² = Σ(x − μ)²/D`.
//!
//! (The reference lecture's formula omits the `1/D` in `σ` and `ε`; this is the standard one, the
//! one PyTorch, ViT and GPT-2 use.)
//!
//! # Integer formulation
//! The input is an int8 row `q_i` with scale `s_x` and zero point `z_x`. Subtracting the mean
//! removes `z_x`, and the division by the standard deviation removes `s_x` — except in `ε`,
//! which in input-LSB² units is `e = ε / s_x²`. Multiplying numerator and denominator by `D`:
//!
//! - `S = Σ q_j`, `Q = Σ q_j²`;
//! - `c_i = D·q_i − S` (`= D·(q_i − μ)`, exact);
//! - `V = D·Q − S²` (`= D²·σ² = Σ_{j<k} (q_j − q_k)²`, exact, never negative);
//! - `n_i = c_i / √(V + D²·e)` (the normalized value, no division by `D` anywhere).
//!
//! `e` is stored as [`LayerNorm::epsilon`], an unsigned fixed-point number with
//! [`EPSILON_FRAC_BITS`] = 40 fractional bits (Q24.40 in a `u64`): resolution `2^-40 ≈ 9·10^-13`
//! LSB², range below `2^24` LSB². ViT's `ε = 10^-12` and GPT-2's `ε = 10^-5` both land in range
//! for any input scale above `2^-12·√ε`; an `e` that rounds to 0 (`e < 2^-41`) changes the
//! denominator by a relative `e/(2σ²) ≤ e·D < 2^-27` at most (a row that is not constant has `σ² ≥ (D−1)/D² ≥ 1/(2D)`), and a
//! constant row (`σ² = 0`) gives `c_i = 0`, hence exactly `β` for every `ε`, including 0.
//!
//! The denominator `T = V·2^40 + D²·e_q` (a `u128`) is normalized by an even shift `2k` into
//! `[2^60, 2^62)`, with the exact floor square root `s ∈ [2^30, 2^31)` of the normalized value
//! and `r = round(2^62 / s)`, so `1/√T ≈ r · 2^(−62−k)` to a relative `2^-29`. The reference
//! form ([`rsqrt_u128_reference`]) takes `s` with the bitwise square root ([`isqrt_u64`]) and
//! `r` with one `u64` division; the kernel ([`rsqrt_u128`]) gets the same `(r, k)` from a
//! table-seeded 32-bit Newton estimate of `1/√` made exact by `±1` corrections checked with
//! 64-bit products (a few dozen instructions per row instead of thousands). Then, per element,
//!
//! - `n_i` in Q24: `ñ_i = round(c_i · r · 2^−(18+k))`;
//! - `y_i = round((ñ_i · g_i + b_i · 2^24) · 2^−40) + z_out`, saturated to int8,
//!
//! where `g_i = round(γ_i / s_out · 2^16)` ([`GAMMA_FRAC_BITS`]) and `b_i = round(β_i / s_out ·
//! 2^16)` ([`BETA_FRAC_BITS`]) are folded with the output scale at pack time
//! (`LayerNormParams::quantize`, `std` feature). Rounding is half up (arithmetic shift of the value plus half).
//!
//! # Overflow (for `1 ≤ D ≤ MAX_WIDTH = 2^14`, any `i32` γ/β and any `u64` ε)
//! - `|S| ≤ 128·D ≤ 2^21` (`i32`), `Q ≤ 128²·D = 2^28` (`i64`);
//! - `|c_i| ≤ 255·D < 2^22` (`i32`: `|q_i − μ| ≤ 255`);
//! - `D·Q ≤ 2^42` and `S² ≤ 2^42`, so `V` fits `i64` easily (and `V ≤ D²·255²/4 < 2^42`);
//! - `T ≤ 2^42·2^40 + 2^28·2^64 < 2^93` (`u128`), so `k ≤ 16`;
//!   a non-constant row has `V ≥ D − 1 ≥ 1`, so `T ≥ 2^40` and `k ≥ −10`: the shift `18 + k`
//!   of `ñ` is in `8..=34` (a constant row skips the division entirely);
//! - `r ≤ 2^32 − 1` (clamped; `s ≥ 2^30`), so `|c_i · r| < 2^54` (`i64`);
//! - `|n_i| ≤ √(D−1) < 128` (the largest deviation over the biased standard deviation), and the
//!   computed value exceeds it by a relative `2^-29` plus `2^-25` at most, so `|ñ_i| < 2^31`;
//! - `|ñ_i · g_i| < 2^31 · 2^31 = 2^62`, `|b_i · 2^24| < 2^55`, rounding constant `2^39`: the sum
//!   stays below `2^63` (`i64`); after the shift `|y| < 2^23`.
//!
//! # Error
//! Against the f64 LayerNorm of the same int8 inputs with the f64 γ, β and ε, quantized with
//! the output parameters (`round(y/s_out) + z_out`, saturated), the output differs by at most
//! [`LAYER_NORM_MAX_LSB_ERROR`] = 1 LSB. Before the final rounding the integer value is within
//! `2^-6` output LSB of the real one for `|γ/s_out| < 2^15` (the Q16 range): `|n|·2^-17` from γ's
//! rounding (`≤ 2^-10`), `2^-17` from β's, `|γ/s_out|·2^-25` from `ñ`'s rounding (`≤ 2^-10`),
//! a relative `2^-29` on `n·γ/s_out` from the reciprocal square root (`≤ 2^-7`) and a smaller
//! share from ε's rounding; so the output is exact unless the real value lies within `2^-6` LSB
//! of a rounding boundary (tested).

use crate::error::check_len;
use crate::{Error, MAX_WIDTH};

/// Fractional bits of [`LayerNorm::epsilon`] (ε in input LSB², unsigned Q24.40).
pub const EPSILON_FRAC_BITS: u32 = 40;

/// Fractional bits of [`LayerNorm::gamma`] (γ in output LSBs per unit of normalized value, Q15.16).
pub const GAMMA_FRAC_BITS: u32 = 16;

/// Fractional bits of [`LayerNorm::beta`] (β in output LSBs, Q15.16).
pub const BETA_FRAC_BITS: u32 = 16;

/// Fractional bits of the normalized value `(x − μ)/√(σ² + ε)` inside the kernel.
const NORM_FRAC_BITS: u32 = 24;

/// Documented bound: output LSBs between [`LayerNorm::run`] and the f64 LayerNorm of the same
/// int8 inputs quantized with the output parameters (see the module's error argument).
pub const LAYER_NORM_MAX_LSB_ERROR: u32 = 1;

/// `⌊√n⌋`, exact, by the bitwise (digit-by-digit) method: 32 iterations of shifts, compares and
/// subtractions, no division and no float. (The reference square root; [`rsqrt_u128`] uses a
/// Newton estimate with an exact correction instead.)
pub const fn isqrt_u64(n: u64) -> u64 {
    let mut rem = n;
    let mut root = 0u64;
    let mut bit = 1u64 << 62;
    while bit > rem {
        bit >>= 2;
    }
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

/// The reference form of [`rsqrt_u128`], kept as the specification it is tested against:
/// `t` is shifted by an even amount `2k` into `[2^60, 2^62)` (`tn = ⌊t / 4^k⌋`), its floor
/// square root `s` (in `[2^30, 2^31)`) is taken with [`isqrt_u64`] and
/// `r = min(⌊(2^62 + ⌊s/2⌋) / s⌋, 2^32 − 1)` (one `u64` division). Returns `(0, 0)` for `t = 0`.
pub fn rsqrt_u128_reference(t: u128) -> (u32, i32) {
    if t == 0 {
        return (0, 0);
    }
    let bits = (128 - t.leading_zeros()) as i32;
    // bits − 2k ∈ {61, 62}.
    let k = (bits - 61).div_euclid(2);
    let tn = if k >= 0 {
        t >> (2 * k) as u32
    } else {
        t << (-2 * k) as u32
    } as u64;
    let s = isqrt_u64(tn); // in [2^30, 2^31)
    let r = ((1u64 << 62) + s / 2) / s; // in [2^31, 2^32]
    (r.min(u32::MAX as u64) as u32, k)
}

/// Index bits dropped from `x ∈ [2^30, 2^32)` to address [`RSQRT_SEED`] (its top 8 bits).
const SEED_SHIFT: u32 = 24;

/// `⌊2^46 / √x_mid⌉ >> 16` at the midpoint `x_mid` of each interval of `2^24` values of
/// `x ∈ [2^30, 2^32)`, indexed by `x >> 24` (entries `0..64` are never read and repeat entry
/// 64, so that the index needs no bounds check): a seed within a relative `2^-8` of
/// `2^46/√x` (computed at compile time with [`isqrt_u64`]).
static RSQRT_SEED: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let index = if i < 64 { 64 } else { i as u64 };
        let mid = (2 * index + 1) << (SEED_SHIFT - 1);
        // √mid · 2^15, then 2^46 / √mid = 2^61 / (√mid · 2^15).
        let y = (1u64 << 61) / isqrt_u64(mid << 30);
        table[i] = ((y + (1 << 15)) >> 16) as u16;
        i += 1;
    }
    table
};

/// One Newton step of `Y ≈ 2^46/√x` (`x ∈ [2^30, 2^32)`, `Y ∈ (2^30, 2^31]`):
/// `Y' = Y · (3 − x·Y²/2^92) / 2`, three `UMULL`s, each product truncated to 32 bits.
#[inline(always)]
fn rsqrt_newton(x: u32, y: u32) -> u32 {
    let y2 = ((y as u64 * y as u64) >> 32) as u32; // ≈ Y²/2^32 ≤ 2^30
    let e = ((x as u64 * y2 as u64) >> 30) as u32; // ≈ (x·Y²/2^92) · 2^30 ≈ 2^30
    ((y as u64 * ((3u32 << 30) - e) as u64) >> 31) as u32
}

/// `t = hi·2^64 + lo` shifted by the even amount `2k` that brings it into `[2^60, 2^62)`:
/// returns `(⌊t / 4^k⌋, k)` (for `k < 0` the shift is to the left and exact). `t ≠ 0`.
#[inline]
fn normalize_even(hi: u64, lo: u64) -> (u64, i32) {
    if hi == 0 {
        let bits = (64 - lo.leading_zeros()) as i32;
        let k = (bits - 61).div_euclid(2);
        let tn = if k >= 0 {
            lo >> (2 * k) as u32
        } else {
            lo << (-2 * k) as u32
        };
        (tn, k)
    } else {
        // bits ≥ 65, so the shift 2k is in 4..=67.
        let bits = (128 - hi.leading_zeros()) as i32;
        let k = (bits - 61) / 2;
        let sh = (2 * k) as u32;
        let tn = if sh < 64 {
            (lo >> sh) | (hi << (64 - sh))
        } else {
            hi >> (sh - 64)
        };
        (tn, k)
    }
}

/// Integer reciprocal square root of `t ≥ 1`: returns `(r, k)` with
/// `1/√t ≈ r · 2^(−62−k)`, `r ∈ [2^31, 2^32)`, to a relative error below `2^-29`: exactly
/// [`rsqrt_u128_reference`] for every `t` (`tn = ⌊t / 4^k⌋ ∈ [2^60, 2^62)`,
/// `s = ⌊√tn⌋`, `r = min(⌊(2^62 + ⌊s/2⌋) / s⌋, 2^32 − 1)`), without the bitwise square root
/// and the 64-bit division. Returns `(0, 0)` for `t = 0`.
///
/// With `x = ⌊tn / 2^30⌋ ∈ [2^30, 2^32)`: a seed of `Y ≈ 2^46/√x` from a 256-entry table
/// indexed by the top 8 bits of `x` and two Newton steps (32-bit products) give `Y` to about
/// `2^-29`; then `s₀ = ⌊x·Y / 2^31⌋ ≈ √tn` and `r₀ = 2Y ≈ 2^62/s`. Each is corrected by one
/// Newton step on its exact residual (`tn − s₀²`, resp. `2^62 + ⌊s/2⌋ − r₀·s`, times `Y`) and
/// then made exact by the `±1` loops `s² ≤ tn < (s+1)²` and `r·s ≤ N < (r+1)·s` (64-bit
/// products). The loops make the result exact whatever the estimates; the estimates only
/// bound their trip count (at most one step each over the tested domain). All products fit
/// `u64`/`i64`: `s, s₀ < 2^31 + 2^4`, `r, r₀ < 2^32 + 2^4`, residuals below `2^36`.
pub fn rsqrt_u128(t: u128) -> (u32, i32) {
    if t == 0 {
        return (0, 0);
    }
    let (tn, k) = normalize_even((t >> 64) as u64, t as u64);
    rsqrt_normalized(tn, k)
}

/// An integer reciprocal square root variant: `t ↦ (r, k)` with `r · 2^(−62−k) ≈ 1/√t`, equal
/// to [`rsqrt_u128_reference`] for every `t`.
pub type RsqrtFn = fn(u128) -> (u32, i32);

/// One registered reciprocal square root.
#[derive(Clone, Copy)]
pub struct RsqrtVariant {
    /// Name, as the tests report it.
    pub name: &'static str,
    /// The kernel.
    pub run: RsqrtFn,
    /// Whether the kernels ([`LayerNorm`], [`crate::rmsnorm`]) run this entry (exactly one).
    pub native: bool,
}

/// Every reciprocal square root the LayerNorm and RMSNorm kernels may use: they run the
/// `native` entry, `tests/elementwise_variants.rs` runs each against
/// [`rsqrt_u128_reference`]. The Newton form [`rsqrt_u128`].
pub const RSQRT_VARIANTS: &[RsqrtVariant] = &[RsqrtVariant {
    name: "newton",
    run: rsqrt_u128,
    native: true,
}];

/// The native entry of a registry of `(native, kernel)` pairs; fails the build unless
/// exactly one entry is native.
macro_rules! native_entry {
    ($list:expr, $what:literal, |$v:ident| $native:expr, $kernel:expr, $ty:ty) => {{
        let mut i = 0;
        let mut found: Option<$ty> = None;
        while i < $list.len() {
            let $v = &$list[i];
            if $native {
                assert!(found.is_none(), concat!("two native ", $what, " variants"));
                found = Some($kernel);
            }
            i += 1;
        }
        match found {
            Some(f) => f,
            None => panic!(concat!("no native ", $what, " variant")),
        }
    }};
}
pub(crate) use native_entry;

/// The native entry of [`RSQRT_VARIANTS`].
const NATIVE_RSQRT: RsqrtFn = native_entry!(RSQRT_VARIANTS, "rsqrt", |v| v.native, v.run, RsqrtFn);

/// The reciprocal square root the kernels run: [`RSQRT_VARIANTS`]' native entry.
#[inline(always)]
pub(crate) fn rsqrt(t: u128) -> (u32, i32) {
    NATIVE_RSQRT(t)
}

/// [`rsqrt_u128`] after the normalization: `tn ∈ [2^60, 2^62)`.
#[inline]
fn rsqrt_normalized(tn: u64, k: i32) -> (u32, i32) {
    let x = (tn >> 30) as u32;
    let mut y = (RSQRT_SEED[(x >> SEED_SHIFT) as usize] as u32) << 16;
    y = rsqrt_newton(x, y);
    y = rsqrt_newton(x, y);
    // s ≈ √x · 2^15; then s += (tn − s²)/(2s), with 1/(2√tn) = Y / 2^62.
    let s0 = ((x as u64 * y as u64) >> 31) as u32;
    let res = tn as i64 - (s0 as u64 * s0 as u64) as i64;
    let mut s = (s0 as i64 + ((res * (y >> 8) as i64) >> 54)) as u32;
    while s as u64 * s as u64 > tn {
        s -= 1;
    }
    while (s + 1) as u64 * (s + 1) as u64 <= tn {
        s += 1;
    }
    let s = s as u64;
    // r ≈ 2^62/s ≈ 2Y; then r += (N − r·s)/s, with 1/s ≈ 2Y / 2^62.
    let num = (1u64 << 62) + s / 2;
    let r0 = 2 * y as u64;
    let res = num as i64 - (r0 * s) as i64;
    let mut r = (r0 as i64 + ((res * (y >> 8) as i64) >> 53)) as u64;
    while r * s > num {
        r -= 1;
    }
    while (r + 1) * s <= num {
        r += 1;
    }
    (r.min(u32::MAX as u64) as u32, k)
}

/// Parameters of one LayerNorm, borrowed (zero-copy from a model blob: two `i32` arrays and
/// scalars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerNorm<'a> {
    /// Features per row `D`, `1..=MAX_WIDTH`.
    pub width: usize,
    /// `round(γ_i / s_out · 2^GAMMA_FRAC_BITS)`, one per feature: output LSBs per unit of
    /// normalized value, Q15.16 (any `i32` is safe, see the module's overflow argument).
    pub gamma: &'a [i32],
    /// `round(β_i / s_out · 2^BETA_FRAC_BITS)`, one per feature: output LSBs, Q15.16 (the output
    /// zero point is added separately).
    pub beta: &'a [i32],
    /// `ε / s_x²` in input LSB², unsigned fixed point with [`EPSILON_FRAC_BITS`] = 40 fractional
    /// bits (Q24.40). Any value is safe.
    pub epsilon: u64,
    /// Output zero point, `-128..=127`.
    pub output_zero_point: i32,
}

impl<'a> LayerNorm<'a> {
    /// Check the width, the lengths of `gamma` and `beta` and the output zero point.
    #[inline(never)] // load-time check: one copy, not inlined into each caller
    pub fn validate(&self) -> Result<(), Error> {
        self.check_width()?;
        check_len("layer norm gamma", self.width, self.gamma.len())?;
        check_len("layer norm beta", self.width, self.beta.len())?;
        if !(-128..=127).contains(&self.output_zero_point) {
            return Err(Error::BadDimension {
                what: "layer norm output zero point",
                value: self.output_zero_point.unsigned_abs() as usize,
            });
        }
        Ok(())
    }

    fn check_width(&self) -> Result<(), Error> {
        if self.width == 0 || self.width > MAX_WIDTH {
            return Err(Error::BadDimension {
                what: "layer norm width",
                value: self.width,
            });
        }
        Ok(())
    }

    /// Check everything `run` indexes by, and that `len` is a whole number of rows.
    fn check_shapes(&self, len: usize) -> Result<(), Error> {
        self.check_width()?;
        check_len("layer norm gamma", self.width, self.gamma.len())?;
        check_len("layer norm beta", self.width, self.beta.len())?;
        if len % self.width != 0 {
            return Err(Error::ShapeMismatch {
                what: "layer norm input",
                expected: len / self.width * self.width,
                found: len,
            });
        }
        Ok(())
    }

    /// Normalize every row of `input` (`[rows][width]`, rows = `input.len() / width`) into
    /// `output` (same length).
    ///
    /// Shapes are checked; the zero point's range is not (call [`LayerNorm::validate`] once when
    /// the parameters are loaded; an out-of-range zero point only shifts the saturated result).
    pub fn run(&self, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
        self.check_shapes(input.len())?;
        check_len("layer norm output", input.len(), output.len())?;
        let rows = crate::tensor::zip_lazy(
            input.chunks_exact(self.width),
            output.chunks_exact_mut(self.width),
        );
        for (x, y) in rows {
            NATIVE_ROW(self, x, y);
        }
        Ok(())
    }

    /// [`LayerNorm::run`] in place: each output only depends on its own input and on the row's
    /// sums, which are taken before the row is overwritten.
    pub fn run_in_place(&self, data: &mut [i8]) -> Result<(), Error> {
        self.check_shapes(data.len())?;
        for row in data.chunks_exact_mut(self.width) {
            NATIVE_ROW_IN_PLACE(self, row);
        }
        Ok(())
    }

    /// [`LayerNorm::run_in_place`] with the reference per-element formula (64-bit products and
    /// a variable 64-bit shift per element): the variant the fast path is tested against.
    pub fn run_in_place_generic(&self, data: &mut [i8]) -> Result<(), Error> {
        self.check_shapes(data.len())?;
        for row in data.chunks_exact_mut(self.width) {
            let stats = self.row_stats_reference(row);
            for (v, (&g, &b)) in row.iter_mut().zip(self.gamma.iter().zip(self.beta)) {
                *v = self.output_one(&stats, *v, g, b);
            }
        }
        Ok(())
    }

    /// The per-element step of one row, equal to [`Self::output_one`] bit for bit but with
    /// the row's shift `s` resolved once: `⌊(c·r + 2^(s−1)) / 2^s⌋` is a 32-bit funnel shift
    /// of the 64-bit sum for `s < 32` and a shift of its high word for `s ≥ 32` (the value
    /// fits `i32`, see the module's overflow argument, so the low 32 bits of the shifted sum are
    /// the value); `c·r + 2^(s−1)` is formed from the unsigned `c + 2^22` (one `MLA` and one
    /// `UMLAL`, see the comment in the body). The γ/β step is one multiply–accumulate into
    /// `b·2^24 + 2^39 + z_out·2^40` whose `>> 40` is the high word shifted by 8 and already
    /// includes the zero point (adding `z_out·2^40` before the floor shift adds exactly `z_out`
    /// after it; the sum stays below `2^63`), then a 32-bit saturation. Output zero points
    /// outside int8 (not a valid layer) take the reference formula.
    #[inline]
    fn normalize_row(&self, st: &RowStats, row: &mut [i8]) {
        if !(-128..=127).contains(&self.output_zero_point) {
            // Not a valid layer (see `validate`), but still the reference's bits.
            for (v, (&g, &b)) in row.iter_mut().zip(self.gamma.iter().zip(self.beta)) {
                *v = self.output_one(st, *v, g, b);
            }
            return;
        }
        let d = self.width as i32;
        // c + 2^22 = D·x + (2^22 − S) ∈ [0, 2^23) (|c| ≤ 255·D < 2^22): an unsigned `c'` with
        // c·r + 2^(s−1) = c'·r + k, k = 2^(s−1) − 2^22·r, so one `MLA` and one `UMLAL` (the
        // 64-bit add wraps; the true sum is below 2^55 in magnitude).
        let offset = (1i32 << 22) - st.sum;
        let k = ((1i64 << (st.shift - 1)) - ((st.recip as i64) << 22)) as u64;
        let r = st.recip as u64;
        // 2^39 + z_out·2^40, |z_out| ≤ 128.
        let bias = (1i64 << (NORM_FRAC_BITS + GAMMA_FRAC_BITS - 1))
            + ((self.output_zero_point as i64) << (NORM_FRAC_BITS + GAMMA_FRAC_BITS));
        let params = self.gamma.iter().zip(self.beta);
        if st.shift < 32 {
            let s = st.shift;
            for (v, (&g, &b)) in row.iter_mut().zip(params) {
                let c = (d * *v as i32 + offset) as u32;
                let q = (c as u64 * r).wrapping_add(k);
                let n = ((q as u32) >> s) | (((q >> 32) as u32) << (32 - s));
                *v = Self::scale_shift(n as i32, g, b, bias);
            }
        } else {
            let s = st.shift - 32;
            for (v, (&g, &b)) in row.iter_mut().zip(params) {
                let c = (d * *v as i32 + offset) as u32;
                let q = (c as u64 * r).wrapping_add(k);
                let n = ((q >> 32) as i32) >> s;
                *v = Self::scale_shift(n, g, b, bias);
            }
        }
    }

    /// `y = ⌊(ñ·g + b·2^24 + bias) · 2^−40⌋`, saturated, with `bias = 2^39 + z_out·2^40`: the
    /// second half of [`Self::output_one`] with the zero point folded in.
    #[inline(always)]
    fn scale_shift(n: i32, gamma: i32, beta: i32, bias: i64) -> i8 {
        const OUT_SHIFT: u32 = NORM_FRAC_BITS + GAMMA_FRAC_BITS;
        // b·2^24 + bias as words: the high word `(b >> 8) + bias_hi` is one `ADD` with a shifted
        // operand (no carry: the low word of `bias` is 0).
        let lo = (beta as u32) << (OUT_SHIFT - BETA_FRAC_BITS);
        let hi = (beta >> (32 - (OUT_SHIFT - BETA_FRAC_BITS))) + (bias >> 32) as i32;
        let acc = n as i64 * gamma as i64 + (((hi as i64) << 32) | lo as i64);
        ((acc >> OUT_SHIFT) as i32).clamp(-128, 127) as i8
    }

    /// Sums, the reciprocal square root and the shift for one row: equal to
    /// [`Self::row_stats_reference`] field for field. The sum of squares fits `i32`
    /// (`Q ≤ 128²·D ≤ 2^28`), `D²·e` is two 32×32→64-bit products (`D² ≤ 2^28`, `e` split into
    /// words) instead of a 128-bit multiplication, and [`rsqrt_u128`] replaces the bitwise
    /// square root and the division.
    #[inline]
    fn row_stats(&self, x: &[i8]) -> RowStats {
        let d = x.len() as u32;
        let mut sum = 0i32;
        let mut sumsq = 0i32;
        for &v in x {
            let v = v as i32;
            sum += v;
            sumsq += v * v;
        }
        // V = D·Q − S² = Σ_{j<k} (x_j − x_k)² ≥ 0, below 2^42.
        let var_d2 = (d as u64 * sumsq as u32 as u64) as i64 - sum as i64 * sum as i64;
        if var_d2 <= 0 {
            // Constant row: every c_i is 0, the output is β whatever ε is.
            return RowStats {
                sum,
                recip: 0,
                shift: 1,
            };
        }
        let d2 = (d * d) as u64;
        let e = self.epsilon;
        let t = ((var_d2 as u128) << EPSILON_FRAC_BITS)
            + (d2 * (e as u32) as u64) as u128
            + (((d2 * (e >> 32)) as u128) << 32);
        Self::stats_from(sum, rsqrt(t))
    }

    /// The row statistics as first written (64-bit sum of squares, a 128-bit `D²·e` and
    /// [`rsqrt_u128_reference`]): what [`Self::run_in_place_generic`] uses.
    fn row_stats_reference(&self, x: &[i8]) -> RowStats {
        let d = x.len() as i64;
        let mut sum = 0i32;
        let mut sumsq = 0i64;
        for &v in x {
            let v = v as i32;
            sum += v;
            sumsq += (v * v) as i64;
        }
        let var_d2 = d * sumsq - sum as i64 * sum as i64;
        if var_d2 <= 0 {
            return RowStats {
                sum,
                recip: 0,
                shift: 1,
            };
        }
        let t = ((var_d2 as u128) << EPSILON_FRAC_BITS)
            + (d as u128 * d as u128) * self.epsilon as u128;
        Self::stats_from(sum, rsqrt_u128_reference(t))
    }

    /// The per-row shift from the reciprocal square root `(r, k)` of `T`.
    #[inline(always)]
    fn stats_from(sum: i32, (recip, k): (u32, i32)) -> RowStats {
        // n = c · 2^20 / √T ≈ c · r · 2^(20 − 62 − k); in Q24 the right shift is 18 + k, which
        // is in 8..=34 because 2^40 ≤ T < 2^93.
        let shift = 62 + k - (EPSILON_FRAC_BITS / 2) as i32 - NORM_FRAC_BITS as i32;
        RowStats {
            sum,
            recip,
            shift: shift.clamp(1, 62) as u32,
        }
    }

    #[inline(always)]
    fn output_one(&self, st: &RowStats, x: i8, gamma: i32, beta: i32) -> i8 {
        const OUT_SHIFT: u32 = NORM_FRAC_BITS + GAMMA_FRAC_BITS;
        let c = self.width as i32 * x as i32 - st.sum;
        let n = (c as i64 * st.recip as i64 + (1i64 << (st.shift - 1))) >> st.shift;
        let acc = n * gamma as i64
            + ((beta as i64) << (OUT_SHIFT - BETA_FRAC_BITS))
            + (1i64 << (OUT_SHIFT - 1));
        let y = (acc >> OUT_SHIFT) + self.output_zero_point as i64;
        y.clamp(-128, 127) as i8
    }
}

/// A LayerNorm row kernel: one row `x` of exactly `width` values normalized into `y` (as
/// long; the dispatchers pass the rows of a checked tensor).
pub type LayerNormRowFn = fn(&LayerNorm<'_>, &[i8], &mut [i8]);

/// The same kernel in place.
pub type LayerNormRowInPlaceFn = fn(&LayerNorm<'_>, &mut [i8]);

/// One registered LayerNorm kernel, in both forms.
#[derive(Clone, Copy)]
pub struct LayerNormVariant {
    /// Name, as the tests report it.
    pub name: &'static str,
    /// The row kernel ([`LayerNorm::run`]).
    pub row: LayerNormRowFn,
    /// The row kernel in place ([`LayerNorm::run_in_place`]).
    pub row_in_place: LayerNormRowInPlaceFn,
    /// Whether the dispatchers run this entry (exactly one).
    pub native: bool,
}

/// The `fast` entry: 32-bit row statistics and [`rsqrt`].
#[inline(always)]
fn row_fast(n: &LayerNorm<'_>, x: &[i8], y: &mut [i8]) {
    let stats = n.row_stats(x);
    // Size-first builds (opt-level "s"): an element copy, as `copy_from_slice`'s length check
    // is not always folded there and would link the panic machinery.
    #[cfg(not(core_attn_small))]
    y.copy_from_slice(x);
    #[cfg(core_attn_small)]
    y.iter_mut().zip(x).for_each(|(y, &x)| *y = x);
    n.normalize_row(&stats, y);
}

/// [`row_fast`] in place.
#[inline(always)]
fn row_fast_in_place(n: &LayerNorm<'_>, row: &mut [i8]) {
    let stats = n.row_stats(row);
    n.normalize_row(&stats, row);
}

/// Every LayerNorm row kernel, each of which must give [`LayerNorm::run_in_place_generic`]'s
/// bits (the reference formula): the dispatchers ([`LayerNorm::run`],
/// [`LayerNorm::run_in_place`]) run the `native` entry on every row, and
/// `tests/elementwise_variants.rs` runs every entry: a kernel is dispatched to only if it is
/// registered here, and then it is tested. `fast`: 32-bit row statistics and the native
/// [`RSQRT_VARIANTS`] entry.
pub const LAYER_NORM_VARIANTS: &[LayerNormVariant] = &[LayerNormVariant {
    name: "fast",
    row: row_fast,
    row_in_place: row_fast_in_place,
    native: true,
}];

/// The native entry of [`LAYER_NORM_VARIANTS`].
const NATIVE: LayerNormVariant = native_entry!(
    LAYER_NORM_VARIANTS,
    "layer norm",
    |v| v.native,
    *v,
    LayerNormVariant
);

/// [`LayerNorm::run`]'s row kernel (a constant function: a direct call, inlined).
const NATIVE_ROW: LayerNormRowFn = NATIVE.row;

/// [`LayerNorm::run_in_place`]'s row kernel.
const NATIVE_ROW_IN_PLACE: LayerNormRowInPlaceFn = NATIVE.row_in_place;

/// Per-row quantities shared by every element of the row.
struct RowStats {
    sum: i32,
    recip: u32,
    shift: u32,
}

/// Owned LayerNorm parameters built on the host from float γ, β and ε (pack time).
#[cfg(feature = "std")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerNormParams {
    /// See [`LayerNorm::gamma`].
    pub gamma: std::vec::Vec<i32>,
    /// See [`LayerNorm::beta`].
    pub beta: std::vec::Vec<i32>,
    /// See [`LayerNorm::epsilon`].
    pub epsilon: u64,
    /// See [`LayerNorm::output_zero_point`].
    pub output_zero_point: i32,
}

#[cfg(feature = "std")]
impl LayerNormParams {
    /// Fold γ and β with the output scale and express ε in input LSB².
    ///
    /// Errors: [`Error::ShapeMismatch`] if `beta` and `gamma` differ in length,
    /// [`Error::BadDimension`] for a width of 0 or above [`MAX_WIDTH`] or an output zero point
    /// outside int8, [`Error::BadRequant`] for a non-positive or non-finite scale, a negative or
    /// non-finite ε, ε / s_x² of `2^24` LSB² or more, or a γ / s_out or β / s_out of `2^15` or
    /// more in magnitude (outside Q15.16).
    pub fn quantize(
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
        input: crate::requant::QParams,
        output: crate::requant::QParams,
    ) -> Result<Self, Error> {
        check_len("layer norm beta", gamma.len(), beta.len())?;
        let scale_ok = |s: f64| s.is_finite() && s > 0.0;
        if !scale_ok(input.scale) || !scale_ok(output.scale) || !eps.is_finite() || eps < 0.0 {
            return Err(Error::BadRequant);
        }
        let e = (eps / (input.scale * input.scale)
            * crate::requant::pow2(EPSILON_FRAC_BITS as i32))
        .round();
        // 2^64 is exactly representable; anything at or above it does not fit.
        if !e.is_finite() || e >= 18_446_744_073_709_551_616.0 {
            return Err(Error::BadRequant);
        }
        let fold = |v: f32, frac: u32| -> Result<i32, Error> {
            let q = (v as f64 / output.scale * crate::requant::pow2(frac as i32)).round();
            if q.is_finite() && q >= i32::MIN as f64 && q <= i32::MAX as f64 {
                Ok(q as i32)
            } else {
                Err(Error::BadRequant)
            }
        };
        let params = LayerNormParams {
            gamma: gamma
                .iter()
                .map(|&g| fold(g, GAMMA_FRAC_BITS))
                .collect::<Result<_, _>>()?,
            beta: beta
                .iter()
                .map(|&b| fold(b, BETA_FRAC_BITS))
                .collect::<Result<_, _>>()?,
            epsilon: e as u64,
            output_zero_point: output.zero_point,
        };
        params.as_layer_norm().validate()?;
        Ok(params)
    }

    /// Borrow as the run-time [`LayerNorm`].
    pub fn as_layer_norm(&self) -> LayerNorm<'_> {
        LayerNorm {
            width: self.gamma.len(),
            gamma: &self.gamma,
            beta: &self.beta,
            epsilon: self.epsilon,
            output_zero_point: self.output_zero_point,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_exact_at_boundaries() {
        for n in [
            0u64,
            1,
            2,
            3,
            4,
            15,
            16,
            17,
            1 << 40,
            (1 << 62) - 1,
            u64::MAX,
        ] {
            let s = isqrt_u64(n) as u128;
            assert!(s * s <= n as u128 && (s + 1) * (s + 1) > n as u128, "{n}");
        }
    }

    #[test]
    fn constant_row_gives_beta() {
        let gamma = [1 << 20, -(1 << 20), 5];
        let beta = [3 << 16, -(7 << 16), 0];
        let ln = LayerNorm {
            width: 3,
            gamma: &gamma,
            beta: &beta,
            epsilon: 0,
            output_zero_point: 2,
        };
        let mut out = [0i8; 3];
        ln.run(&[-128; 3], &mut out).unwrap();
        assert_eq!(out, [5, -5, 2]);
    }
}
