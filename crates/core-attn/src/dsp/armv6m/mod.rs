//! Linear layer for Armv6-M (Cortex-M0/M0+): no DSP extension, no `SMULL`, only 8 low
//! registers for most instructions, and `LDRSB` with register-offset addressing only.
//!
//! # Kernels
//! `MULS` (32 × 32 → low 32 bits) and `ADDS` only take low registers, the multiply overwrites
//! its operand, and there is no multiply-accumulate: a MAC costs at least a weight load, a
//! `MULS` and an add. Reusing a loaded weight for a second token costs a `MOVS` (as much as a
//! reload), so the saving has to come from elsewhere:
//!
//! - **One token × 4 rows** (decode, and an odd last token). Each input byte is loaded once
//!   (`LDRSB`) and used by the 4 rows; per row `LDRSB` (weight), `MULS`, `ADD` into an
//!   accumulator kept in a high register (`r8`–`r11`: `ADD` is the one arithmetic instruction
//!   that reaches them). All five streams (input and 4 weight rows, row-major as stored in the
//!   blob) are addressed as `[base, i]` with one shared index `i` that runs from `−in` up to 0,
//!   so its `ADDS` also sets the flag that ends the loop: per input 1 + 4·3 + 1 = 14
//!   instructions for 4 MACs, 8 inputs per loop iteration (one `BNE`).
//! - **Two tokens × 2 rows** (token pairs). The two tokens' inputs are packed once per pair
//!   into one word per input, `p = −(x0 + 2^16·x1)`, so that one `MULS` by a weight gives
//!   both tokens' products, `−(w·x0) − 2^16·(w·x1)` (mod 2^32). The sum of two such products
//!   (inputs `i`, `i+1`) is `−a0 − 2^16·a1` with `a0, a1 ∈ [−32512, 32768]`: `−a0` fits an
//!   `i16`, so `SXTH` gives it exactly, and `(s − lo) >> 16` gives `−a1` (the negation is what
//!   makes the one out-of-range sum, 2·(−128)·(−128) = 32768, representable). Per 2 inputs × 2
//!   rows × 2 tokens = 8 MACs: `LDM` (2 packed inputs), 4 × `LDRSB`, 4 × `MULS`, 2 × `ADDS`, 2 ×
//!   (`SXTH`, `SUBS`, `ASRS`, 2 × `ADD`), 2 × index `ADDS` = 23 instructions. The accumulators
//!   start from `−bias` and are negated back when stored. [`pass2_portable`] is the same
//!   arithmetic in Rust.
//!
//! Both need `r0`–`r7`: `r6` and `r7` (base and frame pointer, not available to `asm!`
//! operands) are pushed and popped. One `asm!` block runs every block of a chunk of up to
//! [`CHUNK`] rows, reading the biases from and writing the sums to an `i32` scratch (Thumb-1
//! `asm!` takes high registers only as clobbers, so they cannot be operands); the next block's
//! row bases are derived from the current ones, so the only state kept across blocks is the
//! scratch pointer (`r12`) and its end (`lr`). Widths that are not a multiple of 8 enter the
//! loops part-way (Duff's device: a computed `ADD PC` per block, `pass_asm`'s steps being
//! 28 bytes and `pass2_asm`'s pair steps 46), an odd width running its first input alone in
//! the 2-token kernel; a 2-token pass needs at least 2 inputs.
//!
//! # Requantization
//! The 32-bit form of [`Requant::apply`] used by [`crate::dsp::RowRequant`] (right shift 33..=62) with
//! the high word of `acc · m` from four 16 × 16 multiplies ([`mulhi`]: Armv6-M has no
//! `SMULL`, and the `i64` product would be a `__aeabi_lmul` call), and the rounding and output
//! zero point folded into one add: for `k = right − 33 ≥ 0`,
//! `⌊(hi + 2^k) / 2^(k+1)⌋ + z = ⌊(⌊hi / 2^k⌋ + 1 + 2z) / 2⌋`. Other shifts use
//! [`Requant::to_i8`]; an output zero point outside `−128..=127` (never in a validated layer)
//! sends the whole layer to [`crate::dsp::linear_portable`]. On the device this is a second `asm!`
//! loop over a chunk's sums (35 instructions per output; LLVM's code for the same Rust spilled
//! to ~57); a chunk with any other shift is redone by the Rust loop.
//!
//! [`linear_m0_emulated`] is the same blocking and requantization with the dot products in
//! plain Rust: the host runs it in `tests/variants.rs`; the `asm!` itself is checked against the
//! generic kernel on the device by the bench firmware.

use crate::dsp::LinearArgs;
use crate::requant::Requant;

/// Output rows per block.
const ROWS: usize = 4;

/// Rows per chunk of the accumulator scratch (a multiple of [`ROWS`]).
const CHUNK: usize = 32;

/// Largest input width of the 2-token kernel (size of the packed-input scratch).
const MAX_PACK: usize = 128;

/// Inputs per iteration of the `asm!` loops (other widths enter them part-way).
#[cfg_attr(not(all(target_arch = "arm", core_attn_v6m)), allow(dead_code))]
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

/// Two tokens `x0`, `x1` given packed (`xp[i] = −(x0[i] + 2^16·x1[i])`, see [`pack`]): for the
/// `k` rows of `w` (`k` even), `acc[r]` holds the bias on entry and bias + x0·w_r on exit, and
/// `acc[CHUNK + r]` receives bias + x1·w_r.
type Pass2 = fn(xp: &[i32], w: &[i8], acc: &mut [i32; 2 * CHUNK], k: usize);

/// One variant's chunk kernels.
struct Kernels {
    pass: Pass,
    pass2: Pass2,
    rq: Rq,
}

/// Does the 2-token kernel take widths of `inf` inputs (a packed input that fits the
/// scratch, and at least one input pair)?
fn pairs_ok(inf: usize) -> bool {
    (2..=MAX_PACK).contains(&inf)
}

/// Pack two tokens' inputs for [`Pass2`]: `−(x0 + 2^16·x1)`, wrapping.
fn pack(x0: &[i8], x1: &[i8], xp: &mut [i32]) {
    for ((p, &a), &b) in xp.iter_mut().zip(x0).zip(x1) {
        *p = (a as i32).wrapping_add((b as i32) << 16).wrapping_neg();
    }
}

/// The blocked linear layer with the given kernels. `false` if the output zero point is
/// outside `−128..=127` (nothing written), or if the slices are shorter than the shapes
/// (unreachable: the callers checked them). Inlined into each caller, so that its kernels (a
/// constant there) are called directly.
#[inline(always)]
fn run(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize, k: &Kernels) -> bool {
    let zp = l.output_zero_point;
    if !(-128..=127).contains(&zp) {
        return false;
    }
    let Some(crate::dsp::Parts { x, y, p }) = crate::dsp::Parts::new(l, input, output, rows) else {
        debug_assert!(false, "m0::run: shapes not checked");
        return false;
    };
    let (inf, outf) = (p.inf, p.outf);
    let c = 1 + 2 * zp;
    // The rows of whole blocks of 4 (`full ≤ outf`), in chunks of up to CHUNK rows; the
    // others go to `tail_rows`.
    let full = outf / ROWS * ROWS;
    // `full·in ≤ out·in`, which `Parts::new` computed without overflow.
    let (Some(wf), Some(bf), Some(mf), Some(sf)) = (
        p.w.get(..full * inf),
        p.bias.get(..full),
        p.mult.get(..full),
        p.shift.get(..full),
    ) else {
        return false;
    };
    let mut acc = [0i32; 2 * CHUNK];
    let mut xp = [0i32; MAX_PACK];
    let mut xp = if pairs_ok(inf) {
        xp.get_mut(..inf)
    } else {
        None
    };
    // Tokens are split off two (or one) at a time rather than with `chunks_exact`, whose
    // length is a division (a library call on Armv6-M).
    let (mut xr, mut yr) = (x, y);
    loop {
        if let (Some(xp), Some((x01, xn))) = (xp.as_deref_mut(), xr.split_at_checked(p.inf2.get()))
        {
            // `rows·out` outputs for `rows·in` inputs: the `else`s are unreachable.
            let Some((y01, yn)) = core::mem::take(&mut yr).split_at_mut_checked(p.outf2.get())
            else {
                return false;
            };
            (xr, yr) = (xn, yn);
            let (Some((x0, x1)), Some((y0, y1))) =
                (x01.split_at_checked(inf), y01.split_at_mut_checked(outf))
            else {
                return false;
            };
            pack(x0, x1, xp);
            let (Some(y0f), Some(y1f)) = (y0.get_mut(..full), y1.get_mut(..full)) else {
                return false;
            };
            let mut wr = wf;
            for ((b, (m, s)), (ya, yb)) in bf
                .chunks(CHUNK)
                .zip(mf.chunks(CHUNK).zip(sf.chunks(CHUNK)))
                .zip(y0f.chunks_mut(CHUNK).zip(y1f.chunks_mut(CHUNK)))
            {
                // The chunk's rows (`n ≤ CHUNK` rows of inf bytes).
                let n = b.len();
                let (Some((w, rest)), Some(a)) = (wr.split_at_checked(n * inf), acc.get_mut(..n))
                else {
                    return false;
                };
                wr = rest;
                a.copy_from_slice(b);
                (k.pass2)(xp, w, &mut acc, n);
                let (a0, a1) = acc.split_at(CHUNK);
                let (Some(a0), Some(a1)) = (a0.get(..n), a1.get(..n)) else {
                    return false;
                };
                (k.rq)(a0, m, s, ya, c, zp);
                (k.rq)(a1, m, s, yb, c, zp);
            }
            tail_rows(&p, x0, y0, full, c, zp);
            tail_rows(&p, x1, y1, full, c, zp);
            continue;
        }
        // One token: every token when pairs do not apply, else an odd last one.
        let Some((x0, xn)) = xr.split_at_checked(inf) else {
            break;
        };
        let Some((y0, yn)) = core::mem::take(&mut yr).split_at_mut_checked(outf) else {
            return false;
        };
        (xr, yr) = (xn, yn);
        let Some(yf) = y0.get_mut(..full) else {
            return false;
        };
        let mut wr = wf;
        for ((b, (m, s)), y) in bf
            .chunks(CHUNK)
            .zip(mf.chunks(CHUNK).zip(sf.chunks(CHUNK)))
            .zip(yf.chunks_mut(CHUNK))
        {
            // The chunk's rows (`b.len() ≤ CHUNK` rows of inf bytes).
            let (Some((w, rest)), Some(a)) =
                (wr.split_at_checked(b.len() * inf), acc.get_mut(..b.len()))
            else {
                return false;
            };
            wr = rest;
            a.copy_from_slice(b);
            (k.pass)(x0, w, a);
            (k.rq)(a, m, s, y, c, zp);
        }
        tail_rows(&p, x0, y0, full, c, zp);
    }
    true
}

/// Rows `from..` of one token, one plain dot product each.
fn tail_rows(p: &crate::dsp::Params<'_>, x: &[i8], y: &mut [i8], from: usize, c: i32, zp: i32) {
    let Some((y, mut w, b, m, s)) = p.rows_from(y, from) else {
        return;
    };
    for ((y, &b), (&m, &s)) in y.iter_mut().zip(b).zip(m.iter().zip(s)) {
        let Some((row, rest)) = w.split_at_checked(p.inf) else {
            break;
        };
        w = rest;
        let acc = b.wrapping_add(crate::linear::dot_i8(x, row));
        *y = requant(acc, m, s, c, zp);
    }
}

/// The portable 2-token kernel: the `asm!` one's arithmetic step for step. Per row and input
/// pair, `s = w_i·xp_i + w_(i+1)·xp_(i+1)` (wrapping) is `−a0 − 2^16·a1` for the two tokens'
/// partial sums `a0, a1 ∈ [−32512, 32768]`; `−a0` fits an `i16`, so `lo = s as i16` is `−a0`
/// exactly and `(s − lo) >> 16` is `−a1` (`−a1·2^16 ≥ −2^31` does not wrap). The accumulators
/// hold negated sums from `−bias`.
fn pass2_portable(xp: &[i32], w: &[i8], acc: &mut [i32; 2 * CHUNK], k: usize) {
    let n = xp.len();
    // An odd width starts with one input alone (partial sums in [−16384, 16384]).
    let odd = n % 2;
    for r in (0..k).step_by(2) {
        let (w0, w1) = (&w[r * n..(r + 1) * n], &w[(r + 1) * n..(r + 2) * n]);
        let (b0, b1) = (acc[r].wrapping_neg(), acc[r + 1].wrapping_neg());
        let mut a = [b0, b0, b1, b1];
        for i in (0..n).step_by(2) {
            for (j, wr) in [w0, w1].into_iter().enumerate() {
                let s = if odd == 1 && i == 0 {
                    (wr[0] as i32).wrapping_mul(xp[0])
                } else {
                    let i = i - odd;
                    (wr[i] as i32)
                        .wrapping_mul(xp[i])
                        .wrapping_add((wr[i + 1] as i32).wrapping_mul(xp[i + 1]))
                };
                let lo = s as i16 as i32;
                let hi = s.wrapping_sub(lo) >> 16;
                a[2 * j] = a[2 * j].wrapping_add(lo);
                a[2 * j + 1] = a[2 * j + 1].wrapping_add(hi);
            }
        }
        acc[r] = a[0].wrapping_neg();
        acc[CHUNK + r] = a[1].wrapping_neg();
        acc[r + 1] = a[2].wrapping_neg();
        acc[CHUNK + r + 1] = a[3].wrapping_neg();
    }
}

/// The portable chunk kernel: 4 rows at a time, each input byte loaded once for the 4 rows.
fn pass_portable(x: &[i8], w: &[i8], acc: &mut [i32]) {
    let n = x.len();
    for (w, acc) in w.chunks_exact(ROWS * n).zip(acc.chunks_exact_mut(ROWS)) {
        let Some((w0, rest)) = w.split_at_checked(n) else {
            return;
        };
        let Some((w1, rest)) = rest.split_at_checked(n) else {
            return;
        };
        let Some((w2, w3)) = rest.split_at_checked(n) else {
            return;
        };
        for i in 0..n {
            let v = x[i] as i32;
            acc[0] = acc[0].wrapping_add(v * w0[i] as i32);
            acc[1] = acc[1].wrapping_add(v * w1[i] as i32);
            acc[2] = acc[2].wrapping_add(v * w2[i] as i32);
            acc[3] = acc[3].wrapping_add(v * w3[i] as i32);
        }
    }
}

/// The Armv6-M linear algorithm (token pairs packed as on the device, 4 rows × 1 token
/// otherwise, the same requantization) with the dot products in plain Rust: runnable on any
/// host, so that `tests/variants.rs` checks the blocking, the packed arithmetic and the
/// requantization of the `asm!` path. Returns `false` (doing nothing) for the layers the device
/// kernel leaves to [`crate::dsp::linear_portable`]: an output zero point outside `−128..=127`.
#[inline(never)]
pub(crate) fn linear_emulated(
    l: &LinearArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    rows: usize,
) -> bool {
    let k = Kernels {
        pass: pass_portable,
        pass2: pass2_portable,
        rq: requant_chunk,
    };
    run(l, input, output, rows, &k)
}

/// The Armv6-M linear kernel (shapes checked by the caller); `false` if it does not handle
/// the layer (output zero point outside `−128..=127`).
#[cfg(all(target_arch = "arm", core_attn_v6m))]
fn linear(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    // Multiples of 8 inputs: the loops as they are; other widths enter them part-way.
    if l.in_features % UNROLL == 0 {
        run_asm::<false>(l, input, output, rows)
    } else {
        run_asm::<true>(l, input, output, rows)
    }
}

/// [`run`] with the `asm!` kernels.
#[cfg(all(target_arch = "arm", core_attn_v6m))]
#[inline(never)]
fn run_asm<const DUFF: bool>(
    l: &LinearArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    rows: usize,
) -> bool {
    let k = Kernels {
        pass: pass_asm::<DUFF>,
        pass2: pass2_asm::<DUFF>,
        rq: requant_asm,
    };
    run(l, input, output, rows, &k)
}

/// The chunk kernel in `asm!` (see the module docs); `x.len()` a nonzero multiple of
/// [`UNROLL`], or with `DUFF` any nonzero width: each block then enters the 8-input loop at
/// step `(8 − inf mod 8) mod 8` (a computed `ADD PC`; every step is 14 16-bit instructions),
/// so that the first iteration runs the `inf mod 8` odd inputs.
#[cfg(all(target_arch = "arm", core_attn_v6m))]
#[inline(always)]
fn pass_asm<const DUFF: bool>(x: &[i8], w: &[i8], acc: &mut [i32]) {
    use core::arch::asm;
    let inf = x.len();
    // What the asm relies on: whole blocks of 4 rows, all their weights, whole 8-input steps
    // (any number of inputs with DUFF). `run` passes exactly that, so this returns early only
    // if it is called otherwise (`acc` left as it is).
    if !(!acc.is_empty()
        && acc.len() % ROWS == 0
        && acc.len() <= CHUNK
        && inf <= usize::MAX / CHUNK
        && w.len() >= acc.len() * inf
        && (DUFF || inf % UNROLL == 0)
        && inf > 0)
    {
        debug_assert!(false, "pass_asm: blocks, weights or width");
        return;
    }
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
    // w[(4b + r)·inf ..(4b + r + 1)·inf] (within `w`: checked above) and x[0..inf] (`x_end =
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
            // DUFF: [sp] = byte offset of the first step run, 28·((−inf) mod 8).
            ".if {duff}",
            "rsbs r2, r5, #0",
            "movs r6, #7",
            "ands r2, r6",
            "movs r6, #28",
            "muls r2, r6, r2",
            "push {{r2}}",
            ".endif",
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
            ".if {duff}",
            "ldr r0, [sp]",
            "add pc, r0",
            "nop",
            ".endif",
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
            ".if {duff}",
            "add sp, #4",
            ".endif",
            "pop {{r6, r7}}",
            duff = const DUFF as u32,
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
#[inline(always)]
fn requant_asm(acc: &[i32], m: &[i32], s: &[i8], y: &mut [i8], c: i32, zero_point: i32) {
    use core::arch::asm;
    let n = acc.len();
    // What the asm relies on: one multiplier, shift and output per accumulator (`run` passes
    // exactly that; otherwise nothing is written).
    if !(n > 0 && m.len() >= n && s.len() >= n && y.len() >= n) {
        debug_assert!(false, "requant_asm: chunk lengths");
        return;
    }
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

/// The 2-token kernel in `asm!` (see [`Pass2`], [`pass2_portable`] and the module docs);
/// `xp.len()` a nonzero multiple of [`UNROLL`], or with `DUFF` any width ≥ 2: each block then
/// runs one input alone first when the width is odd (skipped by a computed `ADD PC`
/// otherwise), and enters the loop of 4 input pairs at pair `(4 − ⌊inf/2⌋ mod 4) mod 4` (every
/// pair step is 23 16-bit instructions).
#[cfg(all(target_arch = "arm", core_attn_v6m))]
#[inline(always)]
fn pass2_asm<const DUFF: bool>(xp: &[i32], w: &[i8], acc: &mut [i32; 2 * CHUNK], k: usize) {
    use core::arch::asm;
    let inf = xp.len();
    // What the asm relies on: whole blocks of 2 rows within the chunk, all their weights,
    // whole 8-input steps (with DUFF, at least one input pair). `run` passes exactly that, so
    // this returns early only if it is called otherwise (`acc` left as it is).
    if !(k > 0
        && k % 2 == 0
        && k <= CHUNK
        && (if DUFF {
            inf >= 2
        } else {
            inf > 0 && inf % UNROLL == 0
        })
        && inf <= usize::MAX / CHUNK
        && w.len() >= k * inf)
    {
        debug_assert!(false, "pass2_asm: blocks, weights or width");
        return;
    }
    let a = acc.as_mut_ptr();
    // Two inputs (a packed word each) for 2 rows: 4 products in 4 `MULS`, unpacked to 8 MACs.
    macro_rules! pair {
        () => {
            "ldm r0!, {{r1, r2}}
            ldrsb r6, [r4, r3]
            muls r6, r1, r6
            ldrsb r7, [r5, r3]
            muls r7, r1, r7
            adds r3, #1
            ldrsb r1, [r4, r3]
            muls r1, r2, r1
            adds r6, r6, r1
            ldrsb r1, [r5, r3]
            muls r1, r2, r1
            adds r7, r7, r1
            sxth r1, r6
            subs r6, r6, r1
            asrs r6, r6, #16
            add r8, r1
            add r9, r6
            sxth r1, r7
            subs r7, r7, r1
            asrs r7, r7, #16
            add r10, r1
            add r11, r7
            adds r3, #1"
        };
    }
    // SAFETY: for the block of rows 2b, 2b+1 (2b < k) the row bases are `w + (2b + 1)·inf` and
    // `w + (2b + 2)·inf` and the index runs over −inf..=−1, so the asm reads exactly rows
    // 2b..2b+2 of `w` (k·inf ≤ w.len(), checked) and, with `ldm`, the inf aligned words of
    // `xp` (the pointer is moved back by 4·inf after each block); `inf` is a nonzero multiple
    // of 8, so the index reaches exactly 0 at the end of an iteration. It reads acc[2b],
    // acc[2b+1] and writes them and acc[CHUNK + 2b], acc[CHUNK + 2b + 1] (2b + 1 < k ≤ CHUNK:
    // within the array, an exclusive borrow), stopping when the block pointer reaches
    // `acc + k`. `r6`/`r7` (not available as operands) are pushed and popped, so the stack is
    // balanced on exit; every other register written is declared.
    unsafe {
        asm!(
            "push {{r6, r7}}",
            "mov r12, r2",
            "mov lr, r1",
            "mov r6, r2",
            // DUFF: [sp] = 0 for an odd width (run the lone input), else 32 (its size);
            // [sp, #4] = byte offset of the first pair step run, 46·((−⌊inf/2⌋) mod 4).
            ".if {duff}",
            "rsbs r1, r3, #0",
            "lsrs r2, r1, #1",
            "rsbs r2, r2, #0",
            "movs r7, #3",
            "ands r2, r7",
            "movs r7, #46",
            "muls r2, r7, r2",
            "movs r7, #1",
            "ands r1, r7",
            "eors r1, r7",
            "lsls r1, r1, #5",
            "push {{r1, r2}}",
            ".endif",
            "2:",
            // Block start (r6 = acc of this block): −bias of both rows, for both tokens.
            "ldr r1, [r6]",
            "rsbs r1, r1, #0",
            "mov r8, r1",
            "mov r9, r1",
            "ldr r1, [r6, #4]",
            "rsbs r1, r1, #0",
            "mov r10, r1",
            "mov r11, r1",
            ".if {duff}",
            "ldr r1, [sp]",
            "add pc, r1",
            "nop",
            // The lone first input of an odd width: one packed word, 2 products.
            "ldm r0!, {{r1}}",
            "ldrsb r6, [r4, r3]",
            "muls r6, r1, r6",
            "ldrsb r7, [r5, r3]",
            "muls r7, r1, r7",
            "adds r3, #1",
            "sxth r1, r6",
            "subs r6, r6, r1",
            "asrs r6, r6, #16",
            "add r8, r1",
            "add r9, r6",
            "sxth r1, r7",
            "subs r7, r7, r1",
            "asrs r7, r7, #16",
            "add r10, r1",
            "add r11, r7",
            "ldr r1, [sp, #4]",
            "add pc, r1",
            "nop",
            ".endif",
            "3:",
            pair!(),
            pair!(),
            pair!(),
            pair!(),
            "bne 3b",
            // inf = base 1 − base 0: rewind the packed input, move to the next 2 rows.
            "subs r1, r5, r4",
            "lsls r2, r1, #2",
            "subs r0, r0, r2",
            "adds r4, r5, r1",
            "adds r5, r4, r1",
            "rsbs r3, r1, #0",
            // Store the sums (negated back): token 0 at acc[o..], token 1 at acc[CHUNK + o..].
            "mov r6, r12",
            "mov r1, r8",
            "rsbs r1, r1, #0",
            "mov r2, r10",
            "rsbs r2, r2, #0",
            "stm r6!, {{r1, r2}}",
            "mov r12, r6",
            "movs r7, #{bofs}",
            "adds r7, r7, r6",
            "mov r1, r9",
            "rsbs r1, r1, #0",
            "mov r2, r11",
            "rsbs r2, r2, #0",
            "stm r7!, {{r1, r2}}",
            "cmp r6, lr",
            "beq 4f",
            "b 2b",
            "4:",
            ".if {duff}",
            "add sp, #8",
            ".endif",
            "pop {{r6, r7}}",
            duff = const DUFF as u32,
            bofs = const 4 * CHUNK - 8,
            inout("r0") xp.as_ptr() => _,
            inout("r1") a.wrapping_add(k) => _,
            inout("r2") a => _,
            inout("r3") (inf as isize).wrapping_neg() => _,
            inout("r4") w.as_ptr().wrapping_add(inf) => _,
            inout("r5") w.as_ptr().wrapping_add(2 * inf) => _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
        );
    }
}

/// The native Armv6-M variant: the `asm!` kernel on Cortex-M0/M0+ builds, `false` (nothing
/// written) elsewhere.
#[inline(always)]
pub(crate) fn linear_native(
    l: &LinearArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    rows: usize,
) -> bool {
    #[cfg(all(target_arch = "arm", core_attn_v6m))]
    {
        linear(l, input, output, rows)
    }
    #[cfg(not(all(target_arch = "arm", core_attn_v6m)))]
    {
        let _ = (l, input, output, rows);
        false
    }
}
