//! Requantization as the kernels apply it: [`RowRequant`] (one channel prepared once, the
//! 32-bit form of [`Requant::to_i8`]), [`requant_asm_form`] (the four instructions of the
//! `asm!` kernels) and the check that a layer qualifies for it ([`requant_ok`]). Plain slices
//! and scalars only.

use super::LinearArgs;
use crate::requant::Requant;

/// [`Requant::to_i8`] with the common case done in 32 bits (see [`RowRequant`]).
#[inline(always)]
pub fn requant_i8(acc: i32, multiplier: i32, shift: i8, zero_point: i32) -> i8 {
    RowRequant::new(multiplier, shift).to_i8(acc, zero_point)
}

/// One output channel's requantization, prepared once and applied to several accumulators.
///
/// With `right = 31 − shift ≥ 33` and `hi = ⌊acc·m / 2^32⌋` (one `SMMUL`):
/// `⌊(acc·m + 2^(right−1)) / 2^right⌋ = ⌊(hi + 2^(right−33)) / 2^(right−32)⌋`, because
/// `2^(right−1)` is a multiple of `2^32` and `⌊⌊y/a⌋/b⌋ = ⌊y/(ab)⌋`. As `|hi| ≤ 2^30`, neither
/// the add nor the result can overflow, so [`Requant::apply`]'s saturation never triggers.
/// Other shifts take the 64-bit reference path.
#[derive(Debug, Clone, Copy)]
pub struct RowRequant {
    multiplier: i32,
    shift: i8,
    right: u32,
    round: i32,
    fast: bool,
}

impl RowRequant {
    /// Prepare channel `(multiplier, shift)`.
    #[inline(always)]
    pub fn new(multiplier: i32, shift: i8) -> Self {
        let right = 31 - shift as i32;
        let fast = (33..=62).contains(&right);
        let r = if fast { (right - 32) as u32 } else { 1 };
        RowRequant {
            multiplier,
            shift,
            right: r,
            round: 1 << (r - 1),
            fast,
        }
    }

    /// Equal to `Requant { multiplier, shift }.to_i8(acc, zero_point)`.
    #[inline(always)]
    pub fn to_i8(self, acc: i32, zero_point: i32) -> i8 {
        if self.fast {
            let hi = ((acc as i64 * self.multiplier as i64) >> 32) as i32;
            ((hi + self.round) >> self.right)
                .saturating_add(zero_point)
                .clamp(-128, 127) as i8
        } else {
            slow_to_i8(acc, self.multiplier, self.shift, zero_point)
        }
    }
}

#[cold]
#[inline(never)]
fn slow_to_i8(acc: i32, multiplier: i32, shift: i8, zero_point: i32) -> i8 {
    Requant { multiplier, shift }.to_i8(acc, zero_point)
}

/// Whether every output channel of `l` can use the `asm!` kernels' requantization
/// ([`requant_asm_form`]): right shift `31 − shift` in `33..=62` and an output zero point in
/// `-128..=127` (both always true for layers the packer writes; others take the portable path).
pub(crate) fn requant_ok(l: &LinearArgs<'_>) -> bool {
    let outf = l.out_features;
    if l.shifts.len() < outf
        || l.multipliers.len() < outf
        || l.bias.len() < outf
        || !(-128..=127).contains(&l.output_zero_point)
    {
        return false;
    }
    // Four shifts per word (SWAR), four words per step (LLVM does not unroll around `asm!`).
    let word = |c: &[i8]| u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
    let blocks = l.shifts[..outf].chunks_exact(16);
    let tail = blocks.remainder();
    let mut bad = 0u32;
    for c in blocks {
        bad |= shifts_out_of_range(word(&c[..4]))
            | shifts_out_of_range(word(&c[4..8]))
            | shifts_out_of_range(word(&c[8..12]))
            | shifts_out_of_range(word(&c[12..]));
    }
    let chunks = tail.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        bad |= shifts_out_of_range(word(c));
    }
    bad == 0 && rest.iter().all(|&s| (-31..=-2).contains(&s))
}

/// Nonzero iff some byte of `w` (4 shifts) is outside `-31..=-2`: per byte `(u + 31) mod 256`
/// must be at most 29 (`UADD8`, `UQSUB8` where the target has them, else carry-free SWAR).
#[inline(always)]
fn shifts_out_of_range(w: u32) -> u32 {
    #[cfg(any(core_attn_dsp, core_attn_mve))]
    {
        super::intrinsics::simd8::uqsub8(
            super::intrinsics::simd8::uadd8(w, 0x1f1f_1f1f),
            0x1d1d_1d1d,
        )
    }
    #[cfg(not(any(core_attn_dsp, core_attn_mve)))]
    {
        // Per-byte `u + 31` without carries between bytes, then per-byte `y ≥ 30` in bit 7.
        let y = ((w & 0x7f7f_7f7f) + 0x1f1f_1f1f) ^ (w & 0x8080_8080);
        (y | ((y & 0x7f7f_7f7f) + 0x6262_6262)) & 0x8080_8080
    }
}

/// The requantization exactly as the `asm!` kernels compute it, four single-cycle instructions
/// per output: `SMMUL` (`hi = ⌊acc·m / 2^32⌋`), `ASR` by `s₁ = −2 − shift` (a register shift:
/// `RSB s₁, shift, #254` gives it in the low byte, which is all `ASR` reads), `ADD` of
/// `c = 2·zp + 1`, `SSAT #8, …, ASR #1`.
///
/// Equal to [`Requant::to_i8`] when `shift ∈ -31..=-2` and `zero_point ∈ -128..=127`
/// ([`asm_requant_ok`]): with `r = −1 − shift ∈ 1..=30`, [`RowRequant`] computes
/// `⌊(hi + 2^(r−1)) / 2^r⌋ + zp`, and `⌊(hi + 2^(r−1)) / 2^r⌋ = ⌊(⌊hi / 2^(r−1)⌋ + 1) / 2⌋`
/// (`⌊⌊y⌋/2⌋ = ⌊y/2⌋`), so adding `zp` inside gives `⌊(⌊hi / 2^s₁⌋ + 2·zp + 1) / 2⌋`; `|hi| ≤ 2^30`,
/// so nothing overflows and the final clamp is the `SSAT`.
#[inline(always)]
#[doc(hidden)] // test hook, not part of the public API
pub fn requant_asm_form(acc: i32, multiplier: i32, shift: i8, zero_point: i32) -> i8 {
    let hi = ((acc as i64 * multiplier as i64) >> 32) as i32;
    let s1 = (254i32 - shift as i32) as u8 as u32; // low byte of `RSB s1, shift, #254`
    let v = (if s1 >= 32 { hi >> 31 } else { hi >> s1 }).wrapping_add(2 * zero_point + 1);
    (v >> 1).clamp(-128, 127) as i8
}
