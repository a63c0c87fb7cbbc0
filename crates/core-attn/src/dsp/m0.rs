//! Linear layer for Armv6-M (Cortex-M0/M0+): no DSP extension, no `SMULL`, only 8 low
//! registers for most instructions, and `LDRSB` with register-offset addressing only.
//!
//! # Kernel
//! One token × 4 output rows at a time. Each input byte is loaded once (`LDRSB`) and used by
//! the 4 rows; per row `LDRSB` (weight), `MULS`, `ADD` into an accumulator kept in a high
//! register (`r8`–`r11`: `ADD` is the one arithmetic instruction that reaches them). All five
//! streams (input and 4 weight rows, row-major as stored in the blob) are addressed as
//! `[base, i]` with one shared index `i` that runs from `−n` up to 0, so its `ADDS` also sets
//! the flag that ends the loop: per input 1 + 4·3 + 1 = 14 instructions for 4 MACs, 8 inputs
//! per loop iteration (one `BNE`). That needs `r0`–`r7`; `r6` and `r7` (base and frame
//! pointer, not available to `asm!` operands) are pushed and popped, and the accumulators are
//! loaded into and stored from `r8`–`r11` inside the block (Thumb-1 `asm!` takes high registers
//! only as clobbers).
//!
//! # Requantization
//! The 32-bit form of [`Requant::apply`] used by [`super::RowRequant`] (right shift 33..=62) with
//! the high word of `acc · m` from four 16 × 16 multiplies ([`mulhi`]: Armv6-M has no
//! `SMULL`, and the `i64` product would be a `__aeabi_lmul` call), and the rounding and output
//! zero point folded into one add: for `k = right − 33 ≥ 0`,
//! `⌊(hi + 2^k) / 2^(k+1)⌋ + z = ⌊(⌊hi / 2^k⌋ + 1 + 2z) / 2⌋`. Other shifts use
//! [`Requant::to_i8`]; an output zero point outside `−128..=127` (never in a validated layer)
//! sends the whole layer to [`super::linear_portable`].
//!
//! [`linear_m0_emulated`] is the same blocking and requantization with the dot products in
//! plain Rust: the host runs it in `tests/variants.rs`; the `asm!` itself is checked against the
//! generic kernel on the device by the bench firmware.

use crate::linear::Linear;
use crate::quant::Requant;

/// Output rows per block.
const ROWS: usize = 4;

/// Inputs per iteration of the `asm!` loop (the rest of a row is added in Rust).
#[cfg(all(target_arch = "arm", core_attn_v6m))]
const UNROLL: usize = 8;

/// High word of the signed 64-bit product `a · b` (`(a as i64 * b as i64) >> 32`) from four
/// 16 × 16 → 32 multiplies, none of the intermediate sums overflowing.
#[inline(always)]
pub fn mulhi(a: i32, b: i32) -> i32 {
    let (ah, al) = (a >> 16, a & 0xffff);
    let (bh, bl) = (b >> 16, b & 0xffff);
    // al·bl < 2^32 (unsigned); its high half < 2^16.
    let lo = ((al as u32).wrapping_mul(bl as u32) >> 16) as i32;
    // |ah·bl| ≤ 2^15·(2^16 − 1), so adding lo < 2^16 stays within i32.
    let t = ah.wrapping_mul(bl).wrapping_add(lo);
    // The same bound for al·bh plus the low half of t.
    let u = al.wrapping_mul(bh).wrapping_add(t & 0xffff);
    // a·b = (ah·bh + ⌊t/2^16⌋ + ⌊u/2^16⌋)·2^32 + (u mod 2^16)·2^16 + (al·bl mod 2^16).
    ah.wrapping_mul(bh)
        .wrapping_add(t >> 16)
        .wrapping_add(u >> 16)
}

/// `Requant { multiplier, shift }.to_i8(acc, zero_point)` for an output zero point in
/// `−128..=127`, given `c = 1 + 2·zero_point`.
#[inline(always)]
fn requant(acc: i32, multiplier: i32, shift: i8, c: i32, zero_point: i32) -> i8 {
    // right = 31 − shift in 33..=62, k = right − 33.
    if (-31..=-2).contains(&shift) {
        let k = (-2 - shift as i32) as u32;
        // |hi| ≤ 2^30, so neither add overflows and |v| ≤ 2^29 + 128: no saturation before
        // the clamp (the reference's `saturating_add` never triggers).
        let v = ((mulhi(acc, multiplier) >> k) + c) >> 1;
        if (v.wrapping_add(128) as u32) > 255 {
            ((v >> 31) ^ 127) as i8
        } else {
            v as i8
        }
    } else {
        Requant { multiplier, shift }.to_i8(acc, zero_point)
    }
}

/// Add the dot products of `x` with the 4 rows of `w` (`4 · x.len()` bytes, row-major) to
/// `acc`.
type Block = fn(x: &[i8], w: &[i8], acc: &mut [i32; ROWS]);

/// The blocked linear layer with a given 4-row dot-product kernel. `false` (nothing written)
/// if the output zero point is outside `−128..=127`.
#[inline(always)]
fn run(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize, block: Block) -> bool {
    let (inf, outf) = (l.in_features, l.out_features);
    let zp = l.output_zero_point;
    if !(-128..=127).contains(&zp) || inf == 0 {
        return false;
    }
    let c = 1 + 2 * zp;
    let (mult, shift) = (l.requant.multipliers, l.requant.shifts);
    let full = outf / ROWS * ROWS;
    for (x, y) in input
        .chunks_exact(inf)
        .zip(output.chunks_exact_mut(outf))
        .take(rows)
    {
        let blocks = y[..full]
            .chunks_exact_mut(ROWS)
            .zip(l.weights.chunks_exact(ROWS * inf))
            .zip(l.bias.chunks_exact(ROWS))
            .zip(mult.chunks_exact(ROWS).zip(shift.chunks_exact(ROWS)));
        for (((y, w), b), (m, s)) in blocks {
            let mut acc = [b[0], b[1], b[2], b[3]];
            block(x, w, &mut acc);
            for r in 0..ROWS {
                y[r] = requant(acc[r], m[r], s[r], c, zp);
            }
        }
        for o in full..outf {
            let acc = l.bias[o]
                .wrapping_add(crate::linear::dot_i8(x, &l.weights[o * inf..(o + 1) * inf]));
            y[o] = requant(acc, mult[o], shift[o], c, zp);
        }
    }
    true
}

/// The portable 4-row block: each input byte loaded once for the 4 rows.
#[inline(always)]
fn block_portable(x: &[i8], w: &[i8], acc: &mut [i32; ROWS]) {
    let n = x.len();
    let (w0, rest) = w.split_at(n);
    let (w1, rest) = rest.split_at(n);
    let (w2, w3) = rest.split_at(n);
    for i in 0..n {
        let v = x[i] as i32;
        acc[0] = acc[0].wrapping_add(v * w0[i] as i32);
        acc[1] = acc[1].wrapping_add(v * w1[i] as i32);
        acc[2] = acc[2].wrapping_add(v * w2[i] as i32);
        acc[3] = acc[3].wrapping_add(v * w3[i] as i32);
    }
}

/// The Armv6-M linear algorithm (4 rows × 1 token, requantization as on the device) with the
/// dot products in plain Rust: runnable on any host, so that `tests/variants.rs` checks the
/// blocking and the requantization of the `asm!` path. Returns `false` (doing nothing) when
/// the output zero point is outside `−128..=127`.
pub fn linear_m0_emulated(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    run(l, input, output, rows, block_portable)
}

/// The Armv6-M linear kernel (shapes checked by the caller); `false` if it does not handle
/// the layer (output zero point outside `−128..=127`).
#[cfg(all(target_arch = "arm", core_attn_v6m))]
pub(super) fn linear(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    run(l, input, output, rows, block_asm)
}

/// [`block_portable`] with the first `x.len() & !7` inputs in `asm!` (see the module docs).
#[cfg(all(target_arch = "arm", core_attn_v6m))]
#[inline(always)]
fn block_asm(x: &[i8], w: &[i8], acc: &mut [i32; ROWS]) {
    use core::arch::asm;
    let inf = x.len();
    // The asm reads 4 rows of `inf` bytes: what `run` passes (`chunks_exact(4 · inf)`).
    assert!(w.len() >= ROWS * inf);
    let n = inf / UNROLL * UNROLL;
    // One input (1 + 4·3 instructions) and the index step.
    macro_rules! step {
        () => {
            "ldrsb r0, [r3, r2]
            ldrsb r1, [r4, r2]
            muls r1, r0, r1
            add r8, r1
            ldrsb r1, [r5, r2]
            muls r1, r0, r1
            add r9, r1
            ldrsb r1, [r6, r2]
            muls r1, r0, r1
            add r10, r1
            ldrsb r1, [r7, r2]
            muls r1, r0, r1
            add r11, r1
            adds r2, #1"
        };
    }
    if n > 0 {
        // SAFETY: with i from −n to −1, the asm reads `x_end[i]` = x[n + i] (within `x`) and
        // `w_end[r·inf + i]` = w[r·inf + n + i] for r in 0..4 (within the 4·inf bytes of `w`
        // checked above); n is a nonzero multiple of UNROLL, so the index reaches exactly 0
        // at the end of an iteration. It reads and writes the 4 accumulators through `acc`
        // (an exclusive borrow). `r6`/`r7` (not available as operands) are pushed and popped:
        // the stack is balanced on exit. Every other register written is declared (high
        // registers can only be clobbers in Thumb-1 `asm!`, hence the loads and stores of the
        // accumulators inside the block). The wrapping pointer arithmetic stays within the
        // slices.
        unsafe {
            asm!(
                "push {{r6, r7}}",
                "mov r12, r0",
                "ldm r0, {{r0, r1, r6, r7}}",
                "mov r8, r0",
                "mov r9, r1",
                "mov r10, r6",
                "mov r11, r7",
                "adds r6, r5, r5",
                "adds r7, r6, r5",
                "adds r6, r4, r6",
                "adds r7, r4, r7",
                "adds r5, r4, r5",
                "2:",
                // Written out rather than `.rept`: LLVM sizes inline asm by its lines when it
                // relaxes branches around it.
                step!(),
                step!(),
                step!(),
                step!(),
                step!(),
                step!(),
                step!(),
                step!(),
                "bne 2b",
                "mov r0, r12",
                "mov r1, r8",
                "mov r2, r9",
                "mov r3, r10",
                "mov r4, r11",
                "stm r0!, {{r1, r2, r3, r4}}",
                "pop {{r6, r7}}",
                inout("r0") acc.as_mut_ptr() => _,
                out("r1") _,
                inout("r2") (n as isize).wrapping_neg() => _,
                inout("r3") x.as_ptr().wrapping_add(n) => _,
                inout("r4") w.as_ptr().wrapping_add(n) => _,
                inout("r5") inf => _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
            );
        }
    }
    if n < inf {
        block_portable(&x[n..], &tail4(w, inf, n), acc);
    }
}

/// The last `inf − n` weights of each of the 4 rows, contiguous (`inf − n < UNROLL`).
#[cfg(all(target_arch = "arm", core_attn_v6m))]
#[inline(never)]
fn tail4(w: &[i8], inf: usize, n: usize) -> [i8; ROWS * UNROLL] {
    let k = inf - n;
    let mut t = [0i8; ROWS * UNROLL];
    for r in 0..ROWS {
        t[r * k..(r + 1) * k].copy_from_slice(&w[r * inf + n..(r + 1) * inf]);
    }
    t
}
