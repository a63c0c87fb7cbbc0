//! Helium (MVE) `asm!` kernels (Cortex-M55/M85, `cfg(core_attn_mve)`): `VMLADAVA.S8` sums 16
//! int8 products into a scalar accumulator per instruction; the requantization runs on 4
//! outputs at once (`VMULH.S32`, `VSHL.S32` by the per-lane shift, `VADD`, `VQSHRNB #1`,
//! `VQMOVNB`, `VSTRB.32`).

use super::super::*;
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
fn run_any(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
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

pub(crate) fn linear(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    // VLDRW (unrolled passes) needs 4-byte aligned weights; blob sections are 16-byte
    // aligned. Other widths and alignments take `pass_any`.
    if l.weights.as_ptr() as usize % 4 != 0 {
        return linear_any(l, input, output, rows);
    }
    if !requant_ok(l) {
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
fn linear_any(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    requant_ok(l) && any_width(l, input, output, rows)
}

/// [`run_any`] for a layer that is [`asm_requant_ok`], if its width qualifies.
#[inline(never)]
fn any_width(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    if !(1..=MAX_ANY_WIDTH).contains(&l.in_features) {
        return false;
    }
    run_any(l, input, output, rows)
}

/// The unrolled passes for width `IN` (4-byte aligned weights, [`asm_requant_ok`]: checked
/// by the caller). `false` (nothing written) if the width is not `IN` or the slices are
/// shorter than the shapes (unreachable: the caller checked them).
#[cfg_attr(core_attn_small, allow(dead_code))]
fn run<const IN: usize>(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
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
