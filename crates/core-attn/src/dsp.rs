//! Optimized inner loops: Cortex-M DSP-extension kernels (`SMLAD` / `SXTB16`, in `asm!`) and
//! their portable counterparts. The only module of the crate allowed `unsafe`.
//!
//! Every kernel here computes exactly the same bits as the generic reference code in
//! [`crate::linear`], [`crate::attention`] and [`crate::softmax`]: integer additions wrap and are
//! associative, so a different order of the same products gives the same sum, and the fast
//! requantization below is proved equal to [`Requant::apply`] on its domain (and falls back to
//! it elsewhere). `tests/variants.rs` runs one suite against every variant.
//!
//! # Linear layer on the DSP extension (`cfg(core_attn_dsp)`: Cortex-M4/M7/M33)
//! Weights stay row-major as stored in the blob (no pack-time reordering, blob format
//! unchanged); the kernels are `asm!` loops over whole layers, fully unrolled over the inputs
//! for the widths of [`DSP_WIDTHS`] with 4-byte aligned weights, looped for any other width
//! up to [`MAX_ANY_WIDTH`] and any alignment (see *Any width* below); layers outside
//! [`asm_requant_ok`] use [`linear_portable`]. Besides the 12 registers `asm!` operands may
//! name, `r6` and `r7` are saved and restored inside each block, which gives 14: enough to keep
//! every pointer of the dot product in registers and to load two weight words back to back.
//! The loop state (requantization pointers, constants) lives in a small frame the block copies
//! onto the stack and reads with one `LDM`.
//!
//! **Token pairs (prefill): 2 rows × 2 tokens.** Both tokens' inputs are sign-extended once
//! per token pair into 16-bit pairs, interleaved per 4-input chunk
//! `[x0|x2, x1|x3 of token t, x0|x2, x1|x3 of token t+1]`. Per 16 MACs:
//!
//! | instruction | count | cycles (model of BENCHMARKS.md) |
//! |---|---:|---:|
//! | `LDM` of the 4 input words | 1 | 5 |
//! | `LDR` row `r`, `LDR` row `r+1` (back to back) | 2 | 2 + 1 |
//! | `SXTB16` (each weight word → 2 pairs, shared by both tokens) | 4 | 4 |
//! | `SMLAD` | 8 | 8 |
//! | total | 15 (0.94/MAC) | 20 (1.25/MAC) |
//!
//! Per row pair (4 outputs): bias `LDRD` (the first `SMLAD`s of token 1 read token 0's
//! accumulators, so no copies), frame `LDM`/`STM`, and per row `LDRSB` shift + `LDR`
//! multiplier, then per output the 4-instruction requantization of [`requant_asm_form`] and a
//! `STRB`: 33 instructions, ~49 cycles, i.e. +0.13 instr/MAC and +0.19 cycles/MAC at 64 inputs.
//!
//! **One token (decode, and the 17th token of a prefill): 4 rows × 1 token, 8 inputs per
//! step.** One-token buffer `[x0|x2, x1|x3]` per 4 inputs. Per 32 MACs: 1 `LDM` (4 input
//! words, 5 cycles) + 4 `LDRD` (8 weight bytes of each row, 3 cycles each) + 16 `SXTB16` +
//! 16 `SMLAD` = 37 instructions (1.16/MAC), 49 cycles (1.53/MAC). Per 4 rows: bias `LDM`,
//! multipliers `LDM`, one word of 4 shifts turned into 4 right shifts by one `USUB8`, per
//! output `SMMUL`/`ASR`/`ADD`/`SSAT`/`STRB` (+ `LSR` to the next shift byte): 35 instructions.
//! The weights are used once each, so their `SXTB16` (0.5/MAC) is not shared: with the
//! `SMLAD`s that is 1.0 instruction and cycle per MAC before any load, and this shape cannot
//! reach the prefill figures.
//!
//! **Any width** (`arm::pass_2x2_any`, `arm::pass_4x1_any`; widths `4..=`[`MAX_ANY_WIDTH`],
//! the input width a runtime value). Token pairs: the same 15-instruction chunk per 4 inputs
//! (row 1 through the register offset `lr = IN − 4`, which the bias pointer gives up: it moves
//! to the frame), in a loop of 8 chunks (32 inputs; `LDR`, `CMP`, `BNE` per iteration) that
//! each row pair enters part-way with a computed `ADD PC` (Duff's device: every chunk is 60
//! bytes of 32-bit encodings), so that `IN/4 mod 8` chunks run first; then the last `IN mod 4`
//! inputs one at a time (`LDR` of a word holding both tokens' sign-extended input, `LDRSB` of
//! each row, `SMLABB`/`SMLATB`). No byte past a row is read. One token: 4 rows per block,
//! 8 inputs per step (`LDM` of 4 input words, then per row two single `LDR`s — `LDRD` takes no
//! register offset — rows 1 and 3 reached as `[row 0/2, lr]` with `lr = IN`), 41 instructions
//! per 32 MACs (the unrolled pass: 37), in a loop of 4 steps entered part-way (164-byte
//! steps), then `IN mod 8` single inputs (`LDRSB`, `SMLABB` per row). The sign-extended
//! input buffer is on the stack (4 bytes per input: 544 bytes up to 128 inputs, 2 KiB up to
//! [`MAX_ANY_WIDTH`]).
//!
//! # Linear layer on Helium (`cfg(core_attn_mve)`: Cortex-M55/M85)
//! `VMLADAVA.S8` adds 16 int8 products to a scalar accumulator. 4 rows × 2 tokens per step,
//! the accumulators in the 8 even registers (the only ones `VMLADAVA` takes): per 128 MACs
//! 2 `VLDRB` (inputs, straight from the int8 tokens) + 4 `VLDRW` (weights, row-major) +
//! 8 `VMLADAVA` = 14 instructions (0.11/MAC); one token: 9 per 64 MACs. The requantization
//! runs on 4 outputs per token at once: `VMOV` ×2 of the accumulators into a vector, `VLDRW`
//! multipliers, `VLDRB.S32` shifts (+2: `VSHL` by a negative amount is the floor right shift),
//! `VMULH.S32`, `VSHL.S32`, `VADD` of `2·zp + 1`, `VQSHRNB #1` + `VQMOVNB` (the saturation),
//! `VSTRB.32`.
//!
//! Other widths (`1..=`[`MAX_ANY_WIDTH`]) and alignments (`mve::pass_any`): the same 4 rows ×
//! 2 tokens (or 1), each row through its own pointer (`VLDRB.U8`, any alignment), a counted
//! loop over the whole 16-input chunks (16 instructions per 128 MACs), then one last chunk
//! whose weight loads are predicated by `VCTP.8` (`inf mod 16` lanes: no byte past a row is
//! read); the inputs are copied into a zero-padded stack buffer (token pairs interleaved per
//! 16 bytes), so the lanes a predicated load leaves alone multiply zeros.
//!
//! Host twin: `linear_mve_emulated` (`dsp/mve_emulated.rs`), the same blocking, accumulation
//! and requantization with the instructions emulated, run by `tests/variants.rs`.
//!
//! # Softmax and attention (`dsp/softmax.rs`)
//! The exponential pass of the softmax (index by `SMMULR`, two table reads, `MLA` rounding),
//! the row maximum and the probability pass (`UMULL`) in `asm!`, and the instruction helpers
//! the packed attention kernel (`Attention::run_packed`: `SMLAD` on probability pairs × packed
//! V) uses, with portable fallbacks so that the same algorithm runs on the host.

use crate::linear::Linear;
use crate::quant::Requant;

/// First template line of every DSP `asm!` block: `.cpu cortex-m33` on `thumbv8m.main` when
/// the DSP kernels were selected without `-C target-cpu=cortex-m33` (the `dsp` feature), so
/// that the assembler accepts `SMLAD`/`SXTB16`; empty otherwise.
#[cfg(core_attn_dsp_directive)]
macro_rules! dsp_directive {
    () => {
        ".cpu cortex-m33"
    };
}
#[cfg(core_attn_mve_directive)]
macro_rules! dsp_directive {
    () => {
        ".cpu cortex-m55"
    };
}
#[cfg(not(any(core_attn_dsp_directive, core_attn_mve_directive)))]
#[allow(unused_macros)]
macro_rules! dsp_directive {
    () => {
        ""
    };
}

/// The same for the Helium `asm!` blocks: `.cpu cortex-m55` under the `mve` feature without
/// `-C target-cpu=cortex-m55`.
#[cfg(core_attn_mve_directive)]
macro_rules! mve_directive {
    () => {
        ".cpu cortex-m55"
    };
}
#[cfg(all(core_attn_mve, not(core_attn_mve_directive)))]
macro_rules! mve_directive {
    () => {
        ""
    };
}
use core::num::NonZeroUsize;

mod m0;
// Test hooks (used by tests/variants.rs and the benchmarks), not part of the public API.
#[doc(hidden)]
pub use m0::{linear_m0_emulated, mulhi};
mod mve_emulated;
// Test hooks: the Helium kernels' host twin (used by tests/variants.rs).
#[doc(hidden)]
pub use mve_emulated::{linear_mve_emulated, requant_mve_form, vmladava_s8};
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
        #[cfg(not(core_attn_small))]
        let (ar, br) = {
            let (ac, bc) = (a[..n].chunks_exact(4), b[..n].chunks_exact(4));
            let (ar, br) = (ac.remainder(), bc.remainder());
            for (x, y) in ac.zip(bc) {
                let x = u32::from_le_bytes([x[0] as u8, x[1] as u8, x[2] as u8, x[3] as u8]);
                let y = u32::from_le_bytes([y[0] as u8, y[1] as u8, y[2] as u8, y[3] as u8]);
                acc = arm::smlad(arm::sxtb16(x), arm::sxtb16(y), acc);
                acc = arm::smlad(arm::sxtb16_ror8(x), arm::sxtb16_ror8(y), acc);
            }
            (ar, br)
        };
        // Size-first builds: array chunks (`as_chunks`), as out of line (opt-level "s") the
        // `chunks_exact` form keeps index checks and `Zip::new`'s length division, each a
        // panic path (see `tensor::zip_lazy`).
        #[cfg(core_attn_small)]
        let (ar, br) = {
            let ((ac, ar), (bc, br)) = (a[..n].as_chunks::<4>(), b[..n].as_chunks::<4>());
            for (&[x0, x1, x2, x3], &[y0, y1, y2, y3]) in ac.iter().zip(bc) {
                let x = u32::from_le_bytes([x0 as u8, x1 as u8, x2 as u8, x3 as u8]);
                let y = u32::from_le_bytes([y0 as u8, y1 as u8, y2 as u8, y3 as u8]);
                acc = arm::smlad(arm::sxtb16(x), arm::sxtb16(y), acc);
                acc = arm::smlad(arm::sxtb16_ror8(x), arm::sxtb16_ror8(y), acc);
            }
            (ar, br)
        };
        acc.wrapping_add(crate::linear::dot_i8(ar, br))
    }
    #[cfg(not(core_attn_dsp))]
    {
        crate::linear::dot_i8(a, b)
    }
}

/// Input widths with a fully unrolled `asm!` linear kernel (DSP and Helium); other widths up to
/// [`MAX_ANY_WIDTH`] use the looped kernels.
pub const DSP_WIDTHS: [usize; 4] = [16, 32, 64, 128];

/// Largest input width of the DSP kernels (size of the sign-extended input buffer).
const MAX_DSP_WIDTH: usize = 128;

/// Widest input of the looped `asm!` linear kernels (any width from 4 up to this one; the
/// sign-extended input buffer is on the stack: 4 bytes per input). Wider layers use
/// [`linear_portable`].
pub const MAX_ANY_WIDTH: usize = 512;

/// A linear layer's parameter slices, each cut to exactly the length its shape gives (`out·in`
/// weights, `out` biases, multipliers and shifts), with `in`, `out` nonzero and `2·in`, `2·out`
/// computed without overflow: what the kernels index, stated once so that the compiler sees
/// every access below it in bounds.
#[derive(Clone, Copy)]
struct Params<'a> {
    w: &'a [i8],
    bias: &'a [i32],
    mult: &'a [i32],
    shift: &'a [i8],
    inf: usize,
    outf: usize,
    /// `2·inf` (one token pair of inputs, one row pair of weights).
    inf2: NonZeroUsize,
    /// `2·outf` (one token pair of outputs).
    outf2: NonZeroUsize,
}

impl<'a> Params<'a> {
    /// Outputs (of `y`), weights, biases, multipliers and shifts of rows `from..`; `None` if
    /// `from > out` or `y` is shorter than `from`.
    #[allow(clippy::type_complexity)]
    #[inline(always)]
    fn rows_from<'y>(
        &self,
        y: &'y mut [i8],
        from: usize,
    ) -> Option<(&'y mut [i8], &'a [i8], &'a [i32], &'a [i32], &'a [i8])> {
        if from > self.outf {
            return None;
        }
        // `from·in ≤ out·in`, which `Parts::new` computed without overflow.
        Some((
            y.get_mut(from..)?,
            self.w.get(from * self.inf..)?,
            self.bias.get(from..)?,
            self.mult.get(from..)?,
            self.shift.get(from..)?,
        ))
    }
}

/// `a·b`, or `None` on overflow; without a 64-bit multiply (a library call on Armv6-M) when
/// both are below `2^16`.
#[inline(always)]
fn mul(a: usize, b: usize) -> Option<usize> {
    if (a | b) >> 16 == 0 {
        Some(a * b)
    } else {
        a.checked_mul(b)
    }
}

/// [`Params`] and the token rows: `rows·in` inputs, `rows·out` outputs.
struct Parts<'a, 'b> {
    x: &'b [i8],
    y: &'b mut [i8],
    p: Params<'a>,
}

impl<'a, 'b> Parts<'a, 'b> {
    /// `None` if a slice is too short for the shape or a size overflows: unreachable for the
    /// kernels' callers, which checked the shapes ([`Linear::run`] via `check_run`: exact
    /// lengths). The kernels return early (writing nothing) on `None`, after a `debug_assert!`.
    #[inline(always)]
    fn new(l: &Linear<'a>, input: &'b [i8], output: &'b mut [i8], rows: usize) -> Option<Self> {
        let (inf, outf) = (l.in_features, l.out_features);
        if inf == 0 || outf == 0 {
            return None;
        }
        let inf2 = NonZeroUsize::new(inf.checked_mul(2)?)?;
        let outf2 = NonZeroUsize::new(outf.checked_mul(2)?)?;
        Some(Parts {
            x: input.get(..mul(rows, inf)?)?,
            y: output.get_mut(..mul(rows, outf)?)?,
            p: Params {
                w: l.weights.get(..mul(outf, inf)?)?,
                bias: l.bias.get(..outf)?,
                mult: l.requant.multipliers.get(..outf)?,
                shift: l.requant.shifts.get(..outf)?,
                inf,
                outf,
                inf2,
                outf2,
            },
        })
    }
}

/// Outputs `from..` of one token outside the blocked passes (an odd last row, the rows after
/// the last block of 4): [`dot_i8`] (`SMLAD` where the target has it) and [`requant_i8`].
/// `x`: the token's inputs, `y`: its outputs.
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(never)]
fn tail_rows(p: &Params<'_>, x: &[i8], y: &mut [i8], from: usize, zp: i32) {
    let Some((y, mut w, b, m, s)) = p.rows_from(y, from) else {
        return;
    };
    for ((y, &b), (&m, &s)) in y.iter_mut().zip(b).zip(m.iter().zip(s)) {
        let Some((row, rest)) = w.split_at_checked(p.inf) else {
            break;
        };
        w = rest;
        *y = requant_i8(b.wrapping_add(dot_i8(x, row)), m, s, zp);
    }
}

/// Linear layer without activation, `rows` tokens: `output[t][o] = requant(bias + x·w)`.
/// Shapes are checked by the caller. Uses the DSP kernel where the target has it and the layer
/// qualifies ([`asm_requant_ok`], at most [`MAX_ANY_WIDTH`] inputs), the Armv6-M kernel on
/// Cortex-M0/M0+ (`dsp/m0.rs`, twin [`linear_m0_emulated`]), else [`linear_portable`].
#[inline(always)]
pub(crate) fn linear(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    #[cfg(core_attn_dsp)]
    {
        if arm::linear(l, input, output, rows) {
            return;
        }
    }
    #[cfg(core_attn_mve)]
    {
        if mve::linear(l, input, output, rows) {
            return;
        }
    }
    #[cfg(all(target_arch = "arm", core_attn_v6m))]
    {
        if m0::linear(l, input, output, rows) {
            return;
        }
    }
    #[cfg(all(core_attn_small, any(core_attn_dsp, core_attn_mve)))]
    linear_rows(l, input, output, rows);
    #[cfg(not(all(core_attn_small, any(core_attn_dsp, core_attn_mve))))]
    linear_portable(l, input, output, rows)
}

/// Size-first builds with DSP kernels (`cfg(core_attn_small)`): the layers the `asm!` passes
/// do not take go row by row ([`tail_rows`]: `SMLAD` dot products, the same bits as
/// [`linear_portable`]) instead of linking the blocked portable kernel for them too. Shapes
/// as [`linear_portable`] takes them (shorter slices: nothing written).
#[cfg(all(core_attn_small, any(core_attn_dsp, core_attn_mve)))]
fn linear_rows(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
        debug_assert!(false, "linear_rows: shapes not checked");
        return;
    };
    // `Parts::new` checked both widths non-zero.
    let (Some(inf), Some(outf)) = (NonZeroUsize::new(p.inf), NonZeroUsize::new(p.outf)) else {
        return;
    };
    let rows = crate::tensor::zip_lazy(x.chunks_exact(inf.get()), y.chunks_exact_mut(outf.get()));
    for (x, y) in rows {
        tail_rows(&p, x, y, 0, l.output_zero_point);
    }
}

/// Portable blocked linear kernel (2 output rows × 2 tokens per step, each loaded input and
/// weight used twice): plain Rust for targets without the DSP extension (Cortex-M0, host).
/// Shapes as [`Linear::run`] checks them (`input`: `rows·in`, `output`: `rows·out`); with
/// shorter slices it writes nothing (a `debug_assert!` in debug builds).
#[doc(hidden)] // test hook, not part of the public API
pub fn linear_portable(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
        debug_assert!(false, "linear_portable: shapes not checked");
        return;
    };
    let zp = l.output_zero_point;
    let inf = p.inf;
    let mut xs = x.chunks_exact(p.inf2.get());
    let mut ys = y.chunks_exact_mut(p.outf2.get());
    for (x01, y01) in (&mut xs).zip(&mut ys) {
        let Some((x0, x1)) = x01.split_at_checked(inf) else {
            return;
        };
        let Some((y0, y1)) = y01.split_at_mut_checked(p.outf) else {
            return;
        };
        portable_pair(&p, x0, x1, y0, y1, zp);
    }
    // An odd last token: the remainders are its inputs and outputs (or both empty).
    let x = xs.remainder();
    for ((((y, w), &b), &m), &s) in ys
        .into_remainder()
        .iter_mut()
        .zip(p.w.chunks_exact(inf))
        .zip(p.bias)
        .zip(p.mult)
        .zip(p.shift)
    {
        *y = requant_i8(b.wrapping_add(crate::linear::dot_i8(x, w)), m, s, zp);
    }
}

/// Every output of [`linear_portable`] for one token pair (inputs `x0`, `x1`, outputs `y0`,
/// `y1`), two rows at a time. Out of line: the inner loop then has the registers to itself.
#[inline(never)]
fn portable_pair(p: &Params<'_>, x0: &[i8], x1: &[i8], y0: &mut [i8], y1: &mut [i8], zp: i32) {
    let inf = p.inf;
    {
        let mut ws = p.w.chunks_exact(p.inf2.get());
        let mut bs = p.bias.chunks_exact(2);
        let mut ms = p.mult.chunks_exact(2);
        let mut ss = p.shift.chunks_exact(2);
        let mut y0s = y0.chunks_exact_mut(2);
        let mut y1s = y1.chunks_exact_mut(2);
        for (((w01, b), (m, s)), (ya, yb)) in (&mut ws)
            .zip(&mut bs)
            .zip((&mut ms).zip(&mut ss))
            .zip((&mut y0s).zip(&mut y1s))
        {
            let Some((w0, w1)) = w01.split_at_checked(inf) else {
                return;
            };
            let [a00, a01, a10, a11] = dot_2x2(x0, x1, w0, w1, [b[0], b[0], b[1], b[1]]);
            ya[0] = requant_i8(a00, m[0], s[0], zp);
            yb[0] = requant_i8(a01, m[0], s[0], zp);
            ya[1] = requant_i8(a10, m[1], s[1], zp);
            yb[1] = requant_i8(a11, m[1], s[1], zp);
        }
        // An odd last output row: the remainders are that one row (or all empty).
        if let ([ya], [yb], [b], [m], [s]) = (
            y0s.into_remainder(),
            y1s.into_remainder(),
            bs.remainder(),
            ms.remainder(),
            ss.remainder(),
        ) {
            let w = ws.remainder();
            *ya = requant_i8(b.wrapping_add(crate::linear::dot_i8(x0, w)), *m, *s, zp);
            *yb = requant_i8(b.wrapping_add(crate::linear::dot_i8(x1, w)), *m, *s, zp);
        }
    }
}

/// `acc + [x0·w0, x1·w0, x0·w1, x1·w1]` (wrapping), over the shortest of the four slices: the
/// inner loop of [`linear_portable`].
#[inline(always)]
fn dot_2x2(x0: &[i8], x1: &[i8], w0: &[i8], w1: &[i8], acc: [i32; 4]) -> [i32; 4] {
    let [mut a00, mut a01, mut a10, mut a11] = acc;
    let n = x0.len().min(x1.len()).min(w0.len()).min(w1.len());
    let (Some(x0), Some(x1), Some(w0), Some(w1)) =
        (x0.get(..n), x1.get(..n), w0.get(..n), w1.get(..n))
    else {
        return acc;
    };
    for i in 0..n {
        let (p, q) = (x0[i] as i32, x1[i] as i32);
        let (u, v) = (w0[i] as i32, w1[i] as i32);
        a00 = a00.wrapping_add(p * u);
        a01 = a01.wrapping_add(q * u);
        a10 = a10.wrapping_add(p * v);
        a11 = a11.wrapping_add(q * v);
    }
    [a00, a01, a10, a11]
}

/// Whether every output channel of `l` can use the `asm!` kernels' requantization
/// ([`requant_asm_form`]): right shift `31 − shift` in `33..=62` and an output zero point in
/// `-128..=127` (both always true for layers the packer writes; others take the portable path).
#[doc(hidden)] // test hook, not part of the public API
pub fn asm_requant_ok(l: &Linear<'_>) -> bool {
    let outf = l.out_features;
    if l.requant.shifts.len() < outf
        || l.requant.multipliers.len() < outf
        || l.bias.len() < outf
        || !(-128..=127).contains(&l.output_zero_point)
    {
        return false;
    }
    // Four shifts per word (SWAR), four words per step (LLVM does not unroll around `asm!`).
    let word = |c: &[i8]| u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
    let blocks = l.requant.shifts[..outf].chunks_exact(16);
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
        simd8::uqsub8(simd8::uadd8(w, 0x1f1f_1f1f), 0x1d1d_1d1d)
    }
    #[cfg(not(any(core_attn_dsp, core_attn_mve)))]
    {
        // Per-byte `u + 31` without carries between bytes, then per-byte `y ≥ 30` in bit 7.
        let y = ((w & 0x7f7f_7f7f) + 0x1f1f_1f1f) ^ (w & 0x8080_8080);
        (y | ((y & 0x7f7f_7f7f) + 0x6262_6262)) & 0x8080_8080
    }
}

/// The byte-parallel DSP instructions used by [`asm_requant_ok`].
#[cfg(any(core_attn_dsp, core_attn_mve))]
mod simd8 {
    use core::arch::asm;

    /// `UADD8`: per-byte wrapping add (sets the GE flags, nothing else).
    #[inline(always)]
    pub(super) fn uadd8(a: u32, b: u32) -> u32 {
        let r: u32;
        // SAFETY: a register operation.
        unsafe {
            asm!(dsp_directive!(), "uadd8 {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
                 options(pure, nomem, nostack));
        }
        r
    }

    /// `UQSUB8`: per-byte unsigned saturating subtract.
    #[inline(always)]
    pub(super) fn uqsub8(a: u32, b: u32) -> u32 {
        let r: u32;
        // SAFETY: a pure register operation.
        unsafe {
            asm!(dsp_directive!(), "uqsub8 {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
                 options(pure, nomem, nostack, preserves_flags));
        }
        r
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

/// The DSP linear algorithm with the instructions emulated ([`sxtb16`], [`smlad`],
/// [`requant_asm_form`]): same buffer layouts, blocking and requantization as the `asm!`
/// kernels, runnable on any host so that the suite in `tests/variants.rs` checks the algorithm
/// where the `asm!` cannot run: the unrolled kernels for [`DSP_WIDTHS`], the looped ones
/// (`linear_dsp_any_emulated`) for the other widths. Returns `false` (doing nothing) for
/// layers the DSP kernels do not handle (width outside `4..=`[`MAX_ANY_WIDTH`], or not
/// [`asm_requant_ok`]).
#[doc(hidden)] // test hook, not part of the public API
pub fn linear_dsp_emulated(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    let (inf, outf) = (l.in_features, l.out_features);
    if !asm_requant_ok(l) || !(4..=MAX_ANY_WIDTH).contains(&inf) {
        return false;
    }
    if !DSP_WIDTHS.contains(&inf) {
        linear_dsp_any_emulated(l, input, output, rows);
        return true;
    }
    let zp = l.output_zero_point;
    let rq = |o: usize, acc: i32| {
        requant_asm_form(acc, l.requant.multipliers[o], l.requant.shifts[o], zp)
    };
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
    while t + 2 <= rows {
        let x0 = &input[t * inf..(t + 1) * inf];
        let x1 = &input[(t + 1) * inf..(t + 2) * inf];
        extend_pair(x0, x1, &mut xbuf, |v| v);
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
            output[t * outf + o] = rq(o, a[0]);
            output[(t + 1) * outf + o] = rq(o, a[1]);
            output[t * outf + o + 1] = rq(o + 1, a[2]);
            output[(t + 1) * outf + o + 1] = rq(o + 1, a[3]);
            o += 2;
        }
        if o < outf {
            tail_row(l, input, output, t, o, zp);
            tail_row(l, input, output, t + 1, o, zp);
        }
        t += 2;
    }
    if t < rows {
        extend_one(&input[t * inf..(t + 1) * inf], &mut xbuf, |v| v);
        let mut o = 0;
        while o + 4 <= outf {
            let mut a = [l.bias[o], l.bias[o + 1], l.bias[o + 2], l.bias[o + 3]];
            for c in 0..inf / 4 {
                let (xe, xo) = (xbuf[2 * c], xbuf[2 * c + 1]);
                for (r, acc) in a.iter_mut().enumerate() {
                    let w = word(&l.weights[(o + r) * inf..], c);
                    *acc = smlad(xo, sxtb16_ror8(w), smlad(xe, sxtb16(w), *acc));
                }
            }
            for (r, &acc) in a.iter().enumerate() {
                output[t * outf + o + r] = rq(o + r, acc);
            }
            o += 4;
        }
        while o < outf {
            tail_row(l, input, output, t, o, zp);
            o += 1;
        }
    }
    true
}

/// The looped DSP passes (any width, `arm::run_any`) emulated: 4-input chunks then
/// `SMLABB`/`SMLATB` byte tails for token pairs, 8-input steps then `SMLABB` byte tails for
/// one token, the same buffers and requantization.
fn linear_dsp_any_emulated(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    let (inf, outf) = (l.in_features, l.out_features);
    let zp = l.output_zero_point;
    let rq = |o: usize, acc: i32| {
        requant_asm_form(acc, l.requant.multipliers[o], l.requant.shifts[o], zp)
    };
    let (c4, s8) = (inf / 4, inf / 8);
    let mut xbuf = [0u32; MAX_ANY_WIDTH + 8];
    let word = |s: &[i8], at: usize| {
        u32::from_le_bytes([
            s[at] as u8,
            s[at + 1] as u8,
            s[at + 2] as u8,
            s[at + 3] as u8,
        ])
    };
    // `SMLABB` / `SMLATB`: bottom or top signed half of `x` times the low half of `w`.
    let bot = |x: u32| x as u16 as i16 as i32;
    let top = |x: u32| (x >> 16) as u16 as i16 as i32;
    let mut t = 0;
    while t + 2 <= rows {
        let x0 = &input[t * inf..(t + 1) * inf];
        let x1 = &input[(t + 1) * inf..(t + 2) * inf];
        extend_pair(x0, x1, &mut xbuf, |v| v);
        let mut o = 0;
        while o + 2 <= outf {
            let mut a = [l.bias[o], l.bias[o], l.bias[o + 1], l.bias[o + 1]];
            for c in 0..c4 {
                let x = &xbuf[4 * c..4 * c + 4];
                for (r, pair_acc) in [(0usize, 0usize), (1, 2)] {
                    let w = word(&l.weights[(o + r) * inf..], 4 * c);
                    let (we, wo) = (sxtb16(w), sxtb16_ror8(w));
                    a[pair_acc] = smlad(x[1], wo, smlad(x[0], we, a[pair_acc]));
                    a[pair_acc + 1] = smlad(x[3], wo, smlad(x[2], we, a[pair_acc + 1]));
                }
            }
            for (j, &x) in xbuf.iter().enumerate().take(inf).skip(4 * c4) {
                for (r, pair_acc) in [(0usize, 0usize), (1, 2)] {
                    let w = l.weights[(o + r) * inf + j] as i32;
                    a[pair_acc] = a[pair_acc].wrapping_add(bot(x) * w);
                    a[pair_acc + 1] = a[pair_acc + 1].wrapping_add(top(x) * w);
                }
            }
            output[t * outf + o] = rq(o, a[0]);
            output[(t + 1) * outf + o] = rq(o, a[1]);
            output[t * outf + o + 1] = rq(o + 1, a[2]);
            output[(t + 1) * outf + o + 1] = rq(o + 1, a[3]);
            o += 2;
        }
        if o < outf {
            tail_row(l, input, output, t, o, zp);
            tail_row(l, input, output, t + 1, o, zp);
        }
        t += 2;
    }
    if t < rows {
        let x = &input[t * inf..(t + 1) * inf];
        extend_one(x, &mut xbuf, |v| v);
        let mut o = 0;
        while s8 > 0 && o + 4 <= outf {
            let mut a = [l.bias[o], l.bias[o + 1], l.bias[o + 2], l.bias[o + 3]];
            for (r, acc) in a.iter_mut().enumerate() {
                let row = &l.weights[(o + r) * inf..(o + r + 1) * inf];
                for s in 0..s8 {
                    let xs = &xbuf[4 * s..4 * s + 4];
                    let (w0, w1) = (word(row, 8 * s), word(row, 8 * s + 4));
                    *acc = smlad(xs[1], sxtb16_ror8(w0), smlad(xs[0], sxtb16(w0), *acc));
                    *acc = smlad(xs[3], sxtb16_ror8(w1), smlad(xs[2], sxtb16(w1), *acc));
                }
                for j in 8 * s8..inf {
                    *acc = acc.wrapping_add(bot(xbuf[4 * s8 + j - 8 * s8]) * row[j] as i32);
                }
            }
            for (r, &acc) in a.iter().enumerate() {
                output[t * outf + o + r] = rq(o + r, acc);
            }
            o += 4;
        }
        while o < outf {
            tail_row(l, input, output, t, o, zp);
            o += 1;
        }
    }
}

/// One tail input of a token pair as the looped pass reads it: token `t` sign-extended in the
/// low half, token `t + 1` in the high half.
#[inline(always)]
fn tail_pair(a: i8, b: i8) -> u32 {
    (a as i16 as u16 as u32) | ((b as i16 as u16 as u32) << 16)
}

/// `SXTB16` of `w` and of `w` rotated by 8: the instructions where the target has them.
#[inline(always)]
fn extend_word(w: u32) -> (u32, u32) {
    #[cfg(core_attn_dsp)]
    {
        (arm::sxtb16(w), arm::sxtb16_ror8(w))
    }
    #[cfg(not(core_attn_dsp))]
    {
        (sxtb16(w), sxtb16_ror8(w))
    }
}

/// Four int8 values as one little-endian word.
#[inline(always)]
fn word4(a: &[i8]) -> u32 {
    match *a {
        [a0, a1, a2, a3, ..] => u32::from_le_bytes([a0 as u8, a1 as u8, a2 as u8, a3 as u8]),
        _ => 0,
    }
}

/// Sign-extend two tokens' inputs into the interleaved 16-bit pair layout
/// `[x0|x2, x1|x3 of token t, x0|x2, x1|x3 of token t+1]` per 4-input chunk, then the last
/// `len mod 4` inputs one word each ([`tail_pair`]), storing `f(word)` into `buf`: all
/// `x0.len()` words when `x1` and `buf` are at least as long (it stops at the shortest).
#[inline(always)]
fn extend_pair<T>(x0: &[i8], x1: &[i8], buf: &mut [T], f: impl Fn(u32) -> T) {
    let (c0, c1) = (x0.chunks_exact(4), x1.chunks_exact(4));
    let (r0, r1) = (c0.remainder(), c1.remainder());
    let (head, tail) = buf.split_at_mut((x0.len() & !3).min(buf.len()));
    use crate::tensor::zip_lazy;
    for ((a, b), d) in zip_lazy(zip_lazy(c0, c1), head.chunks_exact_mut(4)) {
        let (ae, ao) = extend_word(word4(a));
        let (be, bo) = extend_word(word4(b));
        if let [d0, d1, d2, d3] = d {
            *d0 = f(ae);
            *d1 = f(ao);
            *d2 = f(be);
            *d3 = f(bo);
        }
    }
    for ((d, &a), &b) in tail.iter_mut().zip(r0).zip(r1) {
        *d = f(tail_pair(a, b));
    }
}

/// Sign-extend one token's inputs: `[x0|x2, x1|x3, x4|x6, x5|x7]` per 8-input step, then the
/// last `len mod 8` inputs one word each (sign-extended), storing `f(word)` into `buf`:
/// `4·⌊len/8⌋ + len mod 8` words when `buf` is at least that long (it stops at the shortest).
#[inline(always)]
fn extend_one<T>(x: &[i8], buf: &mut [T], f: impl Fn(u32) -> T) {
    let steps = x.chunks_exact(8);
    let rest = steps.remainder();
    let (head, tail) = buf.split_at_mut((4 * (x.len() / 8)).min(buf.len()));
    for (a, d) in crate::tensor::zip_lazy(steps, head.chunks_exact_mut(4)) {
        let (e0, o0) = extend_word(word4(a));
        let (e1, o1) = extend_word(word4(a.get(4..).unwrap_or_default()));
        if let [d0, d1, d2, d3] = d {
            *d0 = f(e0);
            *d1 = f(o0);
            *d2 = f(e1);
            *d3 = f(o1);
        }
    }
    for (d, &v) in tail.iter_mut().zip(rest) {
        *d = f(v as i32 as u32);
    }
}

/// One output of one token, outside the blocked passes (odd rows): [`dot_i8`] (`SMLAD` where
/// the target has it) and [`requant_i8`]. For the host twins ([`linear_dsp_emulated`]; they
/// index, and may panic on shapes the caller did not check); the device paths use `tail_rows`.
#[inline(never)]
fn tail_row(l: &Linear<'_>, input: &[i8], output: &mut [i8], t: usize, o: usize, zp: i32) {
    let inf = l.in_features;
    let acc = l.bias[o].wrapping_add(dot_i8(
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
    use core::mem::MaybeUninit;

    /// One `SMLAD` instruction.
    #[inline(always)]
    pub(super) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let r: i32;
        // SAFETY: a pure register operation.
        unsafe {
            asm!(dsp_directive!(), "smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
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
            asm!(dsp_directive!(), "sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
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
            asm!(dsp_directive!(), "sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
                 options(pure, nomem, nostack, preserves_flags));
        }
        r
    }

    /// Loop state of [`pass_2x2`], copied onto the stack by the `asm!` (read with one `LDM`,
    /// the three moving pointers written back with one `STM`).
    #[repr(C)]
    struct Frame2 {
        mult: *const i32,
        shift: *const i8,
        y: *mut i8,
        outf: usize,
        c: i32,
        end_w: *const i8,
    }

    /// Every row pair for tokens `t`, `t + 1` (interleaved buffer, see the module docs): bias,
    /// 2 × 2 dot products and the requantization ([`requant_asm_form`]), in one `asm!` loop.
    ///
    /// Registers: `r0..r3` accumulators, `r4..r7` the LDM'd inputs, `r8`/`r9` one weight word of
    /// each row (loaded back to back), `r10` the extended half, `r11` input pointer, `r12`
    /// weights, `lr` bias. `r6`/`r7` (which `asm!` operands may not name) are saved and restored
    /// inside the block.
    ///
    /// # Safety
    /// `xbuf`: `IN` aligned words; `w .. f.end_w`: whole row pairs of `IN`-byte rows (at least
    /// one); `bias`, `f.mult`: 4-byte aligned, one entry per row; `f.shift`: one per row, each
    /// in `-31..=-2`; `f.y`: row `t` of the output, `f.outf` bytes per token, two tokens,
    /// writable; `f.c = 2·zp + 1` with `zp ∈ -128..=127`.
    #[inline(always)]
    unsafe fn pass_2x2<const IN: usize>(
        f: &Frame2,
        xbuf: *const u32,
        w: *const i8,
        bias: *const i32,
    ) {
        // SAFETY: see the function's contract. The frame is copied below the two saved
        // registers and popped on exit (the stack is balanced); every other register written is
        // declared. Unaligned single LDR is allowed on Armv7E-M / Armv8-M Mainline.
        unsafe {
            asm!(dsp_directive!(),
                "push {{r6, r7}}",
                "ldm r0, {{r4, r5, r6, r7, r8, r9}}",
                "push {{r4, r5, r6, r7, r8, r9}}",
                "2:",
                "ldrd r0, r2, [lr], #8",
                // First chunk: the token-1 accumulators start from the token-0 bias.
                "ldm r11!, {{r4, r5, r6, r7}}",
                "ldr r8, [r12], #4",
                "ldr r9, [r12, #{off}]",
                "sxtb16 r10, r8",
                "smlad r1, r6, r10, r0",
                "smlad r0, r4, r10, r0",
                "sxtb16 r8, r8, ror #8",
                "smlad r0, r5, r8, r0",
                "smlad r1, r7, r8, r1",
                "sxtb16 r10, r9",
                "smlad r3, r6, r10, r2",
                "smlad r2, r4, r10, r2",
                "sxtb16 r9, r9, ror #8",
                "smlad r2, r5, r9, r2",
                "smlad r3, r7, r9, r3",
                ".rept {n1}",
                "ldm r11!, {{r4, r5, r6, r7}}",
                "ldr r8, [r12], #4",
                "ldr r9, [r12, #{off}]",
                "sxtb16 r10, r8",
                "smlad r0, r4, r10, r0",
                "smlad r1, r6, r10, r1",
                "sxtb16 r8, r8, ror #8",
                "smlad r0, r5, r8, r0",
                "smlad r1, r7, r8, r1",
                "sxtb16 r10, r9",
                "smlad r2, r4, r10, r2",
                "smlad r3, r6, r10, r3",
                "sxtb16 r9, r9, ror #8",
                "smlad r2, r5, r9, r2",
                "smlad r3, r7, r9, r3",
                ".endr",
                "add r12, r12, #{inf}",
                "sub r11, r11, #{xb}",
                // Requantize: r4 mult, r5 shift, r6 y, r7 outf, r8 c, r9 end.
                "ldm sp, {{r4, r5, r6, r7, r8, r9}}",
                "cmp r12, r9",
                "ldrsb r9, [r5], #1",
                "ldr r10, [r4], #4",
                "smmul r0, r0, r10",
                "smmul r1, r1, r10",
                "rsb r9, r9, #254",
                "asr r0, r0, r9",
                "asr r1, r1, r9",
                "add r0, r0, r8",
                "add r1, r1, r8",
                "ssat r0, #8, r0, asr #1",
                "ssat r1, #8, r1, asr #1",
                "ldrsb r9, [r5], #1",
                "ldr r10, [r4], #4",
                "strb r1, [r6, r7]",
                "strb r0, [r6], #1",
                "smmul r2, r2, r10",
                "smmul r3, r3, r10",
                "rsb r9, r9, #254",
                "asr r2, r2, r9",
                "asr r3, r3, r9",
                "add r2, r2, r8",
                "add r3, r3, r8",
                "ssat r2, #8, r2, asr #1",
                "ssat r3, #8, r3, asr #1",
                "strb r3, [r6, r7]",
                "strb r2, [r6], #1",
                "stm sp, {{r4, r5, r6}}",
                "bne 2b",
                "add sp, sp, #24",
                "pop {{r6, r7}}",
                n1 = const IN / 4 - 1,
                off = const IN - 4,
                inf = const IN,
                xb = const 4 * IN,
                inout("r0") f as *const Frame2 => _,
                out("r1") _,
                out("r2") _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                inout("r11") xbuf => _,
                inout("r12") w => _,
                inout("lr") bias => _,
            );
        }
    }

    /// Loop state of [`pass_4x1`], copied onto the stack by the `asm!`. The multipliers and
    /// outputs are reached from the bias and shift pointers (`dm`, `dy`: byte distances), so
    /// only the shift pointer moves; `k = 0xFEFE_FEFE` turns 4 shifts into 4 right shifts
    /// `−2 − shift` with one `USUB8`.
    #[repr(C)]
    struct Frame1 {
        dm: u32,
        shift: *const i8,
        dy: u32,
        c: i32,
        k: u32,
        end_w: *const i8,
        xbase: *const u32,
        pad: u32,
    }

    /// Every block of 4 rows for one token (one-token buffer `[x0|x2, x1|x3]` per 4 inputs):
    /// bias (`LDM`), 4 dot products 8 inputs at a time (`LDM` of 4 input words, then per row one
    /// `LDRD` of 8 weight bytes, 4 `SXTB16`, 4 `SMLAD`) and the requantization (`LDM` of the 4
    /// multipliers, one word of 4 shifts, then `SMMUL`, `ASR`, `ADD`, `SSAT` per row), in one
    /// `asm!` loop.
    ///
    /// # Safety
    /// `f.xbase`: `IN / 2` aligned words; `w .. f.end_w`: whole blocks of 4 rows of `IN` bytes
    /// (at least one), `w` 4-byte aligned (`LDRD`); `bias` and `bias + f.dm`: 4-byte aligned
    /// multiplier-sized entries, one per row; `f.shift`: one per row, each in `-31..=-2`
    /// (read 4 at a time, unaligned); `f.shift + f.dy`: one writable byte per row;
    /// `f.c = 2·zp + 1` with `zp ∈ -128..=127`; `f.k = 0xFEFE_FEFE`.
    #[inline(always)]
    unsafe fn pass_4x1<const IN: usize>(f: &Frame1, w: *const i8, bias: *const i32) {
        // SAFETY: see the function's contract and `pass_2x2`. `USUB8` only sets the GE flags,
        // so the `CMP` result reaches the `BNE`.
        unsafe {
            asm!(dsp_directive!(),
                "push {{r6, r7}}",
                "ldm r0, {{r1, r2, r3, r4, r5, r8, r9, r10}}",
                "push {{r1, r2, r3, r4, r5, r8, r9, r10}}",
                "mov r11, r9",
                "2:",
                "ldm lr!, {{r0, r1, r2, r3}}",
                ".rept {n}",
                "ldm r11!, {{r4, r5, r6, r7}}",
                "ldrd r8, r9, [r12], #8",
                "sxtb16 r10, r8",
                "smlad r0, r4, r10, r0",
                "sxtb16 r8, r8, ror #8",
                "smlad r0, r5, r8, r0",
                "sxtb16 r10, r9",
                "smlad r0, r6, r10, r0",
                "sxtb16 r9, r9, ror #8",
                "smlad r0, r7, r9, r0",
                "ldrd r8, r9, [r12, #{o1}]",
                "sxtb16 r10, r8",
                "smlad r1, r4, r10, r1",
                "sxtb16 r8, r8, ror #8",
                "smlad r1, r5, r8, r1",
                "sxtb16 r10, r9",
                "smlad r1, r6, r10, r1",
                "sxtb16 r9, r9, ror #8",
                "smlad r1, r7, r9, r1",
                "ldrd r8, r9, [r12, #{o2}]",
                "sxtb16 r10, r8",
                "smlad r2, r4, r10, r2",
                "sxtb16 r8, r8, ror #8",
                "smlad r2, r5, r8, r2",
                "sxtb16 r10, r9",
                "smlad r2, r6, r10, r2",
                "sxtb16 r9, r9, ror #8",
                "smlad r2, r7, r9, r2",
                "ldrd r8, r9, [r12, #{o3}]",
                "sxtb16 r10, r8",
                "smlad r3, r4, r10, r3",
                "sxtb16 r8, r8, ror #8",
                "smlad r3, r5, r8, r3",
                "sxtb16 r10, r9",
                "smlad r3, r6, r10, r3",
                "sxtb16 r9, r9, ror #8",
                "smlad r3, r7, r9, r3",
                ".endr",
                "add r12, r12, #{skip}",
                // r4 dm, r5 shift, r6 dy, r7 c, r8 k, r9 end.
                "ldm sp, {{r4, r5, r6, r7, r8, r9}}",
                "cmp r12, r9",
                "ldr r9, [r5], #4",
                "usub8 r9, r8, r9",
                "add r4, lr, r4",
                "ldm r4, {{r4, r8, r10, r11}}",
                "add r6, r5, r6",
                "smmul r0, r0, r4",
                "asr r0, r0, r9",
                "add r0, r0, r7",
                "ssat r0, #8, r0, asr #1",
                "lsr r9, r9, #8",
                "smmul r1, r1, r8",
                "asr r1, r1, r9",
                "add r1, r1, r7",
                "ssat r1, #8, r1, asr #1",
                "lsr r9, r9, #8",
                "smmul r2, r2, r10",
                "asr r2, r2, r9",
                "add r2, r2, r7",
                "ssat r2, #8, r2, asr #1",
                "lsr r9, r9, #8",
                "smmul r3, r3, r11",
                "asr r3, r3, r9",
                "add r3, r3, r7",
                "ssat r3, #8, r3, asr #1",
                "strb r0, [r6]",
                "strb r1, [r6, #1]",
                "strb r2, [r6, #2]",
                "strb r3, [r6, #3]",
                "str r5, [sp, #4]",
                "ldr r11, [sp, #24]",
                "bne 2b",
                "add sp, sp, #32",
                "pop {{r6, r7}}",
                n = const IN / 8,
                o1 = const IN - 8,
                o2 = const 2 * IN - 8,
                o3 = const 3 * IN - 8,
                skip = const 3 * IN,
                inout("r0") f as *const Frame1 => _,
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
                inout("lr") bias => _,
            );
        }
    }

    /// Loop state of [`pass_2x2_any`], copied onto the stack by the `asm!` (offsets in the
    /// comments; the requantization reads the first six with one `LDM`).
    #[repr(C)]
    struct FrameA2 {
        /// `[sp]` multipliers (moves).
        mult: *const i32,
        /// `[sp, #4]` shifts (moves).
        shift: *const i8,
        /// `[sp, #8]` outputs of token `t` (moves; token `t + 1` at `+ outf`).
        y: *mut i8,
        /// `[sp, #12]`.
        outf: usize,
        /// `[sp, #16]` `2·zp + 1`.
        c: i32,
        /// `[sp, #20]` row 0 of the first row pair not computed.
        end_w: *const i8,
        /// `[sp, #24]` biases (moves).
        bias: *const i32,
        /// `[sp, #28]` start of the input buffer.
        xbase: *const u32,
        /// `[sp, #32]` end of the buffer's 4-input chunks.
        xend: *const u32,
        /// `[sp, #36]` end of its byte tail.
        xtail: *const u32,
        /// `[sp, #40]` byte offset of the first chunk run in the 8-chunk loop body.
        entry: u32,
        pad: u32,
    }

    /// Every row pair for tokens `t`, `t + 1`, any input width `IN ≥ 4` (runtime): the
    /// 15-instruction chunk of [`pass_2x2`] (row 1 through a register offset, `lr = IN − 4`)
    /// in a loop of 8 chunks entered part-way for `IN/4 mod 8` (each chunk is 60 bytes of 32-bit
    /// encodings), then the last `IN mod 4` inputs one at a time (`LDRSB` of both rows,
    /// `SMLABB`/`SMLATB` with the tokens' inputs as the halves of one word), then the
    /// requantization of [`pass_2x2`].
    ///
    /// # Safety
    /// `f.xbase`: `4·(IN/4)` words of the interleaved layout, then `IN mod 4` tail words
    /// (token `t` in the low half, `t + 1` in the high half, each sign-extended), ending at
    /// `f.xtail`, `f.xend` after the chunks; `IN ≥ 4`; `f.entry = 60·((8 − (IN/4) mod 8) mod 8)`;
    /// `w .. f.end_w`: whole row pairs of `IN`-byte rows (at least one), any alignment;
    /// `f.bias`, `f.mult`: 4-byte aligned, one entry per row; `f.shift`: one per row, each in
    /// `-31..=-2`; `f.y`: row `t` of the output, `f.outf` bytes per token, two tokens, writable;
    /// `f.c = 2·zp + 1` with `zp ∈ -128..=127`.
    #[inline(never)]
    unsafe fn pass_2x2_any(f: &FrameA2, w: *const i8, inf: usize) {
        // SAFETY: see the function's contract and `pass_2x2`; the computed branch lands on a
        // chunk boundary of the loop body (every instruction there has a 32-bit encoding).
        unsafe {
            asm!(dsp_directive!(),
                "push {{r6, r7}}",
                "ldm r0!, {{r4, r5, r6, r7, r8, r9}}",
                "ldm r0, {{r0, r1, r2, r3, r10, r11}}",
                "push {{r0, r1, r2, r3, r10, r11}}",
                "push {{r4, r5, r6, r7, r8, r9}}",
                "sub lr, lr, #4",
                "2:",
                "ldr r10, [sp, #24]",
                "ldrd r0, r2, [r10], #8",
                "str r10, [sp, #24]",
                "ldr r11, [sp, #28]",
                "mov r1, r0",
                "mov r3, r2",
                "ldr r10, [sp, #40]",
                "add pc, r10",
                "nop",
                "3:",
                ".rept 8",
                "ldm.w r11!, {{r4, r5, r6, r7}}",
                "ldr.w r8, [r12], #4",
                "ldr.w r9, [r12, lr]",
                "sxtb16 r10, r8",
                "smlad r0, r4, r10, r0",
                "smlad r1, r6, r10, r1",
                "sxtb16 r8, r8, ror #8",
                "smlad r0, r5, r8, r0",
                "smlad r1, r7, r8, r1",
                "sxtb16 r10, r9",
                "smlad r2, r4, r10, r2",
                "smlad r3, r6, r10, r3",
                "sxtb16 r9, r9, ror #8",
                "smlad r2, r5, r9, r2",
                "smlad r3, r7, r9, r3",
                ".endr",
                "ldr r10, [sp, #32]",
                "cmp r11, r10",
                "bne 3b",
                // Byte tail: r5 its end, r10 row 1.
                "ldr r5, [sp, #36]",
                "cmp r11, r5",
                "beq 5f",
                "add r10, r12, lr",
                "add r10, r10, #4",
                "4:",
                "ldr r4, [r11], #4",
                "ldrsb r8, [r12], #1",
                "ldrsb r9, [r10], #1",
                "smlabb r0, r4, r8, r0",
                "smlatb r1, r4, r8, r1",
                "smlabb r2, r4, r9, r2",
                "smlatb r3, r4, r9, r3",
                "cmp r11, r5",
                "bne 4b",
                "5:",
                // r12 = row 1: skip it.
                "add r12, r12, lr",
                "add r12, r12, #4",
                // Requantize: r4 mult, r5 shift, r6 y, r7 outf, r8 c, r9 end.
                "ldm sp, {{r4, r5, r6, r7, r8, r9}}",
                "cmp r12, r9",
                "ldrsb r9, [r5], #1",
                "ldr r10, [r4], #4",
                "smmul r0, r0, r10",
                "smmul r1, r1, r10",
                "rsb r9, r9, #254",
                "asr r0, r0, r9",
                "asr r1, r1, r9",
                "add r0, r0, r8",
                "add r1, r1, r8",
                "ssat r0, #8, r0, asr #1",
                "ssat r1, #8, r1, asr #1",
                "ldrsb r9, [r5], #1",
                "ldr r10, [r4], #4",
                "strb r1, [r6, r7]",
                "strb r0, [r6], #1",
                "smmul r2, r2, r10",
                "smmul r3, r3, r10",
                "rsb r9, r9, #254",
                "asr r2, r2, r9",
                "asr r3, r3, r9",
                "add r2, r2, r8",
                "add r3, r3, r8",
                "ssat r2, #8, r2, asr #1",
                "ssat r3, #8, r3, asr #1",
                "strb r3, [r6, r7]",
                "strb r2, [r6], #1",
                "stm sp, {{r4, r5, r6}}",
                "bne 2b",
                "add sp, sp, #48",
                "pop {{r6, r7}}",
                inout("r0") f as *const FrameA2 => _,
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
                inout("lr") inf => _,
            );
        }
    }

    /// Loop state of [`pass_4x1_any`], copied onto the stack by the `asm!`.
    #[repr(C)]
    struct FrameA1 {
        /// `[sp]` multipliers (moves).
        mult: *const i32,
        /// `[sp, #4]` shifts (moves).
        shift: *const i8,
        /// `[sp, #8]` outputs (moves).
        y: *mut i8,
        /// `[sp, #12]` `2·zp + 1`.
        c: i32,
        /// `[sp, #16]` `0xFEFE_FEFE` (see [`pass_4x1`]).
        k: u32,
        /// `[sp, #20]` row 0 of the first block not computed.
        end_w: *const i8,
        /// `[sp, #24]` start of the input buffer.
        xbase: *const u32,
        /// `[sp, #28]` biases (moves).
        bias: *const i32,
        /// `[sp, #32]` end of the buffer's 8-input steps.
        xend: *const u32,
        /// `[sp, #36]` end of its byte tail.
        xtail: *const u32,
        /// `[sp, #40]` byte offset of the first step run in the 4-step loop body.
        entry: u32,
        pad: u32,
    }

    /// Every block of 4 rows for one token, any input width `IN ≥ 8` (runtime): 8 inputs per
    /// step (`LDM` of 4 input words, then per row two `LDR` of 4 weight bytes, rows 1 and 3
    /// through the register offset `lr = IN` from rows 0 and 2), in a loop of 4 steps entered
    /// part-way for `IN/8 mod 4` (each step is 164 bytes of 32-bit encodings), then the last
    /// `IN mod 8` inputs one at a time (`LDRSB` of each row, `SMLABB`), then the requantization
    /// of [`pass_4x1`].
    ///
    /// # Safety
    /// `f.xbase`: `4·(IN/8)` words of the one-token layout, ending at `f.xend`, then `IN mod 8`
    /// words of the remaining inputs (sign-extended), ending at `f.xtail`; `IN ≥ 8`;
    /// `f.entry = 164·((4 − (IN/8) mod 4) mod 4)`; `w .. f.end_w`: whole blocks of 4 rows of
    /// `IN` bytes (at least one), any alignment; `f.bias`, `f.mult`: 4-byte aligned, one entry
    /// per row; `f.shift`: one per row, each in `-31..=-2` (read 4 at a time, unaligned);
    /// `f.y`: one writable byte per row; `f.c = 2·zp + 1`, `zp ∈ -128..=127`;
    /// `f.k = 0xFEFE_FEFE`.
    #[inline(never)]
    unsafe fn pass_4x1_any(f: &FrameA1, w: *const i8, inf: usize) {
        // SAFETY: as `pass_2x2_any`.
        unsafe {
            asm!(dsp_directive!(),
                "push {{r6, r7}}",
                "ldm r0!, {{r4, r5, r6, r7, r8, r9}}",
                "ldm r0, {{r0, r1, r2, r3, r10, r11}}",
                "push {{r0, r1, r2, r3, r10, r11}}",
                "push {{r4, r5, r6, r7, r8, r9}}",
                "2:",
                "ldr r10, [sp, #28]",
                "ldm r10!, {{r0, r1, r2, r3}}",
                "str r10, [sp, #28]",
                "ldr r11, [sp, #24]",
                "add r9, r12, lr, lsl #1",
                "ldr r10, [sp, #40]",
                "add pc, r10",
                "nop",
                "3:",
                ".rept 4",
                "ldm.w r11!, {{r4, r5, r6, r7}}",
                "ldr.w r8, [r12, lr]",
                "sxtb16 r10, r8",
                "smlad r1, r4, r10, r1",
                "sxtb16 r8, r8, ror #8",
                "smlad r1, r5, r8, r1",
                "ldr.w r8, [r9, lr]",
                "sxtb16 r10, r8",
                "smlad r3, r4, r10, r3",
                "sxtb16 r8, r8, ror #8",
                "smlad r3, r5, r8, r3",
                "ldr.w r8, [r12], #4",
                "sxtb16 r10, r8",
                "smlad r0, r4, r10, r0",
                "sxtb16 r8, r8, ror #8",
                "smlad r0, r5, r8, r0",
                "ldr.w r8, [r9], #4",
                "sxtb16 r10, r8",
                "smlad r2, r4, r10, r2",
                "sxtb16 r8, r8, ror #8",
                "smlad r2, r5, r8, r2",
                "ldr.w r8, [r12, lr]",
                "sxtb16 r10, r8",
                "smlad r1, r6, r10, r1",
                "sxtb16 r8, r8, ror #8",
                "smlad r1, r7, r8, r1",
                "ldr.w r8, [r9, lr]",
                "sxtb16 r10, r8",
                "smlad r3, r6, r10, r3",
                "sxtb16 r8, r8, ror #8",
                "smlad r3, r7, r8, r3",
                "ldr.w r8, [r12], #4",
                "sxtb16 r10, r8",
                "smlad r0, r6, r10, r0",
                "sxtb16 r8, r8, ror #8",
                "smlad r0, r7, r8, r0",
                "ldr.w r8, [r9], #4",
                "sxtb16 r10, r8",
                "smlad r2, r6, r10, r2",
                "sxtb16 r8, r8, ror #8",
                "smlad r2, r7, r8, r2",
                ".endr",
                "ldr r10, [sp, #32]",
                "cmp r11, r10",
                "bne 3b",
                // Byte tail: r6 its end, r10 row 1, r5 row 3.
                "ldr r6, [sp, #36]",
                "cmp r11, r6",
                "beq 5f",
                "add r10, r12, lr",
                "add r5, r9, lr",
                "4:",
                "ldr r4, [r11], #4",
                "ldrsb r8, [r12], #1",
                "smlabb r0, r4, r8, r0",
                "ldrsb r8, [r10], #1",
                "smlabb r1, r4, r8, r1",
                "ldrsb r8, [r9], #1",
                "smlabb r2, r4, r8, r2",
                "ldrsb r8, [r5], #1",
                "smlabb r3, r4, r8, r3",
                "cmp r11, r6",
                "bne 4b",
                "5:",
                // r12 = row 1: skip rows 1..3.
                "add r12, r12, lr, lsl #1",
                "add r12, r12, lr",
                // r4 mult, r5 shift, r6 y, r7 c, r8 k, r9 end.
                "ldm sp, {{r4, r5, r6, r7, r8, r9}}",
                "cmp r12, r9",
                "ldr r9, [r5], #4",
                "usub8 r9, r8, r9",
                "ldm r4!, {{r8, r10, r11}}",
                "smmul r0, r0, r8",
                "asr r0, r0, r9",
                "add r0, r0, r7",
                "ssat r0, #8, r0, asr #1",
                "lsr r9, r9, #8",
                "smmul r1, r1, r10",
                "asr r1, r1, r9",
                "add r1, r1, r7",
                "ssat r1, #8, r1, asr #1",
                "lsr r9, r9, #8",
                "smmul r2, r2, r11",
                "asr r2, r2, r9",
                "add r2, r2, r7",
                "ssat r2, #8, r2, asr #1",
                "ldr r8, [r4], #4",
                "lsr r9, r9, #8",
                "smmul r3, r3, r8",
                "asr r3, r3, r9",
                "add r3, r3, r7",
                "ssat r3, #8, r3, asr #1",
                "strb r0, [r6], #1",
                "strb r1, [r6], #1",
                "strb r2, [r6], #1",
                "strb r3, [r6], #1",
                "stm sp, {{r4, r5, r6}}",
                "bne 2b",
                "add sp, sp, #48",
                "pop {{r6, r7}}",
                inout("r0") f as *const FrameA1 => _,
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
                inout("lr") inf => _,
            );
        }
    }

    /// Any width `4..=`[`MAX_ANY_WIDTH`] (runtime) with the looped passes; `CAP` words of
    /// input buffer (at least `IN + 8`). `false` (nothing written) if the width does not fit
    /// `CAP` or the slices are shorter than the shapes (unreachable: the caller checked them).
    #[inline(never)]
    fn run_any<const CAP: usize>(
        l: &Linear<'_>,
        input: &[i8],
        output: &mut [i8],
        rows: usize,
    ) -> bool {
        let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
            debug_assert!(false, "arm::run_any: shapes not checked");
            return false;
        };
        let (inf, outf) = (p.inf, p.outf);
        let zp = l.output_zero_point;
        if !(4..=CAP - 8).contains(&inf) {
            return false;
        }
        let c = 2 * zp + 1;
        let (c4, s8) = (inf / 4, inf / 8);
        // The words the passes read are written below before each pass.
        let mut xbuf = [MaybeUninit::<u32>::uninit(); CAP];
        let w = p.w.as_ptr();
        let mut xs = x.chunks_exact(p.inf2.get());
        let mut ys = y.chunks_exact_mut(p.outf2.get());
        for (x01, y01) in (&mut xs).zip(&mut ys) {
            let Some((x0, x1)) = x01.split_at_checked(inf) else {
                return false;
            };
            extend_pair(x0, x1, &mut xbuf, MaybeUninit::new);
            let pairs = outf / 2;
            if pairs > 0 {
                let base = xbuf.as_ptr().cast::<u32>();
                let f = FrameA2 {
                    mult: p.mult.as_ptr(),
                    shift: p.shift.as_ptr(),
                    y: y01.as_mut_ptr(),
                    outf,
                    c,
                    // SAFETY: within `w` (2·pairs ≤ outf rows of inf bytes).
                    end_w: unsafe { w.add(2 * pairs * inf) },
                    bias: p.bias.as_ptr(),
                    xbase: base,
                    // SAFETY: within `xbuf` (inf ≤ CAP words).
                    xend: unsafe { base.add(4 * c4) },
                    // SAFETY: as above.
                    xtail: unsafe { base.add(inf) },
                    entry: 60 * ((8 - c4 % 8) % 8) as u32,
                    pad: 0,
                };
                // SAFETY: `x0`, `x1` are inf bytes each, so `extend_pair` wrote the 4·c4 chunk
                // words and the inf − 4·c4 tail words of `xbuf` (inf ≤ CAP); rows 0..2·pairs of
                // inf bytes are in `w` (outf·inf bytes); `bias`, `mult` are i32 slices and
                // `shift` an i8 slice of outf entries, shifts in -31..=-2 and zp in -128..=127
                // (`asm_requant_ok`, checked by the caller); `y01` is rows t, t+1 of the output
                // (2·outf bytes).
                unsafe { pass_2x2_any(&f, w, inf) };
            }
            if outf % 2 == 1 {
                let Some((y0, y1)) = y01.split_at_mut_checked(outf) else {
                    return false;
                };
                tail_rows(&p, x0, y0, outf - 1, zp);
                tail_rows(&p, x1, y1, outf - 1, zp);
            }
        }
        // An odd last token: the remainders are its inf inputs and outf outputs.
        let (x, y) = (xs.remainder(), ys.into_remainder());
        if x.len() == inf && y.len() == outf {
            let blocks = if s8 > 0 { outf / 4 } else { 0 };
            if blocks > 0 {
                extend_one(x, &mut xbuf, MaybeUninit::new);
                let base = xbuf.as_ptr().cast::<u32>();
                let f = FrameA1 {
                    mult: p.mult.as_ptr(),
                    shift: p.shift.as_ptr(),
                    y: y.as_mut_ptr(),
                    c,
                    k: 0xfefe_fefe,
                    // SAFETY: within `w` (4·blocks ≤ outf rows of inf bytes).
                    end_w: unsafe { w.add(4 * blocks * inf) },
                    xbase: base,
                    bias: p.bias.as_ptr(),
                    // SAFETY: within `xbuf` (4·s8 + inf mod 8 ≤ inf ≤ CAP words).
                    xend: unsafe { base.add(4 * s8) },
                    // SAFETY: as above.
                    xtail: unsafe { base.add(4 * s8 + inf % 8) },
                    entry: 164 * ((4 - s8 % 4) % 4) as u32,
                    pad: 0,
                };
                // SAFETY: `x` is inf bytes, so `extend_one` wrote the 4·s8 step words and the
                // inf mod 8 tail words of `xbuf`; rows 0..4·blocks of inf bytes are in `w`;
                // `bias`, `mult` are i32 slices and `shift` an i8 slice of outf entries, shifts
                // in -31..=-2 and zp in -128..=127 (`asm_requant_ok`, checked by the caller);
                // `y` is the token's outf outputs.
                unsafe { pass_4x1_any(&f, w, inf) };
            }
            if 4 * blocks < outf {
                tail_rows(&p, x, y, 4 * blocks, zp);
            }
        }
        true
    }

    pub(super) fn linear(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        // LDRD (unrolled decode pass) needs aligned weights; blob sections are 16-byte
        // aligned. Other widths and alignments take the looped passes.
        if l.weights.as_ptr() as usize % 4 != 0 {
            return linear_any(l, input, output, rows);
        }
        if !asm_requant_ok(l) {
            return false;
        }
        // Size-first builds keep only the looped passes (same bits).
        #[cfg(core_attn_small)]
        return any_width(l, input, output, rows);
        #[cfg(not(core_attn_small))]
        match l.in_features {
            16 => run::<16>(l, input, output, rows),
            32 => run::<32>(l, input, output, rows),
            64 => run::<64>(l, input, output, rows),
            128 => run::<128>(l, input, output, rows),
            _ => any_width(l, input, output, rows),
        }
    }

    /// The looped passes, if the layer qualifies.
    fn linear_any(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        asm_requant_ok(l) && any_width(l, input, output, rows)
    }

    /// The looped passes for a layer that is [`asm_requant_ok`], if its width qualifies.
    #[inline(never)]
    fn any_width(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        match l.in_features {
            #[cfg(not(core_attn_small))]
            4..=128 => run_any::<{ 128 + 8 }>(l, input, output, rows),
            #[cfg(core_attn_small)]
            4..=MAX_ANY_WIDTH => run_any::<{ MAX_ANY_WIDTH + 8 }>(l, input, output, rows),
            #[cfg(not(core_attn_small))]
            129..=MAX_ANY_WIDTH => run_any::<{ MAX_ANY_WIDTH + 8 }>(l, input, output, rows),
            _ => false,
        }
    }

    /// The unrolled passes for width `IN` (4-byte aligned weights, [`asm_requant_ok`]: checked
    /// by the caller). `false` (nothing written) if the width is not `IN` or the slices are
    /// shorter than the shapes (unreachable: the caller checked them).
    #[cfg_attr(core_attn_small, allow(dead_code))]
    fn run<const IN: usize>(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
            debug_assert!(false, "arm::run: shapes not checked");
            return false;
        };
        if p.inf != IN {
            return false;
        }
        let outf = p.outf;
        let zp = l.output_zero_point;
        let c = 2 * zp + 1;
        // Fully written by `extend_pair` / `extend_one` before the asm reads it.
        let mut xbuf = [MaybeUninit::<u32>::uninit(); IN];
        let w = p.w.as_ptr();
        let mut xs = x.chunks_exact(2 * IN);
        let mut ys = y.chunks_exact_mut(p.outf2.get());
        for (x01, y01) in (&mut xs).zip(&mut ys) {
            let Some((x0, x1)) = x01.split_at_checked(IN) else {
                return false;
            };
            extend_pair(x0, x1, &mut xbuf, MaybeUninit::new);
            let pairs = outf / 2;
            if pairs > 0 {
                let f = Frame2 {
                    mult: p.mult.as_ptr(),
                    shift: p.shift.as_ptr(),
                    y: y01.as_mut_ptr(),
                    outf,
                    c,
                    // SAFETY: within `w` (2·pairs ≤ outf rows of IN bytes).
                    end_w: unsafe { w.add(2 * pairs * IN) },
                };
                // SAFETY: `x0`, `x1` are IN bytes each (IN a multiple of 4), so `extend_pair`
                // wrote all IN aligned words of `xbuf`; rows 0..2·pairs of IN bytes are in `w`
                // (outf·IN bytes); `bias`, `mult` are i32 slices and `shift` an i8 slice of outf
                // entries, shifts in -31..=-2 and zp in -128..=127 (`asm_requant_ok`, checked by
                // the caller); `y01` is rows t, t+1 of the output (2·outf bytes).
                unsafe { pass_2x2::<IN>(&f, xbuf.as_ptr().cast(), w, p.bias.as_ptr()) };
            }
            if outf % 2 == 1 {
                let Some((y0, y1)) = y01.split_at_mut_checked(outf) else {
                    return false;
                };
                tail_rows(&p, x0, y0, outf - 1, zp);
                tail_rows(&p, x1, y1, outf - 1, zp);
            }
        }
        // An odd last token: the remainders are its IN inputs and outf outputs.
        let (x, y) = (xs.remainder(), ys.into_remainder());
        if x.len() == IN && y.len() == outf {
            extend_one(x, &mut xbuf, MaybeUninit::new);
            let blocks = outf / 4;
            if blocks > 0 {
                let shift = p.shift.as_ptr();
                let yp = y.as_mut_ptr();
                let dist = |a: usize, b: usize| a.wrapping_sub(b) as u32;
                let f = Frame1 {
                    // Multipliers of block k at bias + 16·(k + 1) + dm (after the bias LDM).
                    dm: dist(p.mult.as_ptr() as usize, p.bias.as_ptr() as usize).wrapping_sub(16),
                    shift,
                    // Outputs of block k at shift + 4·(k + 1) + dy (after the shift load).
                    dy: dist(yp as usize, shift as usize).wrapping_sub(4),
                    c,
                    k: 0xfefe_fefe,
                    // SAFETY: within `w` (4·blocks ≤ outf rows of IN bytes).
                    end_w: unsafe { w.add(4 * blocks * IN) },
                    xbase: xbuf.as_ptr().cast(),
                    pad: 0,
                };
                // SAFETY: `x` is IN bytes (IN a multiple of 8), so `extend_one` wrote IN/2
                // aligned words of `xbuf`; rows 0..4·blocks of IN bytes are in `w`, which is
                // 4-byte aligned (checked by the caller); `bias`, `mult` are i32 slices and
                // `shift` an i8 slice of outf entries, shifts in -31..=-2 and zp in -128..=127
                // (`asm_requant_ok`, checked by the caller); `y` is the token's outf outputs.
                unsafe { pass_4x1::<IN>(&f, w, p.bias.as_ptr()) };
            }
            if 4 * blocks < outf {
                tail_rows(&p, x, y, 4 * blocks, zp);
            }
        }
        true
    }
}

/// Helium (MVE) `asm!` kernels (Cortex-M55/M85, `cfg(core_attn_mve)`): `VMLADAVA.S8` sums 16
/// int8 products into a scalar accumulator per instruction; the requantization runs on 4
/// outputs at once (`VMULH.S32`, `VSHL.S32` by the per-lane shift, `VADD`, `VQSHRNB #1`,
/// `VQMOVNB`, `VSTRB.32`).
#[cfg(core_attn_mve)]
mod mve {
    use super::*;
    use core::arch::asm;

    /// Loop state of the MVE passes, copied onto the stack by the `asm!` (`two` is the
    /// constant 2 added to the shifts: `VSHL` by `shift + 2 = −s₁` is the arithmetic right
    /// shift of [`requant_asm_form`]).
    #[repr(C)]
    struct Frame {
        mult: *const i32,
        shift: *const i8,
        y0: *mut i8,
        y1: *mut i8,
        c: i32,
        two: i32,
        end_w: *const i8,
        pad: u32,
    }

    /// 4 rows × 2 tokens per step: per 16 inputs 2 input loads, 4 weight loads, 8 `VMLADAVA`
    /// (14 instructions per 128 MACs); accumulators in the 8 even registers (`VMLADAVA`'s only
    /// choice), token 1's inputs at `IN` after token 0's.
    ///
    /// # Safety
    /// `x`: 2·`IN` readable bytes; `w .. f.end_w`: whole blocks of 4 rows of `IN` bytes (at
    /// least one), `w` 4-byte aligned (`VLDRW`); `bias`, `f.mult`: 4-byte aligned, one entry per
    /// row; `f.shift` one per row in `-31..=-2`; `f.y0`, `f.y1`: one writable byte per row;
    /// `f.c = 2·zp + 1`, `zp ∈ -128..=127`; `f.two = 2`.
    #[inline(always)]
    unsafe fn pass_4x2<const IN: usize>(f: &Frame, x: *const i8, w: *const i8, bias: *const i32) {
        // SAFETY: see the function's contract. r6/r7 are saved and restored inside, the frame
        // is popped on exit; every other register written is declared (q0..q7 = s0..s31).
        unsafe {
            asm!(mve_directive!(),
                "push {{r6, r7}}",
                "ldm r0, {{r0, r2, r4, r6, r7, r8, r9, r10}}",
                "push {{r0, r2, r4, r6, r7, r8, r9, r10}}",
                "2:",
                "ldm r5, {{r8, r10, r12, lr}}",
                "ldm r5!, {{r0, r2, r4, r6}}",
                ".rept {n}",
                "vldrb.u8 q0, [r1], #16",
                "vldrb.u8 q1, [r1, #{o1}]",
                "vldrw.u32 q2, [r3], #16",
                "vldrw.u32 q3, [r3, #{o1}]",
                "vmladava.s8 r0, q0, q2",
                "vmladava.s8 r8, q1, q2",
                "vldrw.u32 q2, [r3, #{o2}]",
                "vmladava.s8 r2, q0, q3",
                "vmladava.s8 r10, q1, q3",
                "vldrw.u32 q3, [r3, #{o3}]",
                "vmladava.s8 r4, q0, q2",
                "vmladava.s8 r12, q1, q2",
                "vmladava.s8 r6, q0, q3",
                "vmladava.s8 lr, q1, q3",
                ".endr",
                "add r3, r3, #{skip}",
                "sub r1, r1, #{inf}",
                "vmov q4[2], q4[0], r0, r4",
                "vmov q4[3], q4[1], r2, r6",
                "vmov q5[2], q5[0], r8, r12",
                "vmov q5[3], q5[1], r10, lr",
                // r0 mult, r2 shift, r4 y0, r6 y1, r7 c, r8 two, r9 end.
                "ldm sp, {{r0, r2, r4, r6, r7, r8, r9}}",
                "vldrw.u32 q6, [r0], #16",
                "vldrb.s32 q7, [r2], #4",
                "vadd.i32 q7, q7, r8",
                "vmulh.s32 q4, q4, q6",
                "vmulh.s32 q5, q5, q6",
                "vshl.s32 q4, q4, q7",
                "vshl.s32 q5, q5, q7",
                "vadd.i32 q4, q4, r7",
                "vadd.i32 q5, q5, r7",
                "vqshrnb.s32 q6, q4, #1",
                "vqshrnb.s32 q7, q5, #1",
                "vqmovnb.s16 q4, q6",
                "vqmovnb.s16 q5, q7",
                "vstrb.32 q4, [r4], #4",
                "vstrb.32 q5, [r6], #4",
                "stm sp, {{r0, r2, r4, r6}}",
                "cmp r3, r9",
                "bne 2b",
                "add sp, sp, #32",
                "pop {{r6, r7}}",
                n = const IN / 16,
                o1 = const IN - 16,
                o2 = const 2 * IN - 16,
                o3 = const 3 * IN - 16,
                skip = const 3 * IN,
                inf = const IN,
                inout("r0") f as *const Frame => _,
                inout("r1") x => _,
                out("r2") _,
                inout("r3") w => _,
                out("r4") _,
                inout("r5") bias => _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r12") _,
                out("lr") _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            );
        }
    }

    /// 4 rows × 1 token per step (9 instructions per 64 MACs), as [`pass_4x2`].
    ///
    /// # Safety
    /// As [`pass_4x2`], with `IN` readable bytes at `x` and only `f.y0` written.
    #[inline(always)]
    unsafe fn pass_4x1<const IN: usize>(f: &Frame, x: *const i8, w: *const i8, bias: *const i32) {
        // SAFETY: as `pass_4x2`.
        unsafe {
            asm!(mve_directive!(),
                "push {{r6, r7}}",
                "ldm r0, {{r0, r2, r4, r6, r7, r8, r9, r10}}",
                "push {{r0, r2, r4, r6, r7, r8, r9, r10}}",
                "2:",
                "ldm r5!, {{r0, r2, r4, r6}}",
                ".rept {n}",
                "vldrb.u8 q0, [r1], #16",
                "vldrw.u32 q2, [r3], #16",
                "vldrw.u32 q3, [r3, #{o1}]",
                "vmladava.s8 r0, q0, q2",
                "vldrw.u32 q2, [r3, #{o2}]",
                "vmladava.s8 r2, q0, q3",
                "vldrw.u32 q3, [r3, #{o3}]",
                "vmladava.s8 r4, q0, q2",
                "vmladava.s8 r6, q0, q3",
                ".endr",
                "add r3, r3, #{skip}",
                "sub r1, r1, #{inf}",
                "vmov q4[2], q4[0], r0, r4",
                "vmov q4[3], q4[1], r2, r6",
                "ldm sp, {{r0, r2, r4, r6, r7, r8, r9}}",
                "vldrw.u32 q6, [r0], #16",
                "vldrb.s32 q7, [r2], #4",
                "vadd.i32 q7, q7, r8",
                "vmulh.s32 q4, q4, q6",
                "vshl.s32 q4, q4, q7",
                "vadd.i32 q4, q4, r7",
                "vqshrnb.s32 q6, q4, #1",
                "vqmovnb.s16 q4, q6",
                "vstrb.32 q4, [r4], #4",
                "stm sp, {{r0, r2, r4}}",
                "cmp r3, r9",
                "bne 2b",
                "add sp, sp, #32",
                "pop {{r6, r7}}",
                n = const IN / 16,
                o1 = const IN - 16,
                o2 = const 2 * IN - 16,
                o3 = const 3 * IN - 16,
                skip = const 3 * IN,
                inf = const IN,
                inout("r0") f as *const Frame => _,
                inout("r1") x => _,
                out("r2") _,
                inout("r3") w => _,
                out("r4") _,
                inout("r5") bias => _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            );
        }
    }

    /// Loop state of [`pass_any`], copied onto the stack by the `asm!` (the requantization
    /// reads the first seven words with one `LDM`).
    #[repr(C)]
    struct FrameAny {
        /// `[sp]` multipliers (moves).
        mult: *const i32,
        /// `[sp, #4]` shifts (moves).
        shift: *const i8,
        /// `[sp, #8]` outputs of token `t` (moves).
        y0: *mut i8,
        /// `[sp, #12]` outputs of token `t + 1` (moves; unused for one token).
        y1: *mut i8,
        /// `[sp, #16]` `2·zp + 1`.
        c: i32,
        /// `[sp, #20]` 2 (see [`Frame`]).
        two: i32,
        /// `[sp, #24]` row 0 of the first block not computed.
        end_w: *const i8,
        /// `[sp, #28]` biases (moves).
        bias: *const i32,
        /// `[sp, #32]` input width.
        inf: usize,
        /// `[sp, #36]` `4·inf − 16·full`: from row 0's pointer after the loop to the next block.
        adv: usize,
        /// `[sp, #40]` whole 16-input chunks.
        full: usize,
        /// `[sp, #44]` `inf mod 16`: lanes of the predicated last chunk.
        tail: usize,
        /// `[sp, #48]` the zero-padded input buffer.
        xbase: *const i8,
        pad: u32,
    }

    /// 4 rows × 2 tokens (`TWO`) or × 1 token per step, any input width (runtime): the four
    /// rows through their own pointers (`VLDRB`, any alignment), a counted loop over the whole
    /// 16-input chunks, then the last `inf mod 16` inputs with the weight loads predicated by
    /// `VCTP.8` (no byte past a row is read; the inputs come from a zero-padded buffer, so the
    /// lanes a predicated load leaves alone add nothing), then the requantization of
    /// [`pass_4x2`].
    ///
    /// # Safety
    /// `f.xbase`: per 16-input chunk 16 bytes of token `t` (then 16 of token `t + 1` when
    /// `TWO`), `⌈inf/16⌉` chunks, zero past `inf`; `f.full = ⌊inf/16⌋`, `f.tail = inf mod 16`,
    /// `f.adv = 4·inf − 16·f.full`; `w .. f.end_w`: whole blocks of 4 rows of `inf` bytes (at
    /// least one); `f.bias`, `f.mult`: 4-byte aligned, one entry per row; `f.shift` one per row
    /// in `-31..=-2`; `f.y0` (and `f.y1` when `TWO`): one writable byte per row;
    /// `f.c = 2·zp + 1`, `zp ∈ -128..=127`; `f.two = 2`.
    #[inline(never)]
    unsafe fn pass_any<const TWO: bool>(f: &FrameAny, w: *const i8) {
        // SAFETY: see the function's contract. r6/r7 are saved and restored inside, the frame
        // is popped on exit; every other register written is declared (q0..q7 = s0..s31).
        unsafe {
            asm!(mve_directive!(),
                "push {{r6, r7}}",
                "add r0, r0, #28",
                "ldm r0, {{r1, r2, r4, r5, r6, r7, r8}}",
                "push {{r1, r2, r4, r5, r6, r7, r8}}",
                "sub r0, r0, #28",
                "ldm r0, {{r1, r2, r4, r5, r6, r7, r8}}",
                "push {{r1, r2, r4, r5, r6, r7, r8}}",
                "2:",
                "ldr r5, [sp, #28]",
                ".if {two}",
                "ldm r5, {{r8, r10, r12, lr}}",
                ".endif",
                "ldm r5!, {{r0, r2, r4, r6}}",
                "str r5, [sp, #28]",
                "ldr r11, [sp, #32]",
                "add r5, r3, r11",
                "add r7, r5, r11",
                "add r9, r7, r11",
                "ldr r1, [sp, #48]",
                "ldr r11, [sp, #40]",
                "cmp r11, #0",
                "beq 4f",
                "3:",
                "vldrb.u8 q0, [r1], #{xs}",
                ".if {two}",
                "vldrb.u8 q1, [r1, #-16]",
                ".endif",
                "vldrb.u8 q2, [r3], #16",
                "vldrb.u8 q3, [r5], #16",
                "vmladava.s8 r0, q0, q2",
                ".if {two}",
                "vmladava.s8 r8, q1, q2",
                ".endif",
                "vldrb.u8 q2, [r7], #16",
                "vmladava.s8 r2, q0, q3",
                ".if {two}",
                "vmladava.s8 r10, q1, q3",
                ".endif",
                "vldrb.u8 q3, [r9], #16",
                "vmladava.s8 r4, q0, q2",
                ".if {two}",
                "vmladava.s8 r12, q1, q2",
                ".endif",
                "vmladava.s8 r6, q0, q3",
                ".if {two}",
                "vmladava.s8 lr, q1, q3",
                ".endif",
                "subs r11, r11, #1",
                "bne 3b",
                "4:",
                "ldr r11, [sp, #44]",
                "cmp r11, #0",
                "beq 5f",
                "vctp.8 r11",
                "vldrb.u8 q0, [r1]",
                ".if {two}",
                "vldrb.u8 q1, [r1, #16]",
                ".endif",
                "vpstt",
                "vldrbt.u8 q2, [r3]",
                "vldrbt.u8 q3, [r5]",
                "vmladava.s8 r0, q0, q2",
                "vmladava.s8 r2, q0, q3",
                ".if {two}",
                "vmladava.s8 r8, q1, q2",
                "vmladava.s8 r10, q1, q3",
                ".endif",
                "vpstt",
                "vldrbt.u8 q2, [r7]",
                "vldrbt.u8 q3, [r9]",
                "vmladava.s8 r4, q0, q2",
                "vmladava.s8 r6, q0, q3",
                ".if {two}",
                "vmladava.s8 r12, q1, q2",
                "vmladava.s8 lr, q1, q3",
                ".endif",
                "5:",
                "ldr r11, [sp, #36]",
                "add r3, r3, r11",
                "vmov q4[2], q4[0], r0, r4",
                "vmov q4[3], q4[1], r2, r6",
                ".if {two}",
                "vmov q5[2], q5[0], r8, r12",
                "vmov q5[3], q5[1], r10, lr",
                ".endif",
                // r0 mult, r2 shift, r4 y0, r6 y1, r8 c, r10 two, r12 end.
                "ldm sp, {{r0, r2, r4, r6, r8, r10, r12}}",
                "vldrw.u32 q6, [r0], #16",
                "vldrb.s32 q7, [r2], #4",
                "vadd.i32 q7, q7, r10",
                "vmulh.s32 q4, q4, q6",
                ".if {two}",
                "vmulh.s32 q5, q5, q6",
                ".endif",
                "vshl.s32 q4, q4, q7",
                ".if {two}",
                "vshl.s32 q5, q5, q7",
                ".endif",
                "vadd.i32 q4, q4, r8",
                "vqshrnb.s32 q6, q4, #1",
                "vqmovnb.s16 q4, q6",
                "vstrb.32 q4, [r4], #4",
                ".if {two}",
                "vadd.i32 q5, q5, r8",
                "vqshrnb.s32 q7, q5, #1",
                "vqmovnb.s16 q5, q7",
                "vstrb.32 q5, [r6], #4",
                ".endif",
                "stm sp, {{r0, r2, r4, r6}}",
                "cmp r3, r12",
                "bne 2b",
                "add sp, sp, #56",
                "pop {{r6, r7}}",
                two = const TWO as u32,
                xs = const if TWO { 32 } else { 16 },
                inout("r0") f as *const FrameAny => _,
                out("r1") _,
                out("r2") _,
                inout("r3") w => _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                out("lr") _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            );
        }
    }

    /// Any width `1..=`[`MAX_ANY_WIDTH`] with [`pass_any`]. `false` (nothing written) if the
    /// width is out of range or the slices are shorter than the shapes (unreachable: the caller
    /// checked them).
    #[inline(never)]
    fn run_any(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
            debug_assert!(false, "mve::run_any: shapes not checked");
            return false;
        };
        let (inf, outf) = (p.inf, p.outf);
        let zp = l.output_zero_point;
        if inf > MAX_ANY_WIDTH {
            return false;
        }
        let blocks = outf / 4;
        let (full, tail) = (inf / 16, inf % 16);
        let chunks = inf.div_ceil(16);
        let mut xb = [0i8; 2 * MAX_ANY_WIDTH];
        let w = p.w.as_ptr();
        let frame = |y0: *mut i8, y1: *mut i8, xbase: *const i8| FrameAny {
            mult: p.mult.as_ptr(),
            shift: p.shift.as_ptr(),
            y0,
            y1,
            c: 2 * zp + 1,
            two: 2,
            // SAFETY: within `w` (4·blocks ≤ outf rows of inf bytes).
            end_w: unsafe { w.add(4 * blocks * inf) },
            bias: p.bias.as_ptr(),
            inf,
            adv: 4 * inf - 16 * full,
            full,
            tail,
            xbase,
            pad: 0,
        };
        let mut xs = x.chunks_exact(p.inf2.get());
        let mut ys = y.chunks_exact_mut(p.outf2.get());
        for (x01, y01) in (&mut xs).zip(&mut ys) {
            let Some((x0, x1)) = x01.split_at_checked(inf) else {
                return false;
            };
            let Some((y0, y1)) = y01.split_at_mut_checked(outf) else {
                return false;
            };
            if blocks > 0 {
                // Per 16-input chunk: 16 bytes of token t, then 16 of token t + 1, zero-padded.
                for ((d, a), b) in xb
                    .chunks_exact_mut(32)
                    .zip(x0.chunks(16))
                    .zip(x1.chunks(16))
                {
                    let Some((d0, d1)) = d.split_at_mut_checked(16) else {
                        return false;
                    };
                    for (d, s) in [(d0, a), (d1, b)] {
                        let n = s.len().min(16);
                        let Some((h, t)) = d.split_at_mut_checked(n) else {
                            return false;
                        };
                        h.copy_from_slice(&s[..n]);
                        t.fill(0);
                    }
                }
                let f = frame(y0.as_mut_ptr(), y1.as_mut_ptr(), xb.as_ptr());
                // SAFETY: `xb` holds the ⌈inf/16⌉ ≤ 32 chunks of 32 bytes (zero-padded) written
                // above (`x0`, `x1` are inf bytes each); rows 0..4·blocks of inf bytes are in
                // `w`; `bias`, `mult`, `shift` have outf entries, shifts in -31..=-2 and zp in
                // -128..=127 (`asm_requant_ok`, checked by the caller); `y0`, `y1` are the two
                // tokens' outf outputs.
                unsafe { pass_any::<true>(&f, w) };
            }
            if 4 * blocks < outf {
                tail_rows(&p, x0, y0, 4 * blocks, zp);
                tail_rows(&p, x1, y1, 4 * blocks, zp);
            }
        }
        // An odd last token: the remainders are its inf inputs and outf outputs.
        let (x, y) = (xs.remainder(), ys.into_remainder());
        if x.len() == inf && y.len() == outf {
            if blocks > 0 {
                let Some((h, t)) = xb.split_at_mut_checked(inf) else {
                    return false;
                };
                h.copy_from_slice(x);
                if let Some(t) = t.get_mut(..16 * chunks - inf) {
                    t.fill(0);
                }
                let f = frame(y.as_mut_ptr(), y.as_mut_ptr(), xb.as_ptr());
                // SAFETY: `xb` holds the inf inputs and zeros up to 16·⌈inf/16⌉ ≤ 512 bytes
                // (written above; the rest of `xb` is initialized too); rows 0..4·blocks of inf
                // bytes are in `w`; `bias`, `mult`, `shift` have outf entries, shifts in
                // -31..=-2 and zp in -128..=127 (`asm_requant_ok`, checked by the caller); `y`
                // is the token's outf outputs (`y1` is not used for one token).
                unsafe { pass_any::<false>(&f, w) };
            }
            if 4 * blocks < outf {
                tail_rows(&p, x, y, 4 * blocks, zp);
            }
        }
        true
    }

    pub(super) fn linear(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        // VLDRW (unrolled passes) needs 4-byte aligned weights; blob sections are 16-byte
        // aligned. Other widths and alignments take `pass_any`.
        if l.weights.as_ptr() as usize % 4 != 0 {
            return linear_any(l, input, output, rows);
        }
        if !asm_requant_ok(l) {
            return false;
        }
        // Size-first builds keep only the looped passes (same bits).
        #[cfg(core_attn_small)]
        return any_width(l, input, output, rows);
        #[cfg(not(core_attn_small))]
        match l.in_features {
            16 => run::<16>(l, input, output, rows),
            32 => run::<32>(l, input, output, rows),
            64 => run::<64>(l, input, output, rows),
            128 => run::<128>(l, input, output, rows),
            _ => any_width(l, input, output, rows),
        }
    }

    /// [`run_any`], if the layer qualifies.
    fn linear_any(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        asm_requant_ok(l) && any_width(l, input, output, rows)
    }

    /// [`run_any`] for a layer that is [`asm_requant_ok`], if its width qualifies.
    #[inline(never)]
    fn any_width(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        if !(1..=MAX_ANY_WIDTH).contains(&l.in_features) {
            return false;
        }
        run_any(l, input, output, rows)
    }

    /// The unrolled passes for width `IN` (4-byte aligned weights, [`asm_requant_ok`]: checked
    /// by the caller). `false` (nothing written) if the width is not `IN` or the slices are
    /// shorter than the shapes (unreachable: the caller checked them).
    #[cfg_attr(core_attn_small, allow(dead_code))]
    fn run<const IN: usize>(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
        let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
            debug_assert!(false, "mve::run: shapes not checked");
            return false;
        };
        if p.inf != IN {
            return false;
        }
        let outf = p.outf;
        let zp = l.output_zero_point;
        let blocks = outf / 4;
        let w = p.w.as_ptr();
        let frame = |y0: *mut i8, y1: *mut i8| Frame {
            mult: p.mult.as_ptr(),
            shift: p.shift.as_ptr(),
            y0,
            y1,
            c: 2 * zp + 1,
            two: 2,
            // SAFETY: within `w` (4·blocks ≤ outf rows of IN bytes).
            end_w: unsafe { w.add(4 * blocks * IN) },
            pad: 0,
        };
        let mut xs = x.chunks_exact(2 * IN);
        let mut ys = y.chunks_exact_mut(p.outf2.get());
        for (x01, y01) in (&mut xs).zip(&mut ys) {
            let Some((y0, y1)) = y01.split_at_mut_checked(outf) else {
                return false;
            };
            if blocks > 0 {
                let f = frame(y0.as_mut_ptr(), y1.as_mut_ptr());
                // SAFETY: `x01` has 2·IN bytes; rows 0..4·blocks are in the 4-byte aligned `w`
                // (alignment checked by the caller); `bias`, `mult`, `shift` have outf entries,
                // shifts in -31..=-2 and zp in -128..=127 (`asm_requant_ok`, checked by the
                // caller); `y0`, `y1` are the two tokens' outf outputs.
                unsafe { pass_4x2::<IN>(&f, x01.as_ptr(), w, p.bias.as_ptr()) };
            }
            if 4 * blocks < outf {
                let Some((x0, x1)) = x01.split_at_checked(IN) else {
                    return false;
                };
                tail_rows(&p, x0, y0, 4 * blocks, zp);
                tail_rows(&p, x1, y1, 4 * blocks, zp);
            }
        }
        // An odd last token: the remainders are its IN inputs and outf outputs.
        let (x, y) = (xs.remainder(), ys.into_remainder());
        if x.len() == IN && y.len() == outf {
            if blocks > 0 {
                let f = frame(y.as_mut_ptr(), y.as_mut_ptr());
                // SAFETY: as for a token pair, with IN bytes at `x` and only `y` (outf bytes)
                // written.
                unsafe { pass_4x1::<IN>(&f, x.as_ptr(), w, p.bias.as_ptr()) };
            }
            if 4 * blocks < outf {
                tail_rows(&p, x, y, 4 * blocks, zp);
            }
        }
        true
    }
}
