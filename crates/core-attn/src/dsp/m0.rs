//! Linear layer for Armv6-M (Cortex-M0/M0+): no DSP extension, no `SMULL`, only 8 low
//! registers for most instructions, and `LDRSB` with register-offset addressing only.
//!
//! # Kernel
//! One token × 4 output rows at a time. Each input byte is loaded once (`LDRSB`) and used by
//! the 4 rows; per row `LDRSB` (weight), `MULS`, `ADD` into an accumulator kept in a high
//! register (`r8`–`r11`: `ADD` is the one arithmetic instruction that reaches them). All five
//! streams (input and 4 weight rows, row-major as stored in the blob) are addressed as
//! `[base, i]` with one shared index `i` that runs from `−in` up to 0, so its `ADDS` also sets
//! the flag that ends the loop: per input 1 + 4·3 + 1 = 14 instructions for 4 MACs, 8 inputs
//! per loop iteration (one `BNE`). That needs `r0`–`r7`: `r6` and `r7` (base and frame
//! pointer, not available to `asm!` operands) are pushed and popped. One `asm!` block runs
//! every 4-row block of a chunk of up to [`CHUNK`] rows, reading the biases from and writing the
//! accumulators to an `i32` scratch (Thumb-1 `asm!` takes high registers only as clobbers, so
//! they cannot be operands); the next block's row bases are derived from the current ones, so
//! the only state kept across blocks is the scratch pointer (`r12`) and its end (`lr`).
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

/// Rows per chunk of the accumulator scratch (a multiple of [`ROWS`]).
const CHUNK: usize = 64;

/// Inputs per iteration of the `asm!` loop; other widths take the portable blocks.
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
        slow(acc, multiplier, shift, zero_point)
    }
}

#[cold]
#[inline(never)]
fn slow(acc: i32, multiplier: i32, shift: i8, zero_point: i32) -> i8 {
    Requant { multiplier, shift }.to_i8(acc, zero_point)
}

/// Requantize one chunk of accumulators into `y`.
#[inline(never)]
fn requant_chunk(acc: &[i32], m: &[i32], s: &[i8], y: &mut [i8], c: i32, zero_point: i32) {
    for (((y, &a), &m), &s) in y.iter_mut().zip(acc).zip(m).zip(s) {
        *y = requant(a, m, s, c, zero_point);
    }
}

/// Requantize a chunk: `(acc, multipliers, shifts, y, c, zero_point)` as [`requant_chunk`].
type Rq = fn(&[i32], &[i32], &[i8], &mut [i8], i32, i32);

/// Add to `acc[r]` the dot product of `x` with row `r` of `w` (`acc.len()` rows of `x.len()`
/// bytes, row-major; `acc.len()` a multiple of [`ROWS`]).
type Pass = fn(x: &[i8], w: &[i8], acc: &mut [i32]);

/// The blocked linear layer with a given chunk kernel. `false` (nothing written) if the
/// output zero point is outside `−128..=127`.
#[inline(never)]
fn run(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize, pass: Pass, rq: Rq) -> bool {
    let (inf, outf) = (l.in_features, l.out_features);
    let zp = l.output_zero_point;
    if !(-128..=127).contains(&zp) || inf == 0 {
        return false;
    }
    let c = 1 + 2 * zp;
    let (mult, shift) = (l.requant.multipliers, l.requant.shifts);
    let full = outf / ROWS * ROWS;
    let mut acc = [0i32; CHUNK];
    for (x, y) in input
        .chunks_exact(inf)
        .zip(output.chunks_exact_mut(outf))
        .take(rows)
    {
        let mut o = 0;
        while o < full {
            let k = CHUNK.min(full - o);
            let acc = &mut acc[..k];
            acc.copy_from_slice(&l.bias[o..o + k]);
            pass(x, &l.weights[o * inf..(o + k) * inf], acc);
            rq(
                acc,
                &mult[o..o + k],
                &shift[o..o + k],
                &mut y[o..o + k],
                c,
                zp,
            );
            o += k;
        }
        for o in full..outf {
            let acc = l.bias[o]
                .wrapping_add(crate::linear::dot_i8(x, &l.weights[o * inf..(o + 1) * inf]));
            y[o] = requant(acc, mult[o], shift[o], c, zp);
        }
    }
    true
}

/// The portable chunk kernel: 4 rows at a time, each input byte loaded once for the 4 rows.
fn pass_portable(x: &[i8], w: &[i8], acc: &mut [i32]) {
    let n = x.len();
    for (w, acc) in w.chunks_exact(ROWS * n).zip(acc.chunks_exact_mut(ROWS)) {
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
}

/// The Armv6-M linear algorithm (4 rows × 1 token, requantization as on the device) with the
/// dot products in plain Rust: runnable on any host, so that `tests/variants.rs` checks the
/// blocking and the requantization of the `asm!` path. Returns `false` (doing nothing) when
/// the output zero point is outside `−128..=127`.
pub fn linear_m0_emulated(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    run(l, input, output, rows, pass_portable, requant_chunk)
}

/// The Armv6-M linear kernel (shapes checked by the caller); `false` if it does not handle
/// the layer (output zero point outside `−128..=127`).
#[cfg(all(target_arch = "arm", core_attn_v6m))]
pub(super) fn linear(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    if l.in_features % UNROLL == 0 {
        run(l, input, output, rows, pass_asm, requant_asm)
    } else {
        run(l, input, output, rows, pass_portable, requant_chunk)
    }
}

/// The chunk kernel in `asm!` (see the module docs); `x.len()` a nonzero multiple of
/// [`UNROLL`].
#[cfg(all(target_arch = "arm", core_attn_v6m))]
fn pass_asm(x: &[i8], w: &[i8], acc: &mut [i32]) {
    use core::arch::asm;
    let inf = x.len();
    // What the asm relies on: whole blocks of 4 rows, all their weights, whole 8-input steps.
    assert!(
        !acc.is_empty()
            && acc.len() % ROWS == 0
            && w.len() >= acc.len() * inf
            && inf % UNROLL == 0
            && inf > 0
    );
    let range = acc.as_mut_ptr_range();
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
    // SAFETY: for the block of rows 4b..4b+4 (b < acc.len()/4) the row bases are
    // `w + (4b + r + 1)·inf` and the index runs over −inf..=−1, so the asm reads exactly
    // w[(4b + r)·inf ..(4b + r + 1)·inf] (within `w`: asserted above) and x[0..inf] (`x_end =
    // x + inf`); `inf` is a nonzero multiple of 8, so the index reaches exactly 0 at the end of
    // an iteration. It reads and then overwrites acc[4b..4b+4] through `r12`, stopping when
    // `r12` reaches `range.end` (acc.len() is a nonzero multiple of 4): `acc` is an exclusive
    // borrow. `r6`/`r7` (not available as operands) are pushed and popped, so the stack is
    // balanced on exit; every other register written is declared. The wrapping pointer
    // arithmetic stays within (or one past) the slices.
    unsafe {
        asm!(
            "push {{r6, r7}}",
            "mov r12, r0",
            "mov lr, r1",
            "2:",
            // Block start: r0 = acc of this block, r4 = row 0 base, r5 = inf.
            "ldm r0!, {{r1, r2, r6, r7}}",
            "mov r8, r1",
            "mov r9, r2",
            "mov r10, r6",
            "mov r11, r7",
            "rsbs r2, r5, #0",
            "adds r6, r5, r5",
            "adds r7, r6, r5",
            "adds r6, r4, r6",
            "adds r7, r4, r7",
            "adds r5, r4, r5",
            "3:",
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
            "bne 3b",
            // inf = base 1 − base 0; the next block's row 0 starts where row 3 ends.
            "subs r5, r5, r4",
            "adds r4, r7, r5",
            "mov r0, r12",
            "mov r1, r8",
            "mov r2, r9",
            "mov r6, r10",
            "mov r7, r11",
            "stm r0!, {{r1, r2, r6, r7}}",
            "mov r12, r0",
            "cmp r0, lr",
            "beq 4f",
            "b 2b",
            "4:",
            "pop {{r6, r7}}",
            inout("r0") range.start => _,
            inout("r1") range.end => _,
            out("r2") _,
            inout("r3") x.as_ptr().wrapping_add(inf) => _,
            inout("r4") w.as_ptr().wrapping_add(inf) => _,
            inout("r5") inf => _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
        );
    }
}

/// [`requant_chunk`] in `asm!` for the channels with a right shift in 33..=62; if any channel
/// of the chunk has another shift, the chunk is redone by [`requant_chunk`].
#[cfg(all(target_arch = "arm", core_attn_v6m))]
fn requant_asm(acc: &[i32], m: &[i32], s: &[i8], y: &mut [i8], c: i32, zero_point: i32) {
    use core::arch::asm;
    let n = acc.len();
    // What the asm relies on: one multiplier, shift and output per accumulator.
    assert!(n > 0 && m.len() >= n && s.len() >= n && y.len() >= n);
    let slow: usize;
    // SAFETY: the loop reads acc[0..n] (ldm, aligned i32s), m[0..n] (ldrh of the low half and
    // ldm, aligned i32s) and s[0..n], and writes y[0..n] (all checked above: `y` is an
    // exclusive borrow), stopping when the accumulator pointer reaches `acc.end`. `r6`/`r7`
    // are pushed and popped (balanced stack); every other register written is declared.
    unsafe {
        asm!(
            "push {{r6, r7}}",
            "mov lr, r4",
            "mov r8, r5",
            "movs r4, #0",
            "mov r9, r4",
            "2:",
            // hi = mulhi(a, m): r4 = al, r5 = ah, r6/r7 = halves of m.
            "ldm r0!, {{r4}}",
            "asrs r5, r4, #16",
            "uxth r4, r4",
            "ldrh r6, [r1]",
            "muls r6, r4, r6",
            "lsrs r6, r6, #16",
            "ldrh r7, [r1]",
            "muls r7, r5, r7",
            "adds r6, r6, r7",
            "ldm r1!, {{r7}}",
            "asrs r7, r7, #16",
            "muls r5, r7, r5",
            "muls r4, r7, r4",
            "uxth r7, r6",
            "adds r4, r4, r7",
            "asrs r6, r6, #16",
            "asrs r4, r4, #16",
            "adds r5, r5, r6",
            "adds r5, r5, r4",
            // k = −2 − shift = 254 − (shift as u8); flag k > 29 (not the 32-bit path).
            "ldrb r6, [r2]",
            "adds r2, #1",
            "movs r7, #254",
            "subs r7, r7, r6",
            "cmp r7, #29",
            "bls 3f",
            "mov r9, r0",
            "3:",
            // v = ((hi >> k) + 1 + 2z) >> 1, saturated to i8.
            "asrs r5, r7",
            "add r5, r8",
            "asrs r5, r5, #1",
            "sxtb r6, r5",
            "cmp r6, r5",
            "beq 4f",
            "asrs r5, r5, #31",
            "movs r6, #127",
            "eors r5, r6",
            "4:",
            "strb r5, [r3]",
            "adds r3, #1",
            "cmp r0, lr",
            "bne 2b",
            "mov r0, r9",
            "pop {{r6, r7}}",
            inout("r0") acc.as_ptr() => slow,
            inout("r1") m.as_ptr() => _,
            inout("r2") s.as_ptr() => _,
            inout("r3") y.as_mut_ptr() => _,
            inout("r4") acc.as_ptr_range().end => _,
            inout("r5") c => _,
            out("r8") _,
            out("r9") _,
            out("lr") _,
        );
    }
    if slow != 0 {
        requant_chunk(acc, m, s, y, c, zero_point);
    }
}
