//! Linear layer on the DSP extension (`cfg(core_attn_dsp)`: Cortex-M4/M7/M33)
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
//! **Any width** (`looped::pass_2x2_any`, `looped::pass_4x1_any`; widths `4..=`[`MAX_ANY_WIDTH`],
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
//! Layout: `kernels.rs` (dispatch by width), `unrolled.rs` (the passes of [`super::DSP_WIDTHS`]),
//! `looped.rs` (any width), `emulated.rs` (the host twin, `emulated::linear`), `dot.rs` (the
//! `SMLAD` dot product, its own host twin). Every
//! function here takes plain slices and scalars ([`super::LinearArgs`]), never the kernel-level
//! types.

use super::intrinsics::{sxtb16, sxtb16_ror8};

pub(crate) mod dot;
pub(crate) mod emulated;
#[cfg(core_attn_dsp)]
pub(crate) mod kernels;
#[cfg(core_attn_dsp)]
mod looped;
#[cfg(core_attn_dsp)]
mod unrolled;

/// The native DSP variant: the `asm!` kernels on builds with the DSP extension, `false`
/// (nothing written) elsewhere.
#[inline(always)]
pub(crate) fn linear(
    l: &super::LinearArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    rows: usize,
) -> bool {
    #[cfg(core_attn_dsp)]
    {
        kernels::linear(l, input, output, rows)
    }
    #[cfg(not(core_attn_dsp))]
    {
        let _ = (l, input, output, rows);
        false
    }
}

/// One tail input of a token pair as the looped pass reads it: token `t` sign-extended in the
/// low half, token `t + 1` in the high half.
#[inline(always)]
pub(crate) fn tail_pair(a: i8, b: i8) -> u32 {
    (a as i16 as u16 as u32) | ((b as i16 as u16 as u32) << 16)
}

/// `SXTB16` of `w` and of `w` rotated by 8: the instructions where the target has them.
#[inline(always)]
pub(crate) fn extend_word(w: u32) -> (u32, u32) {
    #[cfg(core_attn_dsp)]
    {
        (
            super::intrinsics::hw::sxtb16(w),
            super::intrinsics::hw::sxtb16_ror8(w),
        )
    }
    #[cfg(not(core_attn_dsp))]
    {
        (sxtb16(w), sxtb16_ror8(w))
    }
}

/// Four int8 values as one little-endian word.
#[inline(always)]
pub(crate) fn word4(a: &[i8]) -> u32 {
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
pub(crate) fn extend_pair<T>(x0: &[i8], x1: &[i8], buf: &mut [T], f: impl Fn(u32) -> T) {
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
pub(crate) fn extend_one<T>(x: &[i8], buf: &mut [T], f: impl Fn(u32) -> T) {
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
