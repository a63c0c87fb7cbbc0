//! The unrolled `asm!` passes (widths of [`DSP_WIDTHS`](crate::dsp::DSP_WIDTHS), 4-byte aligned weights).

use core::arch::asm;

/// Loop state of [`pass_2x2`], copied onto the stack by the `asm!` (read with one `LDM`,
/// the three moving pointers written back with one `STM`).
#[repr(C)]
pub(super) struct Frame2 {
    pub(super) mult: *const i32,
    pub(super) shift: *const i8,
    pub(super) y: *mut i8,
    pub(super) outf: usize,
    pub(super) c: i32,
    pub(super) end_w: *const i8,
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
pub(super) unsafe fn pass_2x2<const IN: usize>(
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
pub(super) struct Frame1 {
    pub(super) dm: u32,
    pub(super) shift: *const i8,
    pub(super) dy: u32,
    pub(super) c: i32,
    pub(super) k: u32,
    pub(super) end_w: *const i8,
    pub(super) xbase: *const u32,
    pub(super) pad: u32,
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
pub(super) unsafe fn pass_4x1<const IN: usize>(f: &Frame1, w: *const i8, bias: *const i32) {
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
