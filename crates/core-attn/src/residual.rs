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
//!
//! # Fast path (32-bit, bit-identical)
//! [`ResidualAdd::add_one`] is the reference: two [`Requant::apply`]s, each a 64-bit product and
//! a variable 64-bit shift. [`ResidualAdd::run`] and [`ResidualAdd::run_in_place`] compute the
//! same bits in 32-bit arithmetic (a private `Term` per input). With `x = v − z ∈ [−255, 255]`, the multiplier
//! split as `m = m_h·2^8 + m_l` (`m_l < 2^8`) and `R = (31 − shift) − PRE_SHIFT`:
//!
//! `⌊(x·2^12·m + 2^(R+11)) / 2^(R+12)⌋ = ⌊(x·m + 2^(R−1)) / 2^R⌋ = ⌊(A + ⌊x·m_l / 2^8⌋) / 2^(R−8)⌋`,
//! `A = x·m_h + 2^(R−9)`,
//!
//! by `⌊(2^8·A + B)/2^R⌋ = ⌊⌊(2^8·A + B)/2^8⌋/2^(R−8)⌋`. It needs `9 ≤ R ≤ 31`: then
//! `|x·m_h| ≤ 255·(2^23 − 1)` and `2^(R−9) ≤ 2^22` keep `A` (and `A + 255`) inside `i32`. The
//! validated `shift ≤ 8` gives `R ≥ 11`; `R > 31` (a ratio below `2^−12`) takes the reference path
//! for the whole call. Per element this is one `MLA`, one `MUL`, an add with a shifted operand and
//! a shift per term instead of two 64-bit requantizations (`tests/variants.rs` checks every
//! `(a, b)` pair against [`ResidualAdd::add_one`]).

use crate::error::check_len;
use crate::requant::Requant;
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
    #[inline(never)] // load-time check: one copy, not inlined into each caller
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

    /// The two terms in their 32-bit form, if both ratios are in its range (module docs).
    #[inline]
    fn fast_terms(&self) -> Option<(Term, Term)> {
        Some((
            Term::new(self.a_scale, self.a_zero_point)?,
            Term::new(self.b_scale, self.b_zero_point)?,
        ))
    }

    /// `out[i] = a[i] ⊕ b[i]`: the native entry of [`RESIDUAL_VARIANTS`] where it takes the
    /// parameters, else the reference [`Self::add_one`] per element.
    pub fn run(&self, a: &[i8], b: &[i8], out: &mut [i8]) -> Result<(), Error> {
        check_len("residual b", a.len(), b.len())?;
        check_len("residual output", a.len(), out.len())?;
        if !NATIVE_RUN(self, a, b, out) {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = self.add_one(x, y);
            }
        }
        Ok(())
    }

    /// `acc[i] = acc[i] ⊕ b[i]` in place (the residual stream is `a`): the native entry of
    /// [`RESIDUAL_VARIANTS`] where it takes the parameters, else [`Self::run_in_place_generic`].
    pub fn run_in_place(&self, acc: &mut [i8], b: &[i8]) -> Result<(), Error> {
        check_len("residual b", acc.len(), b.len())?;
        if !NATIVE_RUN_IN_PLACE(self, acc, b) {
            self.run_in_place_generic(acc, b)?;
        }
        Ok(())
    }

    /// The 32-bit form (module docs) out of place; `false` (nothing written) outside its
    /// range. Lengths as the dispatcher checked them (else the common length).
    #[inline(always)]
    fn run_term32(&self, a: &[i8], b: &[i8], out: &mut [i8]) -> bool {
        let Some((ta, tb)) = self.fast_terms() else {
            return false;
        };
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = self.combine(ta.apply(x), tb.apply(y));
        }
        true
    }

    /// [`Self::run_term32`] in place.
    #[inline(always)]
    fn run_in_place_term32(&self, acc: &mut [i8], b: &[i8]) -> bool {
        let Some((ta, tb)) = self.fast_terms() else {
            return false;
        };
        for (x, &y) in acc.iter_mut().zip(b) {
            *x = self.combine(ta.apply(*x), tb.apply(y));
        }
        true
    }

    /// [`Self::run_in_place`] with the reference [`Self::add_one`] per element (the variant the
    /// fast path is tested against).
    pub fn run_in_place_generic(&self, acc: &mut [i8], b: &[i8]) -> Result<(), Error> {
        check_len("residual b", acc.len(), b.len())?;
        for (x, &y) in acc.iter_mut().zip(b) {
            *x = self.add_one(*x, y);
        }
        Ok(())
    }

    /// Sum two terms (each `< 2^28`), round away the [`PRE_SHIFT`] bits, add the zero point.
    #[inline(always)]
    fn combine(&self, ta: i32, tb: i32) -> i8 {
        let sum = (ta + tb + (1 << (PRE_SHIFT - 1))) >> PRE_SHIFT;
        (sum + self.output_zero_point).clamp(-128, 127) as i8
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

/// A residual-add kernel out of place: `out[i] = a[i] ⊕ b[i]` over the common length;
/// `false` (nothing written) if it does not take these parameters.
pub type ResidualFn = fn(&ResidualAdd, &[i8], &[i8], &mut [i8]) -> bool;

/// The same kernel in place: `acc[i] = acc[i] ⊕ b[i]`; `false` (nothing written) if it does
/// not take these parameters.
pub type ResidualInPlaceFn = fn(&ResidualAdd, &mut [i8], &[i8]) -> bool;

/// One registered residual-add kernel, in both forms.
#[derive(Clone, Copy)]
pub struct ResidualVariant {
    /// Name, as the tests report it.
    pub name: &'static str,
    /// Out of place.
    pub run: ResidualFn,
    /// In place.
    pub run_in_place: ResidualInPlaceFn,
    /// Whether the dispatchers run this entry (exactly one).
    pub native: bool,
}

/// Every residual-add kernel, each of which must give the reference
/// [`ResidualAdd::add_one`]'s bits for every `(a, b)` where it takes the parameters: the
/// dispatchers ([`ResidualAdd::run`], [`ResidualAdd::run_in_place`], and through it
/// [`ResidualAdd::run_broadcast`]) run the `native` entry and the reference where it declines;
/// `tests/elementwise_variants.rs` runs every entry: a kernel is dispatched to only if it is
/// registered here, and then it is tested. `term32`: the 32-bit form of the module docs.
pub const RESIDUAL_VARIANTS: &[ResidualVariant] = &[ResidualVariant {
    name: "term32",
    run: ResidualAdd::run_term32,
    run_in_place: ResidualAdd::run_in_place_term32,
    native: true,
}];

/// The native entry of [`RESIDUAL_VARIANTS`]; fails the build unless exactly one is native.
const NATIVE: ResidualVariant = crate::norm::native_entry!(
    RESIDUAL_VARIANTS,
    "residual",
    |v| v.native,
    *v,
    ResidualVariant
);

/// [`ResidualAdd::run`]'s kernel (a constant function: a direct call, inlined).
const NATIVE_RUN: ResidualFn = NATIVE.run;

/// [`ResidualAdd::run_in_place`]'s kernel.
const NATIVE_RUN_IN_PLACE: ResidualInPlaceFn = NATIVE.run_in_place;

/// One input's term `Requant::apply((v − z) << PRE_SHIFT)` in 32-bit arithmetic (module docs).
#[derive(Debug, Clone, Copy)]
struct Term {
    zero_point: i32,
    m_hi: i32,
    m_lo: i32,
    round: i32,
    shift: u32,
}

impl Term {
    /// `None` outside `9 ≤ R ≤ 31` (or for an invalid pair), where the reference path is used.
    #[inline]
    fn new(r: Requant, zero_point: i32) -> Option<Self> {
        let right = 31 - r.shift as i32;
        let big_r = right - PRE_SHIFT as i32;
        if r.multiplier < 0 || !(9..=31).contains(&big_r) || !(-128..=127).contains(&zero_point) {
            return None;
        }
        Some(Term {
            zero_point,
            m_hi: r.multiplier >> 8,
            m_lo: r.multiplier & 0xff,
            round: 1 << (big_r - 9),
            shift: (big_r - 8) as u32,
        })
    }

    #[inline(always)]
    fn apply(self, v: i8) -> i32 {
        let x = v as i32 - self.zero_point;
        (x * self.m_hi + self.round + ((x * self.m_lo) >> 8)) >> self.shift
    }
}
