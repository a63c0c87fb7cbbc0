//! The looped `asm!` passes: any width `4..=`[`MAX_ANY_WIDTH`](crate::dsp::MAX_ANY_WIDTH), any alignment.

use core::arch::asm;

/// Loop state of [`pass_2x2_any`], copied onto the stack by the `asm!` (offsets in the
/// comments; the requantization reads the first six with one `LDM`).
#[repr(C)]
pub(super) struct FrameA2 {
    /// `[sp]` multipliers (moves).
    pub(super) mult: *const i32,
    /// `[sp, #4]` shifts (moves).
    pub(super) shift: *const i8,
    /// `[sp, #8]` outputs of token `t` (moves; token `t + 1` at `+ outf`).
    pub(super) y: *mut i8,
    /// `[sp, #12]`.
    pub(super) outf: usize,
    /// `[sp, #16]` `2·zp + 1`.
    pub(super) c: i32,
    /// `[sp, #20]` row 0 of the first row pair not computed.
    pub(super) end_w: *const i8,
    /// `[sp, #24]` biases (moves).
    pub(super) bias: *const i32,
    /// `[sp, #28]` start of the input buffer.
    pub(super) xbase: *const u32,
    /// `[sp, #32]` end of the buffer's 4-input chunks.
    pub(super) xend: *const u32,
    /// `[sp, #36]` end of its byte tail.
    pub(super) xtail: *const u32,
    /// `[sp, #40]` byte offset of the first chunk run in the 8-chunk loop body.
    pub(super) entry: u32,
    pub(super) pad: u32,
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
pub(super) unsafe fn pass_2x2_any(f: &FrameA2, w: *const i8, inf: usize) {
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
pub(super) struct FrameA1 {
    /// `[sp]` multipliers (moves).
    pub(super) mult: *const i32,
    /// `[sp, #4]` shifts (moves).
    pub(super) shift: *const i8,
    /// `[sp, #8]` outputs (moves).
    pub(super) y: *mut i8,
    /// `[sp, #12]` `2·zp + 1`.
    pub(super) c: i32,
    /// `[sp, #16]` `0xFEFE_FEFE` (see [`pass_4x1`]).
    pub(super) k: u32,
    /// `[sp, #20]` row 0 of the first block not computed.
    pub(super) end_w: *const i8,
    /// `[sp, #24]` start of the input buffer.
    pub(super) xbase: *const u32,
    /// `[sp, #28]` biases (moves).
    pub(super) bias: *const i32,
    /// `[sp, #32]` end of the buffer's 8-input steps.
    pub(super) xend: *const u32,
    /// `[sp, #36]` end of its byte tail.
    pub(super) xtail: *const u32,
    /// `[sp, #40]` byte offset of the first step run in the 4-step loop body.
    pub(super) entry: u32,
    pub(super) pad: u32,
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
pub(super) unsafe fn pass_4x1_any(f: &FrameA1, w: *const i8, inf: usize) {
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
