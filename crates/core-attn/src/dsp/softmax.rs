//! Softmax kernels: `asm!` loops over a row of scores or int8 inputs where the target has the DSP extension — `cfg(core_attn_dsp)`
//! (Cortex-M4/M7/M33) and `cfg(core_attn_mve)` (Cortex-M55/M85: Helium cores implement the DSP
//! extension too, and these scalar loops beat LLVM's vectorization of the generic ones) — and
//! as the portable emulation elsewhere (so that the same algorithm runs, and is tested, on the
//! host). The `asm!` itself is checked on the device by the bench firmware (`match`).
// Size-first builds (`cfg(core_attn_small)`) keep one copy of each loop: the fast
// variants they leave out are dead there.
#![cfg_attr(core_attn_small, allow(dead_code))]

#[cfg(any(core_attn_dsp, core_attn_mve))]
use core::arch::asm;

#[cfg(any(core_attn_dsp, core_attn_mve))]
/// One element: fast path inline, `$slow` out of line, continuing at `$cont`.
macro_rules! body {
    ($slow:literal, $cont:literal) => {
        concat!(
            "ldr r12, [r0], #4\n",
            "sub r12, r2, r12\n",
            "cmp r12, r3\n",
            "bhs ",
            $slow,
            "f\n",
            "lsl r12, r12, r4\n",
            "smmulr r12, r12, r5\n",
            "lsr r11, r12, #8\n",
            "uxtb r12, r12\n",
            "ldrh r11, [r8, r11, lsl #1]\n",
            "ldrh r12, [r9, r12, lsl #1]\n",
            "mla r11, r11, r12, lr\n",
            "lsr r11, r11, #16\n",
            $cont,
            ":\n",
            "str r11, [r0, #-4]\n",
            "add r10, r10, r11\n",
        )
    };
}
#[cfg(any(core_attn_dsp, core_attn_mve))]
/// The slow path of one element: wrapped difference → index 0; `d ≥ t_hi` → 0; between
/// the bounds → marked, resuming at `$next` (the next element) without adding to the sum.
macro_rules! slow {
    ($slow:literal, $cont:literal, $next:literal, $wrap:literal, $thi:literal) => {
        concat!(
            $slow,
            ":\n",
            "cmp r12, #0\n",
            "blt ",
            $wrap,
            "f\n",
            $thi,
            "cmp r12, r11\n",
            "movw r11, #0\n",
            "bhs ",
            $cont,
            "b\n",
            "orr r12, r12, #0x80000000\n",
            "str r12, [r0, #-4]\n",
            "orr r10, r10, #0x80000000\n",
            "b ",
            $next,
            "b\n",
            $wrap,
            ":\n",
            "ldrh r11, [r8]\n",
            "ldrh r12, [r9]\n",
            "mla r11, r11, r12, lr\n",
            "lsr r11, r11, #16\n",
            "b ",
            $cont,
            "b\n",
        )
    };
}

#[cfg(any(core_attn_dsp, core_attn_mve))]
/// The exponential loop over `r0..r1` (registers as in [`exp_pass_i32`]; `$thi` loads `t_hi`
/// into `r11`), unrolled four times and entered by `len % 4`; ends at local label `9`.
macro_rules! exp_loop {
    ($thi:literal) => {
        concat!(
            "mov lr, #32768\n",
            // Four elements per iteration; `len % 4 = 3, 2, 1` enter at the second, third,
            // fourth.
            "sub r12, r1, r0\n",
            "and r12, r12, #12\n",
            "cmp r12, #8\n",
            "beq 22f\n",
            "bhi 21f\n",
            "cmp r12, #4\n",
            "beq 23f\n",
            "20:\n",
            body!("40", "30"),
            "21:\n",
            body!("41", "31"),
            "22:\n",
            body!("42", "32"),
            "23:\n",
            body!("43", "33"),
            "24:\n",
            "cmp r0, r1\n",
            "bne 20b\n",
            "b 9f\n",
            slow!("40", "30", "21", "50", $thi),
            slow!("41", "31", "22", "51", $thi),
            slow!("42", "32", "23", "52", $thi),
            slow!("43", "33", "24", "53", $thi),
        )
    };
}

/// Parameters of the `asm!` exponential pass (the fast range of
/// [`crate::softmax::ExpIndex`] with right shift `≤ 32`). `repr(C)`: [`softmax_exp_i32`] loads
/// the first five fields with one `LDM` (`t_lo`, `sh`, `m`, `hi`, `lo` at offsets 0..20) and
/// `t_hi` from offset 20.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExpLoop<'t> {
    /// Differences `d < t_lo` take the fast path.
    pub t_lo: u32,
    /// Left shift `32 − r`.
    pub sh: u32,
    /// Multiplier (`≥ 0`).
    pub m: i32,
    /// `exp` table, high part.
    pub hi: &'t [u16; 256],
    /// `exp` table, low part.
    pub lo: &'t [u16; 256],
    /// Differences `d ≥ t_hi` give 0; `t_lo ≤ d < t_hi` are marked for the caller.
    pub t_hi: u32,
    /// Row maximum (not read by [`softmax_exp_i32`], which finds it).
    pub max: i32,
}

/// The row maximum and then [`exp_pass_i32`] in one `asm!` block (no register traffic between
/// the passes). Maximum: the first element, then `(len − 1) % 4` single elements, one `LDM` of
/// four if `(len − 1) % 8 ≥ 4`, then `LDM`s of eight, each element `cmp`/`it gt`/`movgt`;
/// the parameters are then loaded from `p` with one `LDM`. Same results and marking as
/// [`exp_pass_i32`] with `max` the row maximum (`p.max` is ignored).
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn softmax_exp_i32(buf: &mut [i32], p: &ExpLoop<'_>) -> u32 {
    // The callers' rows are never empty (`check_row_len`); an empty one has nothing to sum.
    if buf.is_empty() {
        return 0;
    }
    let range = buf.as_mut_ptr_range();
    let sum: u32;
    // SAFETY: the maximum reads the words of `buf` (non-empty, checked) with `lr` from the
    // second word to the end: first `(len − 1) % 4` singles, then 4 if bit 4 of the byte count
    // is set, then whole blocks of 8, which end exactly at `r1`. `p` points to a live `ExpLoop`
    // (`repr(C)`: offsets 0..24 are `t_lo, sh, m, hi, lo, t_hi`). The exponential loop reads and
    // writes `buf` as in `exp_pass_i32`. The pushed word is popped before the end; every written
    // register is declared.
    unsafe {
        asm!(dsp_directive!(),
            "push {{r3}}",
            "ldr r2, [r0]",
            "add lr, r0, #4",
            "sub r12, r1, lr",
            "ands r11, r12, #12",
            "beq 61f",
            "add r11, lr, r11",
            "60:",
            "ldr r3, [lr], #4",
            "cmp r3, r2",
            "it gt",
            "movgt r2, r3",
            "cmp lr, r11",
            "bne 60b",
            "61:",
            "tst r12, #16",
            "beq 62f",
            "ldm lr!, {{r3, r4, r5, r8}}",
            "cmp r3, r2",
            "it gt",
            "movgt r2, r3",
            "cmp r4, r2",
            "it gt",
            "movgt r2, r4",
            "cmp r5, r2",
            "it gt",
            "movgt r2, r5",
            "cmp r8, r2",
            "it gt",
            "movgt r2, r8",
            "62:",
            "cmp lr, r1",
            "beq 64f",
            "63:",
            "ldm lr!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
            "cmp r3, r2",
            "it gt",
            "movgt r2, r3",
            "cmp r4, r2",
            "it gt",
            "movgt r2, r4",
            "cmp r5, r2",
            "it gt",
            "movgt r2, r5",
            "cmp r8, r2",
            "it gt",
            "movgt r2, r8",
            "cmp r9, r2",
            "it gt",
            "movgt r2, r9",
            "cmp r10, r2",
            "it gt",
            "movgt r2, r10",
            "cmp r11, r2",
            "it gt",
            "movgt r2, r11",
            "cmp r12, r2",
            "it gt",
            "movgt r2, r12",
            "cmp lr, r1",
            "bne 63b",
            "64:",
            "ldr lr, [sp]",
            "ldm lr, {{r3, r4, r5, r8, r9}}",
            "mov r10, #0",
            exp_loop!("ldr r11, [sp]\nldr r11, [r11, #20]\n"),
            "9:",
            "add sp, sp, #4",
            inout("r0") range.start => _,
            in("r1") range.end,
            out("r2") _,
            inout("r3") p as *const ExpLoop<'_> => _,
            out("r4") _,
            out("r5") _,
            out("r8") _,
            out("r9") _,
            out("r10") sum,
            out("r11") _,
            out("r12") _,
            out("lr") _,
        );
    }
    sum
}

/// `buf[j] ← exp(max − buf[j])` for the fast range, returning the sum of the exponentials
/// written. An element with `t_lo ≤ d < t_hi` is left as `d | 2^31` (negative: exponentials are
/// `≤ 65534`) and bit 31 of the returned value is set; the caller computes those exactly.
/// A difference that wraps (`max − x ≥ 2^31`, negative as `i32`) is index 0, as in the generic
/// loop; it fails the unsigned `d < t_lo` test, so the check costs nothing on the fast path.
///
/// Per element: `ldr`, `sub`, `cmp`/`bhs`, `lsl`, `smmulr`, `lsr`, `uxtb`, two `ldrh`,
/// `mla` (rounding constant in `lr`), `lsr`, `str`, `add`; the loop is unrolled four times.
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn exp_pass_i32(buf: &mut [i32], p: &ExpLoop<'_>) -> u32 {
    // The callers' rows are never empty (`check_row_len`); an empty one has nothing to sum.
    if buf.is_empty() {
        return 0;
    }
    let range = buf.as_mut_ptr_range();
    let sum: u32;
    // SAFETY: reads and writes the words of `buf` (`r0` runs from its start to its end, `buf` is
    // non-empty: checked above; the entry point is chosen by
    // `len % 4` so that the loop ends exactly at the end) and the two 256-entry tables at
    // indices `(q >> 8) < 256` and `q & 255` (`q < 65535` on the fast path because
    // `d < t_lo`). The pushed word is popped before the end; every written register is declared.
    unsafe {
        asm!(dsp_directive!(),
            "push {{r11}}",
            exp_loop!("ldr r11, [sp]\n"),
            "9:",
            "add sp, sp, #4",
            inout("r0") range.start => _,
            in("r1") range.end,
            in("r2") p.max,
            in("r3") p.t_lo,
            in("r4") p.sh,
            in("r5") p.m,
            in("r8") p.hi.as_ptr(),
            in("r9") p.lo.as_ptr(),
            inout("r10") 0u32 => sum,
            inout("r11") p.t_hi => _,
            out("r12") _,
            out("lr") _,
        );
    }
    sum
}

/// `buf[j] ← (buf[j] · recip + 2^31) >> 32` for every element (`UMULL` and the rounding carry
/// as `add hi, hi, lo, lsr #31`): first `len % 4` singles, then one `LDM`/`STM` of four if
/// `len % 8 ≥ 4`, then `LDM`/`STM` of eight. `SM` (`recip < 2^31`): one `SMMULR` per element
/// instead (`recip` and `buf[j] ≤ 65535` are then both non-negative as signed values, and
/// `SMMULR` is exactly `(a·b + 2^31) >> 32`).
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn scale_i32<const SM: bool>(buf: &mut [i32], recip: u32) {
    let range = buf.as_mut_ptr_range();
    // SAFETY: `r0` walks `buf` (possibly empty) to its end: `len % 4` singles, then 4 if bit 4
    // of the byte count is set, then whole blocks of 8 that end exactly at `r1`. Every written
    // register is declared.
    unsafe {
        if SM {
            asm!(dsp_directive!(),
                "sub r12, r1, r0",
                "ands r11, r12, #12",
                "beq 2f",
                "add r11, r0, r11",
                "1:",
                "ldr r3, [r0]",
                "smmulr r3, r3, r2",
                "str r3, [r0], #4",
                "cmp r0, r11",
                "bne 1b",
                "2:",
                "tst r12, #16",
                "beq 3f",
                "ldm r0, {{r3, r4, r5, r8}}",
                "smmulr r3, r3, r2",
                "smmulr r4, r4, r2",
                "smmulr r5, r5, r2",
                "smmulr r8, r8, r2",
                "stm r0!, {{r3, r4, r5, r8}}",
                "3:",
                "cmp r0, r1",
                "beq 5f",
                "4:",
                "ldm r0, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
                "smmulr r3, r3, r2",
                "smmulr r4, r4, r2",
                "smmulr r5, r5, r2",
                "smmulr r8, r8, r2",
                "smmulr r9, r9, r2",
                "smmulr r10, r10, r2",
                "smmulr r11, r11, r2",
                "smmulr r12, r12, r2",
                "stm r0!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
                "cmp r0, r1",
                "bne 4b",
                "5:",
                inout("r0") range.start => _,
                in("r1") range.end,
                in("r2") recip,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                out("lr") _,
                options(nostack),
            );
        } else {
            asm!(dsp_directive!(),
                "sub r12, r1, r0",
                "ands r11, r12, #12",
                "beq 2f",
                "add r11, r0, r11",
                "1:",
                "ldr r3, [r0]",
                "umull lr, r3, r3, r2",
                "add r3, r3, lr, lsr #31",
                "str r3, [r0], #4",
                "cmp r0, r11",
                "bne 1b",
                "2:",
                "tst r12, #16",
                "beq 3f",
                "ldm r0, {{r3, r4, r5, r8}}",
                "umull lr, r3, r3, r2",
                "add r3, r3, lr, lsr #31",
                "umull lr, r4, r4, r2",
                "add r4, r4, lr, lsr #31",
                "umull lr, r5, r5, r2",
                "add r5, r5, lr, lsr #31",
                "umull lr, r8, r8, r2",
                "add r8, r8, lr, lsr #31",
                "stm r0!, {{r3, r4, r5, r8}}",
                "3:",
                "cmp r0, r1",
                "beq 5f",
                "4:",
                "ldm r0, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
                "umull lr, r3, r3, r2",
                "add r3, r3, lr, lsr #31",
                "umull lr, r4, r4, r2",
                "add r4, r4, lr, lsr #31",
                "umull lr, r5, r5, r2",
                "add r5, r5, lr, lsr #31",
                "umull lr, r8, r8, r2",
                "add r8, r8, lr, lsr #31",
                "umull lr, r9, r9, r2",
                "add r9, r9, lr, lsr #31",
                "umull lr, r10, r10, r2",
                "add r10, r10, lr, lsr #31",
                "umull lr, r11, r11, r2",
                "add r11, r11, lr, lsr #31",
                "umull lr, r12, r12, r2",
                "add r12, r12, lr, lsr #31",
                "stm r0!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
                "cmp r0, r1",
                "bne 4b",
                "5:",
                inout("r0") range.start => _,
                in("r1") range.end,
                in("r2") recip,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                out("lr") _,
                options(nostack),
            );
        }
    }
}

/// Largest element of a row (`i32::MIN` for an empty one; the callers' rows are not): the
/// first element, then `LDM` of eight and `cmp`/`it gt`/`movgt` per element; the last
/// `(len − 1) % 8` elements in Rust.
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn row_max_i32(buf: &[i32]) -> i32 {
    let Some((&first, rest)) = buf.split_first() else {
        return i32::MIN;
    };
    let (body, tail) = rest.split_at(rest.len() & !7);
    let mut m = first;
    if !body.is_empty() {
        let range = body.as_ptr_range();
        // SAFETY: reads `body` (a non-empty multiple of 8 words) with LDM; every written
        // register is declared.
        unsafe {
            asm!(dsp_directive!(),
                "2:",
                "ldm r0!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
                "cmp r3, r2",
                "it gt",
                "movgt r2, r3",
                "cmp r4, r2",
                "it gt",
                "movgt r2, r4",
                "cmp r5, r2",
                "it gt",
                "movgt r2, r5",
                "cmp r8, r2",
                "it gt",
                "movgt r2, r8",
                "cmp r9, r2",
                "it gt",
                "movgt r2, r9",
                "cmp r10, r2",
                "it gt",
                "movgt r2, r10",
                "cmp r11, r2",
                "it gt",
                "movgt r2, r11",
                "cmp r12, r2",
                "it gt",
                "movgt r2, r12",
                "cmp r0, r1",
                "bne 2b",
                inout("r0") range.start => _,
                in("r1") range.end,
                inout("r2") m,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                options(nostack, readonly),
            );
        }
    }
    for &x in tail {
        m = m.max(x);
    }
    m
}

#[cfg(any(core_attn_dsp, core_attn_mve))]
/// One int8 element of [`exp_pass_i8`]: fast path inline, `$slow` out of line, continuing at
/// `$cont`.
macro_rules! body_i8 {
    ($slow:literal, $cont:literal) => {
        concat!(
            "ldrsb r12, [r0], #1\n",
            "sub r12, r2, r12\n",
            "cmp r12, r3\n",
            "bhs ",
            $slow,
            "f\n",
            "lsl r12, r12, r4\n",
            "smmulr r12, r12, r5\n",
            "lsr r11, r12, #8\n",
            "uxtb r12, r12\n",
            "ldrh r11, [r8, r11, lsl #1]\n",
            "ldrh r12, [r9, r12, lsl #1]\n",
            "mul r11, r11, r12\n",
            "add r11, r11, #32768\n",
            "lsr r11, r11, #16\n",
            $cont,
            ":\n",
            "strh r11, [lr], #2\n",
            "add r10, r10, r11\n",
        )
    };
}

#[cfg(any(core_attn_dsp, core_attn_mve))]
/// The slow path of one int8 element: `d ≥ t_hi` → 0; between the bounds → `0xffff`, marked,
/// resuming at `$next`.
macro_rules! slow_i8 {
    ($slow:literal, $cont:literal, $next:literal) => {
        concat!(
            $slow,
            ":\n",
            "ldr r11, [sp]\n",
            "cmp r12, r11\n",
            "movw r11, #0\n",
            "bhs ",
            $cont,
            "b\n",
            "movw r11, #0xffff\n",
            "strh r11, [lr], #2\n",
            "orr r10, r10, #0x80000000\n",
            "b ",
            $next,
            "b\n",
        )
    };
}

/// [`exp_pass_i32`] for an int8 row (`d = max − x ≤ 255` never wraps) into `u16` exponentials:
/// `ldrsb` in, `strh` out (the output pointer takes `lr`, so the rounding constant is an
/// immediate `add`), unrolled four times and entered by `len % 4`. An element with
/// `t_lo ≤ d < t_hi` is left as `0xffff` (exponentials are `≤ 65534`) and bit 31 of the
/// returned sum is set.
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn exp_pass_i8(input: &[i8], out: &mut [u16], p: &ExpLoop<'_>) -> u32 {
    // The callers pass non-empty rows of equal lengths; anything else has nothing to sum.
    if input.is_empty() || input.len() != out.len() {
        debug_assert!(input.len() == out.len(), "exp_pass_i8: lengths differ");
        return 0;
    }
    let range = input.as_ptr_range();
    let sum: u32;
    // SAFETY: reads the bytes of `input` (`r0` from its start to its end; non-empty: checked
    // above; the entry point is chosen by `len % 4` so that the loop ends exactly at the
    // end) and writes as many halfwords to `out` (same length, checked above); table reads as
    // in `exp_pass_i32`. The pushed word is popped before the end.
    unsafe {
        asm!(dsp_directive!(),
            "push {{r11}}",
            "sub r12, r1, r0",
            "and r12, r12, #3",
            "cmp r12, #2",
            "beq 22f",
            "bhi 21f",
            "cmp r12, #1",
            "beq 23f",
            "20:",
            body_i8!("40", "30"),
            "21:",
            body_i8!("41", "31"),
            "22:",
            body_i8!("42", "32"),
            "23:",
            body_i8!("43", "33"),
            "24:",
            "cmp r0, r1",
            "bne 20b",
            "b 9f",
            slow_i8!("40", "30", "21"),
            slow_i8!("41", "31", "22"),
            slow_i8!("42", "32", "23"),
            slow_i8!("43", "33", "24"),
            "9:",
            "add sp, sp, #4",
            inout("r0") range.start => _,
            in("r1") range.end,
            in("r2") p.max,
            in("r3") p.t_lo,
            in("r4") p.sh,
            in("r5") p.m,
            in("r8") p.hi.as_ptr(),
            in("r9") p.lo.as_ptr(),
            inout("r10") 0u32 => sum,
            inout("r11") p.t_hi => _,
            out("r12") _,
            inout("lr") out.as_mut_ptr() => _,
        );
    }
    sum
}

/// Largest element of an int8 row (`i8::MIN` for an empty one; the callers' rows are not), four
/// lanes at a time: `SSUB8` sets the GE flag of every byte lane where the new word is at least
/// the running maximum and `SEL` takes those lanes (a lane-wise signed maximum), then the four
/// lanes are reduced.
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn max_i8(input: &[i8]) -> i8 {
    let mut chunks = input.chunks_exact(4);
    let Some(&first) = input.first() else {
        return i8::MIN;
    };
    let mut m = first;
    if let Some(c) = input.first_chunk::<4>() {
        let w = |c: &[i8]| u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
        let mut lanes = w(c);
        for c in &mut chunks {
            let x = w(c);
            // SAFETY: register-only operations (`SSUB8` writes the GE flags `SEL` reads; the
            // flags are declared clobbered by not passing `preserves_flags`).
            unsafe {
                asm!(dsp_directive!(),
                    "ssub8 {t}, {x}, {m}",
                    "sel {m}, {x}, {m}",
                    t = out(reg) _,
                    x = in(reg) x,
                    m = inout(reg) lanes,
                    options(pure, nomem, nostack),
                );
            }
        }
        m = lanes
            .to_le_bytes()
            .iter()
            .map(|&b| b as i8)
            .max()
            .unwrap_or(m);
    }
    for &x in chunks.remainder() {
        m = m.max(x);
    }
    m
}

/// `buf[k] = p(buf[2k]) | p(buf[2k+1]) << 16` for `k < npairs`, `p(e) = (e·recip + 2^31) >> 32`
/// (in place: pair `k` is read before word `k ≤ 2k` is written): per pair `ldrd`, `umull` +
/// `add …, lsr #31` ×2, `pkhbt`, `orr`, `str`, loop — 10 instructions. Returns the OR of the
/// packed words (bit 15 or 31 set iff a probability is exactly 1.0). Needs
/// `2·npairs ≤ buf.len()` (checked: otherwise nothing is done and 0 returned, after a
/// `debug_assert!`; the caller passes `buf.len() / 2`). `SM` (`recip < 2^31`): `SMMULR` ×2
/// instead of the `UMULL`/`ADD` pairs (8 instructions per pair).
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn pairs_i32<const SM: bool>(buf: &mut [i32], npairs: usize, recip: u32) -> u32 {
    if npairs > buf.len() / 2 {
        debug_assert!(false, "pairs_i32: more pairs than the row holds");
        return 0;
    }
    if npairs == 0 {
        return 0;
    }
    let start = buf.as_mut_ptr();
    let or: u32;
    // SAFETY: `r0` reads `buf[..2·npairs]` (checked in bounds, non-empty) two words at a time
    // (`LDRD`, word-aligned `i32`s) and `r2` writes `buf[..npairs]`, word `k` only after pair
    // `k` (words `2k`, `2k + 1` ≥ `k`) was read. Every written register is declared.
    unsafe {
        if SM {
            asm!(dsp_directive!(),
                "add r1, r0, r1, lsl #3",
                "mov r2, r0",
                "2:",
                "ldrd r8, r9, [r0], #8",
                "smmulr r8, r8, r3",
                "smmulr r9, r9, r3",
                "pkhbt r8, r8, r9, lsl #16",
                "orr r4, r4, r8",
                "str r8, [r2], #4",
                "cmp r0, r1",
                "bne 2b",
                inout("r0") start => _,
                inout("r1") npairs => _,
                out("r2") _,
                in("r3") recip,
                inout("r4") 0u32 => or,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                options(nostack),
            );
        } else {
            asm!(dsp_directive!(),
                "add r1, r0, r1, lsl #3",
                "mov r2, r0",
                "2:",
                "ldrd r8, r9, [r0], #8",
                "umull r10, r8, r8, r3",
                "add r8, r8, r10, lsr #31",
                "umull r10, r9, r9, r3",
                "add r9, r9, r10, lsr #31",
                "pkhbt r8, r8, r9, lsl #16",
                "orr r4, r4, r8",
                "str r8, [r2], #4",
                "cmp r0, r1",
                "bne 2b",
                inout("r0") start => _,
                inout("r1") npairs => _,
                out("r2") _,
                in("r3") recip,
                inout("r4") 0u32 => or,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                options(nostack),
            );
        }
    }
    or
}

/// `p ← (p·recip + 2^31) >> 32` for the first `4·⌊len/4⌋` halfwords of `probs`, four per
/// iteration: `ldrh` ×4, `umull` + `add …, lsr #31` ×4 (`SM`, `recip < 2^31`: `smmulr` ×4),
/// `strh` ×4, loop. Returns how many were done (the caller scales the last `len % 4`).
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn scale_u16<const SM: bool>(probs: &mut [u16], recip: u32) -> usize {
    let n4 = probs.len() & !3;
    if n4 == 0 {
        return 0;
    }
    let range = probs[..n4].as_mut_ptr_range();
    macro_rules! scale_u16_loop {
        ($($mul:literal),*) => {
            // SAFETY: `r0` reads and writes `probs[..n4]` (non-empty, a multiple of 4
            // halfwords) four halfwords at a time. Every written register is declared.
            unsafe {
                asm!(dsp_directive!(),
                    "2:",
                    "ldrh r3, [r0]",
                    "ldrh r4, [r0, #2]",
                    "ldrh r5, [r0, #4]",
                    "ldrh r8, [r0, #6]",
                    $($mul,)*
                    "strh r8, [r0, #6]",
                    "strh r5, [r0, #4]",
                    "strh r4, [r0, #2]",
                    "strh r3, [r0], #8",
                    "cmp r0, r1",
                    "bne 2b",
                    inout("r0") range.start => _,
                    in("r1") range.end,
                    in("r2") recip,
                    out("r3") _,
                    out("r4") _,
                    out("r5") _,
                    out("r8") _,
                    out("r9") _,
                    options(nostack),
                );
            }
        };
    }
    if SM {
        scale_u16_loop!(
            "smmulr r3, r3, r2",
            "smmulr r4, r4, r2",
            "smmulr r5, r5, r2",
            "smmulr r8, r8, r2"
        );
    } else {
        scale_u16_loop!(
            "umull r9, r3, r3, r2",
            "add r3, r3, r9, lsr #31",
            "umull r9, r4, r4, r2",
            "add r4, r4, r9, lsr #31",
            "umull r9, r5, r5, r2",
            "add r5, r5, r9, lsr #31",
            "umull r9, r8, r8, r2",
            "add r8, r8, r9, lsr #31"
        );
    }
    n4
}
