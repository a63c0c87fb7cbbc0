//! Optimized inner loops: Cortex-M DSP-extension kernels (`SMLAD` / `SXTB16`, in `asm!`) and
//! their portable counterparts. The only module of the crate allowed `unsafe`.
//!
//! Every kernel here computes exactly the same bits as the generic reference code in
//! [`crate::linear`], [`crate::attention`] and [`crate::softmax`]: integer additions wrap and are
//! associative, so a different order of the same products gives the same sum, and the fast
//! requantization below is proved equal to [`Requant::apply`] on its domain (and falls back to
//! it elsewhere). `tests/variants.rs` runs one suite against every variant.
//!
//! # Linear layer on the DSP extension (`cfg(core_attn_dsp)`: Cortex-M4/M7/M33/M55)
//! Two output rows × two tokens at a time. Both tokens' inputs are sign-extended once per token
//! pair into a buffer of 16-bit pairs, interleaved per 4-input chunk
//! `[x0|x2, x1|x3 of token t, x0|x2, x1|x3 of token t+1]`, so one `LDM` fetches all four words.
//! Each weight word (4 int8 of one row, row-major as stored in the blob: rows `r` and `r+1`
//! are addressed with an immediate offset of `in_features`) is sign-extended with two
//! `SXTB16` and used by four `SMLAD`s (two per token). Per 16 MACs: 1 `LDM` + 2 `LDR` +
//! 4 `SXTB16` + 8 `SMLAD` = 15 instructions, fully unrolled for the supported widths (no loop
//! counter: the 12 registers `asm!` may use are all taken). An odd last token uses a
//! 4-rows × 1-token kernel (21 instructions per 16 MACs). Widths other than
//! [`DSP_WIDTHS`] use the portable kernel.
//!
//! Weights therefore need no pack-time reordering and the blob format is unchanged.
//!
//! # Softmax and attention (`dsp/softmax.rs`)
//! The exponential pass of the softmax (index by `SMMULR`, two table reads, `MLA` rounding),
//! the row maximum and the probability pass (`UMULL`) in `asm!`, and the instruction helpers
//! the packed attention kernel (`Attention::run_packed`: `SMLAD` on probability pairs × packed
//! V) uses, with portable fallbacks so that the same algorithm runs on the host.

use crate::linear::Linear;
use crate::quant::Requant;

pub(crate) mod softmax;

/// `SXTB16`: sign-extend bytes 0 and 2 of `x` into the two halfwords of the result.
#[inline(always)]
pub fn sxtb16(x: u32) -> u32 {
    (x as i8 as i16 as u16 as u32) | (((x >> 16) as i8 as i16 as u16 as u32) << 16)
}

/// `SXTB16 x, ROR #8`: sign-extend bytes 1 and 3.
#[inline(always)]
pub fn sxtb16_ror8(x: u32) -> u32 {
    sxtb16(x.rotate_right(8))
}

/// `SMLAD`: `acc + lo(a)·lo(b) + hi(a)·hi(b)` with signed 16-bit halves, wrapping (the
/// instruction sets the Q flag on overflow and returns the wrapped sum).
#[inline(always)]
pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let p0 = (a as u16 as i16 as i32) * (b as u16 as i16 as i32);
    let p1 = ((a >> 16) as u16 as i16 as i32) * ((b >> 16) as u16 as i16 as i32);
    acc.wrapping_add(p0).wrapping_add(p1)
}

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

/// Int8 dot product with i32 accumulation, equal to [`crate::linear::dot_i8`]: with the DSP
/// extension 4 products per 2 `SMLAD` (both operands sign-extended with `SXTB16`), elsewhere the
/// generic loop.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(core_attn_dsp)]
    {
        let n = a.len().min(b.len());
        let mut acc = 0i32;
        let (ac, bc) = (a[..n].chunks_exact(4), b[..n].chunks_exact(4));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            let x = u32::from_le_bytes([x[0] as u8, x[1] as u8, x[2] as u8, x[3] as u8]);
            let y = u32::from_le_bytes([y[0] as u8, y[1] as u8, y[2] as u8, y[3] as u8]);
            acc = arm::smlad(arm::sxtb16(x), arm::sxtb16(y), acc);
            acc = arm::smlad(arm::sxtb16_ror8(x), arm::sxtb16_ror8(y), acc);
        }
        acc.wrapping_add(crate::linear::dot_i8(ar, br))
    }
    #[cfg(not(core_attn_dsp))]
    {
        crate::linear::dot_i8(a, b)
    }
}

/// Input widths with an unrolled DSP linear kernel.
pub const DSP_WIDTHS: [usize; 4] = [16, 32, 64, 128];

/// Largest input width of the DSP kernels (size of the sign-extended input buffer).
const MAX_DSP_WIDTH: usize = 128;

/// Linear layer without activation, `rows` tokens: `output[t][o] = requant(bias + x·w)`.
/// Shapes are checked by the caller. Uses the DSP kernel where the target has it and the width
/// is one of [`DSP_WIDTHS`], else [`linear_portable`].
pub fn linear(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    #[cfg(core_attn_dsp)]
    {
        if arm::linear(l, input, output, rows) {
            return;
        }
    }
    linear_portable(l, input, output, rows)
}

/// Portable blocked linear kernel (2 output rows × 2 tokens per step, each loaded input and
/// weight used twice): plain Rust for targets without the DSP extension (Cortex-M0, host).
pub fn linear_portable(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    let (inf, outf) = (l.in_features, l.out_features);
    let zp = l.output_zero_point;
    let rq =
        |o: usize, acc: i32| requant_i8(acc, l.requant.multipliers[o], l.requant.shifts[o], zp);
    let mut t = 0;
    while t + 2 <= rows {
        let x0 = &input[t * inf..(t + 1) * inf];
        let x1 = &input[(t + 1) * inf..(t + 2) * inf];
        let mut o = 0;
        while o + 2 <= outf {
            let w0 = &l.weights[o * inf..(o + 1) * inf];
            let w1 = &l.weights[(o + 1) * inf..(o + 2) * inf];
            let (mut a00, mut a01, mut a10, mut a11) =
                (l.bias[o], l.bias[o], l.bias[o + 1], l.bias[o + 1]);
            for i in 0..inf {
                let (p, q) = (x0[i] as i32, x1[i] as i32);
                let (u, v) = (w0[i] as i32, w1[i] as i32);
                a00 = a00.wrapping_add(p * u);
                a01 = a01.wrapping_add(q * u);
                a10 = a10.wrapping_add(p * v);
                a11 = a11.wrapping_add(q * v);
            }
            output[t * outf + o] = rq(o, a00);
            output[(t + 1) * outf + o] = rq(o, a01);
            output[t * outf + o + 1] = rq(o + 1, a10);
            output[(t + 1) * outf + o + 1] = rq(o + 1, a11);
            o += 2;
        }
        if o < outf {
            for (tt, x) in [(t, x0), (t + 1, x1)] {
                let acc = l.bias[o].wrapping_add(crate::linear::dot_i8(x, &l.weights[o * inf..]));
                output[tt * outf + o] = rq(o, acc);
            }
        }
        t += 2;
    }
    if t < rows {
        let x = &input[t * inf..(t + 1) * inf];
        for o in 0..outf {
            let acc = l.bias[o]
                .wrapping_add(crate::linear::dot_i8(x, &l.weights[o * inf..(o + 1) * inf]));
            output[t * outf + o] = rq(o, acc);
        }
    }
}

/// The DSP linear algorithm with the instructions emulated ([`sxtb16`], [`smlad`]): same
/// buffer layout, blocking and requantization as the `asm!` kernel, runnable on any host so
/// that the suite in `tests/variants.rs` checks the algorithm where the `asm!` cannot run.
/// Returns `false` (doing nothing) for widths the DSP kernel does not handle.
pub fn linear_dsp_emulated(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    let (inf, outf) = (l.in_features, l.out_features);
    if !DSP_WIDTHS.contains(&inf) {
        return false;
    }
    let zp = l.output_zero_point;
    let mut xbuf = [0u32; MAX_DSP_WIDTH];
    let word = |s: &[i8], c: usize| {
        u32::from_le_bytes([
            s[4 * c] as u8,
            s[4 * c + 1] as u8,
            s[4 * c + 2] as u8,
            s[4 * c + 3] as u8,
        ])
    };
    let mut t = 0;
    while t < rows {
        let pair = t + 2 <= rows;
        let x0 = &input[t * inf..(t + 1) * inf];
        let x1 = if pair {
            &input[(t + 1) * inf..(t + 2) * inf]
        } else {
            x0
        };
        extend_pair(x0, x1, &mut xbuf[..inf]);
        if pair {
            let mut o = 0;
            while o + 2 <= outf {
                let mut a = [l.bias[o], l.bias[o], l.bias[o + 1], l.bias[o + 1]];
                for c in 0..inf / 4 {
                    let x = &xbuf[4 * c..4 * c + 4];
                    for (r, pair_acc) in [(0usize, 0usize), (1, 2)] {
                        let w = word(&l.weights[(o + r) * inf..], c);
                        let (we, wo) = (sxtb16(w), sxtb16_ror8(w));
                        a[pair_acc] = smlad(x[1], wo, smlad(x[0], we, a[pair_acc]));
                        a[pair_acc + 1] = smlad(x[3], wo, smlad(x[2], we, a[pair_acc + 1]));
                    }
                }
                store2x2(l, output, t, o, a, zp);
                o += 2;
            }
            if o < outf {
                tail_row(l, input, output, t, o, zp);
                tail_row(l, input, output, t + 1, o, zp);
            }
            t += 2;
        } else {
            let mut o = 0;
            while o + 4 <= outf {
                let mut a = [l.bias[o], l.bias[o + 1], l.bias[o + 2], l.bias[o + 3]];
                for c in 0..inf / 4 {
                    let x = &xbuf[4 * c..4 * c + 4];
                    for (r, acc) in a.iter_mut().enumerate() {
                        let w = word(&l.weights[(o + r) * inf..], c);
                        *acc = smlad(x[1], sxtb16_ror8(w), smlad(x[0], sxtb16(w), *acc));
                    }
                }
                for (r, &acc) in a.iter().enumerate() {
                    output[t * outf + o + r] = requant_i8(
                        acc,
                        l.requant.multipliers[o + r],
                        l.requant.shifts[o + r],
                        zp,
                    );
                }
                o += 4;
            }
            while o < outf {
                tail_row(l, input, output, t, o, zp);
                o += 1;
            }
            t += 1;
        }
    }
    true
}

/// Sign-extend two tokens' inputs into the interleaved 16-bit pair layout.
#[inline(always)]
fn extend_pair(x0: &[i8], x1: &[i8], buf: &mut [u32]) {
    for ((dst, a), b) in buf
        .chunks_exact_mut(4)
        .zip(x0.chunks_exact(4))
        .zip(x1.chunks_exact(4))
    {
        let wa = u32::from_le_bytes([a[0] as u8, a[1] as u8, a[2] as u8, a[3] as u8]);
        let wb = u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]);
        dst[0] = sxtb16(wa);
        dst[1] = sxtb16_ror8(wa);
        dst[2] = sxtb16(wb);
        dst[3] = sxtb16_ror8(wb);
    }
}

#[inline(always)]
fn store2x2(l: &Linear<'_>, output: &mut [i8], t: usize, o: usize, a: [i32; 4], zp: i32) {
    let outf = l.out_features;
    let (m0, s0) = (l.requant.multipliers[o], l.requant.shifts[o]);
    let (m1, s1) = (l.requant.multipliers[o + 1], l.requant.shifts[o + 1]);
    output[t * outf + o] = requant_i8(a[0], m0, s0, zp);
    output[(t + 1) * outf + o] = requant_i8(a[1], m0, s0, zp);
    output[t * outf + o + 1] = requant_i8(a[2], m1, s1, zp);
    output[(t + 1) * outf + o + 1] = requant_i8(a[3], m1, s1, zp);
}

#[inline(never)]
fn tail_row(l: &Linear<'_>, input: &[i8], output: &mut [i8], t: usize, o: usize, zp: i32) {
    let inf = l.in_features;
    let acc = l.bias[o].wrapping_add(crate::linear::dot_i8(
        &input[t * inf..(t + 1) * inf],
        &l.weights[o * inf..(o + 1) * inf],
    ));
    output[t * l.out_features + o] =
        requant_i8(acc, l.requant.multipliers[o], l.requant.shifts[o], zp);
}

/// The `asm!` kernels (Armv7E-M / Armv8-M Mainline with the DSP extension).
#[cfg(core_attn_dsp)]
mod arm {
    use super::*;
    use core::arch::asm;

    /// One `SMLAD` instruction.
    #[inline(always)]
    pub(super) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let r: i32;
        // SAFETY: a pure register operation.
        unsafe {
            asm!("smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
                 c = in(reg) acc, options(pure, nomem, nostack, preserves_flags));
        }
        r
    }

    /// One `SXTB16` instruction.
    #[inline(always)]
    pub(super) fn sxtb16(x: u32) -> u32 {
        let r: u32;
        // SAFETY: a pure register operation.
        unsafe {
            asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
                 options(pure, nomem, nostack, preserves_flags));
        }
        r
    }

    /// One `SXTB16 …, ROR #8` instruction.
    #[inline(always)]
    pub(super) fn sxtb16_ror8(x: u32) -> u32 {
        let r: u32;
        // SAFETY: a pure register operation.
        unsafe {
            asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
                 options(pure, nomem, nostack, preserves_flags));
        }
        r
    }

    /// 2 rows × 2 tokens, `IN` inputs, fully unrolled. `xbuf`: `IN` words (see the module docs);
    /// `w`: row `o` of `IN` bytes followed by row `o + 1`.
    ///
    /// # Safety
    /// `xbuf` must be valid for reading `IN` aligned words and `w` for reading `2·IN` bytes.
    #[inline(always)]
    unsafe fn block_2x2<const IN: usize>(xbuf: *const u32, w: *const i8, acc: &mut [i32; 4]) {
        let [mut a0, mut a1, mut a2, mut a3] = *acc;
        // SAFETY: the caller guarantees `xbuf` (IN words, 4 per chunk, read with LDM) and `w`
        // (2·IN bytes: row 0 read with post-increment, row 1 at offset IN−4 after it) are
        // readable; unaligned LDR is allowed on these cores. Only the listed registers are
        // written; no stack use.
        unsafe {
            asm!(
                ".rept {n}",
                "ldm {x}!, {{r4, r5, r8, r9}}",
                "ldr {t0}, [{w}], #4",
                "sxtb16 {t1}, {t0}",
                "sxtb16 {t0}, {t0}, ror #8",
                "smlad {a0}, r4, {t1}, {a0}",
                "smlad {a0}, r5, {t0}, {a0}",
                "smlad {a1}, r8, {t1}, {a1}",
                "smlad {a1}, r9, {t0}, {a1}",
                "ldr {t0}, [{w}, #{off}]",
                "sxtb16 {t1}, {t0}",
                "sxtb16 {t0}, {t0}, ror #8",
                "smlad {a2}, r4, {t1}, {a2}",
                "smlad {a2}, r5, {t0}, {a2}",
                "smlad {a3}, r8, {t1}, {a3}",
                "smlad {a3}, r9, {t0}, {a3}",
                ".endr",
                n = const IN / 4,
                off = const IN - 4,
                x = inout(reg) xbuf => _,
                w = inout(reg) w => _,
                t0 = out(reg) _,
                t1 = out(reg) _,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                options(nostack, readonly, preserves_flags),
            );
        }
        *acc = [a0, a1, a2, a3];
    }

    /// State of one pass of [`pass_2x2`] over all row pairs of a token pair (read and updated by
    /// the `asm!` through a pointer kept on the stack: every register is in use).
    #[repr(C)]
    struct Pass {
        xbuf: *const u32,
        bias: *const i32,
        mult: *const i32,
        shift: *const i8,
        y0: *mut i8,
        y1: *mut i8,
        zp: i32,
        end_w: *const i8,
    }

    /// Every row pair of tokens `t`, `t + 1`: bias, 2 × 2 dot products (as [`block_2x2`]) and
    /// the fast requantization ([`RowRequant`]: `SMMLA` + `ASR`, `QADD` of the zero point,
    /// `SSAT #8`), all in one `asm!` loop so nothing is spilled around each block.
    ///
    /// # Safety
    /// `p.xbuf`: `IN` aligned words; `w .. p.end_w`: whole row pairs of `IN`-byte rows; `p.bias`
    /// and `p.mult`: 4-byte aligned, one entry per row; `p.shift`: one per row, each in
    /// `-31..=-2` (right shift 33..=62); `p.y0`, `p.y1`: one byte per row, writable.
    #[inline(always)]
    unsafe fn pass_2x2<const IN: usize>(p: &mut Pass, w: *const i8) {
        // SAFETY: see the function's contract; the state pointer is pushed and popped, the
        // stack is balanced on exit, and every register written is declared.
        unsafe {
            asm!(
                "push {{r0}}",
                "2:",
                "ldr r10, [sp]",
                "ldr lr, [r10, #0]",
                "ldr r11, [r10, #4]",
                "ldrd r0, r2, [r11], #8",
                "str r11, [r10, #4]",
                "mov r1, r0",
                "mov r3, r2",
                ".rept {n}",
                "ldm lr!, {{r4, r5, r8, r9}}",
                "ldr r10, [r12], #4",
                "sxtb16 r11, r10",
                "sxtb16 r10, r10, ror #8",
                "smlad r0, r4, r11, r0",
                "smlad r0, r5, r10, r0",
                "smlad r1, r8, r11, r1",
                "smlad r1, r9, r10, r1",
                "ldr r10, [r12, #{off}]",
                "sxtb16 r11, r10",
                "sxtb16 r10, r10, ror #8",
                "smlad r2, r4, r11, r2",
                "smlad r2, r5, r10, r2",
                "smlad r3, r8, r11, r3",
                "smlad r3, r9, r10, r3",
                ".endr",
                "add r12, r12, #{inf}",
                "ldr r10, [sp]",
                "ldr r11, [r10, #8]",
                "ldrd r4, r5, [r11], #8",
                "str r11, [r10, #8]",
                "ldr r11, [r10, #12]",
                "ldrsb r8, [r11], #1",
                "ldrsb r9, [r11], #1",
                "str r11, [r10, #12]",
                "mvn r8, r8",
                "mvn r9, r9",
                "mov lr, #1",
                "lsl r11, lr, r8",
                "lsr r11, r11, #1",
                "smmla r0, r0, r4, r11",
                "smmla r1, r1, r4, r11",
                "asr r0, r0, r8",
                "asr r1, r1, r8",
                "lsl r11, lr, r9",
                "lsr r11, r11, #1",
                "smmla r2, r2, r5, r11",
                "smmla r3, r3, r5, r11",
                "asr r2, r2, r9",
                "asr r3, r3, r9",
                "ldr lr, [r10, #24]",
                "qadd r0, r0, lr",
                "qadd r1, r1, lr",
                "qadd r2, r2, lr",
                "qadd r3, r3, lr",
                "ssat r0, #8, r0",
                "ssat r1, #8, r1",
                "ssat r2, #8, r2",
                "ssat r3, #8, r3",
                "ldr r11, [r10, #16]",
                "strb r0, [r11], #1",
                "strb r2, [r11], #1",
                "str r11, [r10, #16]",
                "ldr r11, [r10, #20]",
                "strb r1, [r11], #1",
                "strb r3, [r11], #1",
                "str r11, [r10, #20]",
                "ldr r11, [r10, #28]",
                "cmp r12, r11",
                "bne 2b",
                "add sp, sp, #4",
                n = const IN / 4,
                off = const IN - 4,
                inf = const IN,
                inout("r0") p as *mut Pass => _,
                out("r1") _,
                out("r2") _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                inout("r12") w => _,
                out("lr") _,
            );
        }
    }

    /// State of one pass of [`pass_4x1`] (one token, every block of 4 rows).
    #[repr(C)]
    struct Pass1 {
        xbuf: *const u32,
        bias: *const i32,
        mult: *const i32,
        shift: *const i8,
        y: *mut i8,
        zp: i32,
        end_w: *const i8,
    }

    /// Every block of 4 rows for one token (token 0 of the interleaved buffer): bias, 4 dot
    /// products (as [`block_4x1`], with the two row loads of each pair back to back so that they
    /// pipeline) and the fast requantization, in one `asm!` loop.
    ///
    /// # Safety
    /// `p.xbuf`: `IN` aligned words; `w .. p.end_w`: whole blocks of 4 rows of `IN` bytes;
    /// `p.bias`, `p.mult`: 4-byte aligned, one entry per row; `p.shift`: one per row, each in
    /// `-31..=-2`, read 4 at a time with a (possibly unaligned) word load; `p.y`: one writable
    /// byte per row.
    #[inline(always)]
    unsafe fn pass_4x1<const IN: usize>(p: &mut Pass1, w: *const i8) {
        // SAFETY: see the function's contract; the state pointer is pushed and popped (the
        // stack is balanced on exit) and every register written is declared. Unaligned LDR is
        // allowed on Armv7E-M / Armv8-M Mainline (CCR.UNALIGN_TRP is clear by default).
        unsafe {
            asm!(
                "push {{r0}}",
                "2:",
                "ldr r10, [sp]",
                "ldr lr, [r10, #0]",
                "ldr r11, [r10, #4]",
                "ldm r11!, {{r0, r1, r2, r3}}",
                "str r11, [r10, #4]",
                ".rept {n}",
                "ldrd r4, r5, [lr], #16",
                "ldr r10, [r12], #4",
                "ldr r8, [r12, #{o1}]",
                "sxtb16 r11, r10",
                "sxtb16 r10, r10, ror #8",
                "smlad r0, r4, r11, r0",
                "smlad r0, r5, r10, r0",
                "sxtb16 r11, r8",
                "sxtb16 r8, r8, ror #8",
                "smlad r1, r4, r11, r1",
                "smlad r1, r5, r8, r1",
                "ldr r10, [r12, #{o2}]",
                "ldr r8, [r12, #{o3}]",
                "sxtb16 r11, r10",
                "sxtb16 r10, r10, ror #8",
                "smlad r2, r4, r11, r2",
                "smlad r2, r5, r10, r2",
                "sxtb16 r11, r8",
                "sxtb16 r8, r8, ror #8",
                "smlad r3, r4, r11, r3",
                "smlad r3, r5, r8, r3",
                ".endr",
                "add r12, r12, #{skip}",
                "ldr r10, [sp]",
                "ldr r11, [r10, #8]",
                "ldm r11!, {{r4, r5, r8, r9}}",
                "str r11, [r10, #8]",
                "ldr r11, [r10, #12]",
                "ldr lr, [r11], #4",
                "str r11, [r10, #12]",
                // row k: r = ~s_k, acc = (hi(acc·m) + (1 << r >> 1)) >> r
                "sxtb r11, lr",
                "mvn r11, r11",
                "mov r10, #1",
                "lsl r10, r10, r11",
                "lsr r10, r10, #1",
                "smmla r0, r0, r4, r10",
                "asr r0, r0, r11",
                "sxtb r11, lr, ror #8",
                "mvn r11, r11",
                "mov r10, #1",
                "lsl r10, r10, r11",
                "lsr r10, r10, #1",
                "smmla r1, r1, r5, r10",
                "asr r1, r1, r11",
                "sxtb r11, lr, ror #16",
                "mvn r11, r11",
                "mov r10, #1",
                "lsl r10, r10, r11",
                "lsr r10, r10, #1",
                "smmla r2, r2, r8, r10",
                "asr r2, r2, r11",
                "sxtb r11, lr, ror #24",
                "mvn r11, r11",
                "mov r10, #1",
                "lsl r10, r10, r11",
                "lsr r10, r10, #1",
                "smmla r3, r3, r9, r10",
                "asr r3, r3, r11",
                "ldr r10, [sp]",
                "ldr lr, [r10, #20]",
                "qadd r0, r0, lr",
                "qadd r1, r1, lr",
                "qadd r2, r2, lr",
                "qadd r3, r3, lr",
                "ssat r0, #8, r0",
                "ssat r1, #8, r1",
                "ssat r2, #8, r2",
                "ssat r3, #8, r3",
                "ldr r11, [r10, #16]",
                "strb r0, [r11], #1",
                "strb r1, [r11], #1",
                "strb r2, [r11], #1",
                "strb r3, [r11], #1",
                "str r11, [r10, #16]",
                "ldr r11, [r10, #24]",
                "cmp r12, r11",
                "bne 2b",
                "add sp, sp, #4",
                n = const IN / 4,
                o1 = const IN - 4,
                o2 = const 2 * IN - 4,
                o3 = const 3 * IN - 4,
                skip = const 3 * IN,
                inout("r0") p as *mut Pass1 => _,
                out("r1") _,
                out("r2") _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                inout("r12") w => _,
                out("lr") _,
            );
        }
    }

    /// 4 rows × 1 token, `IN` inputs, fully unrolled, reading token 0 of an interleaved buffer.
    ///
    /// # Safety
    /// `xbuf` valid for `IN` aligned words, `w` for `4·IN` bytes.
    #[inline(always)]
    unsafe fn block_4x1<const IN: usize>(xbuf: *const u32, w: *const i8, acc: &mut [i32; 4]) {
        let [mut a0, mut a1, mut a2, mut a3] = *acc;
        // SAFETY: as for `block_2x2`; rows 1..3 are read at offsets k·IN − 4 after the
        // post-incremented row-0 load, all within the 4·IN bytes the caller guarantees.
        unsafe {
            asm!(
                ".rept {n}",
                "ldrd {xe}, {xo}, [{x}], #16",
                "ldr {t0}, [{w}], #4",
                "sxtb16 {t1}, {t0}",
                "sxtb16 {t0}, {t0}, ror #8",
                "smlad {a0}, {xe}, {t1}, {a0}",
                "smlad {a0}, {xo}, {t0}, {a0}",
                "ldr {t0}, [{w}, #{o1}]",
                "sxtb16 {t1}, {t0}",
                "sxtb16 {t0}, {t0}, ror #8",
                "smlad {a1}, {xe}, {t1}, {a1}",
                "smlad {a1}, {xo}, {t0}, {a1}",
                "ldr {t0}, [{w}, #{o2}]",
                "sxtb16 {t1}, {t0}",
                "sxtb16 {t0}, {t0}, ror #8",
                "smlad {a2}, {xe}, {t1}, {a2}",
                "smlad {a2}, {xo}, {t0}, {a2}",
                "ldr {t0}, [{w}, #{o3}]",
                "sxtb16 {t1}, {t0}",
                "sxtb16 {t0}, {t0}, ror #8",
                "smlad {a3}, {xe}, {t1}, {a3}",
                "smlad {a3}, {xo}, {t0}, {a3}",
                ".endr",
                n = const IN / 4,
                o1 = const IN - 4,
                o2 = const 2 * IN - 4,
                o3 = const 3 * IN - 4,
                x = inout(reg) xbuf => _,
                w = inout(reg) w => _,
                xe = out(reg) _,
                xo = out(reg) _,
                t0 = out(reg) _,
                t1 = out(reg) _,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                options(nostack, readonly, preserves_flags),
            );
        }
        *acc = [a0, a1, a2, a3];
    }

    pub(super) fn linear(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        match l.in_features {
            16 => run::<16>(l, input, output, rows),
            32 => run::<32>(l, input, output, rows),
            64 => run::<64>(l, input, output, rows),
            128 => run::<128>(l, input, output, rows),
            _ => return false,
        }
        true
    }

    fn run<const IN: usize>(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) {
        let outf = l.out_features;
        let zp = l.output_zero_point;
        // The kernels read whole rows: check once here what the asm relies on.
        assert!(
            l.weights.len() >= outf * IN && input.len() >= rows * IN && output.len() >= rows * outf
        );
        let mut xbuf = [0u32; IN];
        let w = l.weights.as_ptr();
        // Every channel on the 32-bit requantization path (right shift 33..=62)?
        let fast = l.requant.shifts[..outf]
            .iter()
            .all(|&s| (-31..=-2).contains(&s))
            && l.bias.len() >= outf
            && l.requant.multipliers.len() >= outf;
        let mut t = 0;
        while t < rows {
            let pair = t + 2 <= rows;
            let x0 = &input[t * IN..(t + 1) * IN];
            let x1 = if pair {
                &input[(t + 1) * IN..(t + 2) * IN]
            } else {
                x0
            };
            extend_pair(x0, x1, &mut xbuf);
            if pair {
                let pairs = outf / 2;
                if pairs > 0 && fast {
                    let (y0, y1) = output[t * outf..(t + 2) * outf].split_at_mut(outf);
                    let mut p = Pass {
                        xbuf: xbuf.as_ptr(),
                        bias: l.bias.as_ptr(),
                        mult: l.requant.multipliers.as_ptr(),
                        shift: l.requant.shifts.as_ptr(),
                        y0: y0.as_mut_ptr(),
                        y1: y1.as_mut_ptr(),
                        zp,
                        // SAFETY: within `weights` (2·pairs ≤ outf rows of IN bytes).
                        end_w: unsafe { w.add(2 * pairs * IN) },
                    };
                    // SAFETY: `xbuf` holds IN aligned words; rows 0..2·pairs of IN bytes are in
                    // `weights`; bias/multipliers are i32 slices with ≥ outf entries, shifts
                    // have ≥ outf entries all in -31..=-2 (`fast`); y0/y1 are rows t, t+1 of
                    // `output`, outf bytes each.
                    unsafe { pass_2x2::<IN>(&mut p, w) };
                } else {
                    let (y0, y1) = output[t * outf..(t + 2) * outf].split_at_mut(outf);
                    let blocks = y0
                        .chunks_exact_mut(2)
                        .zip(y1.chunks_exact_mut(2))
                        .zip(l.bias.chunks_exact(2))
                        .zip(l.requant.multipliers.chunks_exact(2))
                        .zip(l.requant.shifts.chunks_exact(2));
                    for (p, ((((y0, y1), b), m), s)) in blocks.enumerate() {
                        let mut a = [b[0], b[0], b[1], b[1]];
                        // SAFETY: `xbuf` holds IN words; rows 2p and 2p+1 lie within `weights`
                        // (2p + 2 ≤ outf, weights.len() ≥ outf·IN, asserted above).
                        unsafe { block_2x2::<IN>(xbuf.as_ptr(), w.add(2 * p * IN), &mut a) };
                        let (r0, r1) = (RowRequant::new(m[0], s[0]), RowRequant::new(m[1], s[1]));
                        y0[0] = r0.to_i8(a[0], zp);
                        y1[0] = r0.to_i8(a[1], zp);
                        y0[1] = r1.to_i8(a[2], zp);
                        y1[1] = r1.to_i8(a[3], zp);
                    }
                }
                let o = outf & !1;
                if o < outf {
                    tail_row(l, input, output, t, o, zp);
                    tail_row(l, input, output, t + 1, o, zp);
                }
                t += 2;
            } else {
                let mut o = 0;
                let blocks = outf / 4;
                if blocks > 0 && fast {
                    let mut p = Pass1 {
                        xbuf: xbuf.as_ptr(),
                        bias: l.bias.as_ptr(),
                        mult: l.requant.multipliers.as_ptr(),
                        shift: l.requant.shifts.as_ptr(),
                        y: output[t * outf..(t + 1) * outf].as_mut_ptr(),
                        zp,
                        // SAFETY: within `weights` (4·blocks ≤ outf rows of IN bytes).
                        end_w: unsafe { w.add(4 * blocks * IN) },
                    };
                    // SAFETY: `xbuf` holds IN aligned words; rows 0..4·blocks of IN bytes are in
                    // `weights`; bias/multipliers are i32 slices and shifts an i8 slice, each
                    // with ≥ outf entries (shifts all in -31..=-2: `fast`); `y` is row t of
                    // `output` (outf bytes).
                    unsafe { pass_4x1::<IN>(&mut p, w) };
                    o = 4 * blocks;
                }
                while o + 4 <= outf {
                    let mut a = [l.bias[o], l.bias[o + 1], l.bias[o + 2], l.bias[o + 3]];
                    // SAFETY: rows o..o+4 lie within `weights` (o + 4 ≤ outf).
                    unsafe { block_4x1::<IN>(xbuf.as_ptr(), w.add(o * IN), &mut a) };
                    for (r, &acc) in a.iter().enumerate() {
                        output[t * outf + o + r] = requant_i8(
                            acc,
                            l.requant.multipliers[o + r],
                            l.requant.shifts[o + r],
                            zp,
                        );
                    }
                    o += 4;
                }
                while o < outf {
                    tail_row(l, input, output, t, o, zp);
                    o += 1;
                }
                t += 1;
            }
        }
    }
}
