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

#[cfg(all(target_arch = "arm", core_attn_v6m))]
mod asm;
use crate::requant::Requant;
#[cfg(all(target_arch = "arm", core_attn_v6m))]
use asm::{pass2_asm, pass_asm, requant_asm};

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
        let acc = b.wrapping_add(crate::dsp::portable::dot_i8(x, row));
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
