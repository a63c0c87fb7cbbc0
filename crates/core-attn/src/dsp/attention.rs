//! Attention inner loops: the weighted sum of V over probability pairs ([`wsum_pairs4`],
//! [`wsum_packed4`]) and one row of scores ([`scores_row`]), in `asm!` where the target has the
//! DSP extension (`cfg(core_attn_dsp)`, `cfg(core_attn_mve)`), taking plain slices, row views and
//! scalars. The generic kernels and the portable fallbacks are in [`crate::attention`].
// Size-first builds (`cfg(core_attn_small)`) keep one copy of each loop: the fast
// variants they leave out are dead there.
#![cfg_attr(core_attn_small, allow(dead_code))]

#[cfg(any(core_attn_dsp, core_attn_mve))]
use core::arch::asm;

/// [`wsum_pairs4`] called on rows or columns `v` does not have (unreachable: the callers'
/// shapes): nothing is added.
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[cold]
#[inline(never)]
fn out_of_range() {
    debug_assert!(false, "wsum_pairs4: rows or columns out of range");
}

/// `acc[c] += Σ_k p_2k·v[2k][col + c] + p_2k+1·v[2k+1][col + c]` for `c < 4` over the key
/// pairs `k < pp.len()` (`pp[k] = p_2k | p_2k+1 << 16`, each half read as a signed 16-bit
/// value like `SMLAD` does), straight from the int8 rows of `v`: per key pair `ldr` (the
/// probability pair), `ldr` ×2 (the two rows' 4 columns), `add` (two rows on), `sxtb16` ×4,
/// `smlabb`/`smlabt`/`smlatb`/`smlatt` ×8 (one 16×16 MAC each, no repacking of V), loop — 18
/// instructions per 8 MACs, the four accumulators in registers. Needs `2·pp.len() ≤ v.rows()`
/// and `col + 4 ≤ v.width()` (checked: otherwise `acc` is left as it is, after a
/// `debug_assert!`; the callers' shapes make that unreachable).
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn wsum_pairs4(pp: &[i32], v: crate::tensor::Rows<'_>, col: usize, acc: &mut [i32; 4]) {
    let n = pp.len();
    if n == 0 {
        return;
    }
    // Bounds: the first and the last row read (rows are `stride` apart in one slice, so
    // every row in between is inside it too). The failure path is cold and out of line: with
    // it inline, the checks of the per-4-column calls cost ~1% of a Cortex-M55 char-lm prefill.
    let end = col.wrapping_add(4);
    let (Some(row0), Some(row1), Some(last)) = (v.get_row(0), v.get_row(1), v.get_row(2 * n - 1))
    else {
        return out_of_range();
    };
    let (Some(first), Some(last)) = (row0.get(col..end), last.get(col..end)) else {
        return out_of_range();
    };
    let first = first.as_ptr();
    let stride = (row1.as_ptr() as usize).wrapping_sub(row0.as_ptr() as usize);
    debug_assert_eq!(
        first as usize + (2 * n - 1) * stride,
        last.as_ptr() as usize
    );
    let range = pp.as_ptr_range();
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    // SAFETY: `r0` walks `pp` (non-empty) to its end, one word per iteration. `r2` starts at
    // row 0, column `col` of `v` and moves two rows (`2·stride`) per iteration; the rows read,
    // `0..2n`, are all inside `v`'s slice: row 0 and row `2n − 1` were bounds-checked above
    // (columns `col..col + 4` included) and the rows between lie between them. Unaligned
    // single `LDR`s are allowed on Armv7E-M / Armv8-M Mainline. Every written register is
    // declared.
    unsafe {
        asm!(dsp_directive!(),
            "2:",
            "ldr r10, [r0], #4",
            "ldr r11, [r2]",
            "ldr r12, [r2, r3]",
            "add r2, r2, r3, lsl #1",
            "sxtb16 lr, r11",
            "smlabb r4, r10, lr, r4",
            "smlabt r8, r10, lr, r8",
            "sxtb16 lr, r11, ror #8",
            "smlabb r5, r10, lr, r5",
            "smlabt r9, r10, lr, r9",
            "sxtb16 lr, r12",
            "smlatb r4, r10, lr, r4",
            "smlatt r8, r10, lr, r8",
            "sxtb16 lr, r12, ror #8",
            "smlatb r5, r10, lr, r5",
            "smlatt r9, r10, lr, r9",
            "cmp r0, r1",
            "bne 2b",
            inout("r0") range.start => _,
            in("r1") range.end,
            inout("r2") first => _,
            in("r3") stride,
            inout("r4") a0,
            inout("r5") a1,
            inout("r8") a2,
            inout("r9") a3,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
            options(nostack, readonly),
        );
    }
    *acc = [a0, a1, a2, a3];
}

#[cfg(any(core_attn_dsp, core_attn_mve))]
/// One 4-column word of a key row against the query's two extended words (`r2` + `$q`):
/// `ldr`, `ldrd`, `sxtb16` ×2 and two dual MACs (`$op` for the first: `smuad` starts the sum).
macro_rules! score_word {
    (smuad, $k:literal, $q:literal) => {
        concat!(
            "ldr r12, [r0, #",
            $k,
            "]\n",
            "ldrd r10, r11, [r2, #",
            $q,
            "]\n",
            "sxtb16 lr, r12\n",
            "smuad r4, r10, lr\n",
            "sxtb16 lr, r12, ror #8\n",
            "smlad r4, r11, lr, r4\n",
        )
    };
    (smlad, $k:literal, $q:literal) => {
        concat!(
            "ldr r12, [r0, #",
            $k,
            "]\n",
            "ldrd r10, r11, [r2, #",
            $q,
            "]\n",
            "sxtb16 lr, r12\n",
            "smlad r4, r10, lr, r4\n",
            "sxtb16 lr, r12, ror #8\n",
            "smlad r4, r11, lr, r4\n",
        )
    };
}

#[cfg(any(core_attn_dsp, core_attn_mve))]
/// The key loop of [`scores_row`] for one head width (its words listed as `(key offset, query
/// offset)` literals, fully unrolled).
macro_rules! scores_loop {
    ($first:expr, $end:expr, $qe:expr, $stride:expr, $out:expr, $max:ident,
     ($k0:literal, $q0:literal) $(, ($k:literal, $q:literal))*) => {
        // SAFETY: see `scores_row`.
        unsafe {
            asm!(dsp_directive!(),
                "2:",
                score_word!(smuad, $k0, $q0),
                $(score_word!(smlad, $k, $q),)*
                "add r0, r0, r3",
                "str r4, [r8], #4",
                "cmp r4, r5",
                "it gt",
                "movgt r5, r4",
                "cmp r8, r1",
                "bne 2b",
                inout("r0") $first => _,
                in("r1") $end,
                in("r2") $qe,
                in("r3") $stride,
                out("r4") _,
                inout("r5") $max,
                inout("r8") $out => _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                out("lr") _,
                options(nostack),
            );
        }
    };
}

/// Scores of one query head against the first `out.len()` keys of `k` (columns
/// `c0..c0 + 2·qe.len()`), returning their maximum: `qe` is the query head extended once
/// (`qe[2c] = sxtb16(word c)`, `qe[2c+1] = sxtb16(word c, ror 8)`). Per key, fully unrolled for
/// head widths 8/16/24/32: per 4 columns `ldr` (key word), `ldrd` (the two query words),
/// `sxtb16` ×2, `smuad`/`smlad` ×2; then `add` (next key), `str`, `cmp`/`it gt`/`movgt`
/// (maximum), loop — `6·DH/4 + 7` instructions per key. `None` for other head widths.
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn scores_row(
    qe: &[u32],
    k: crate::tensor::Rows<'_>,
    c0: usize,
    out: &mut [i32],
) -> Option<i32> {
    let dh = 2 * qe.len();
    let n = out.len();
    if n == 0 || !matches!(dh, 8 | 16 | 24 | 32) {
        return None;
    }
    // Bounds: the first and last key rows read (every row between lies between them in the
    // same slice, `stride` apart); `None` (the caller's generic loop) if they are not there.
    if k.rows() < n {
        return None;
    }
    let end = c0.wrapping_add(dh);
    let row0 = k.get_row(0)?;
    let first = row0.get(c0..end)?.as_ptr();
    let _last = k.get_row(n - 1)?.get(c0..end)?;
    let stride = if n > 1 {
        (k.get_row(1)?.as_ptr() as usize).wrapping_sub(row0.as_ptr() as usize)
    } else {
        0
    };
    let range = out.as_mut_ptr_range();
    let qe = qe.as_ptr();
    let mut max = i32::MIN;
    // SAFETY (each `scores_loop!`): `r8` writes the words of `out` (non-empty) up to its end,
    // one per key; `r0` reads `dh` bytes of key rows `0..n` (`stride` apart, the first and the
    // last bounds-checked above, unaligned `LDR` allowed on Armv7E-M / Armv8-M Mainline);
    // `r2` reads the `dh / 2` words of `qe` (`LDRD` at offsets `< 4·(dh / 2)`, word-aligned).
    // Every written register is declared.
    match dh {
        8 => scores_loop!(
            first,
            range.end,
            qe,
            stride,
            range.start,
            max,
            ("0", "0"),
            ("4", "8")
        ),
        16 => scores_loop!(
            first,
            range.end,
            qe,
            stride,
            range.start,
            max,
            ("0", "0"),
            ("4", "8"),
            ("8", "16"),
            ("12", "24")
        ),
        24 => scores_loop!(
            first,
            range.end,
            qe,
            stride,
            range.start,
            max,
            ("0", "0"),
            ("4", "8"),
            ("8", "16"),
            ("12", "24"),
            ("16", "32"),
            ("20", "40")
        ),
        _ => scores_loop!(
            first,
            range.end,
            qe,
            stride,
            range.start,
            max,
            ("0", "0"),
            ("4", "8"),
            ("8", "16"),
            ("12", "24"),
            ("16", "32"),
            ("20", "40"),
            ("24", "48"),
            ("28", "56")
        ),
    }
    Some(max)
}

/// `acc[c] = SMLAD(pp[k], vg[4k + c], acc[c])` over the key pairs `k < pp.len()`: the packed-V
/// weighted sum of [`crate::attention::Attention::run_packed`] for one column group — per key
/// pair `ldr` (probability pair), `ldm` (four packed V words), `smlad` ×4, loop: 8 instructions
/// per 8 MACs. Needs `vg.len() ≥ 4·pp.len()` (checked: otherwise `acc` is left as it is,
/// after a `debug_assert!`; the caller packs 4 words per key pair, so that is unreachable).
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(always)]
pub(crate) fn wsum_packed4(pp: &[i32], vg: &[u32], acc: &mut [i32; 4]) {
    // `4·pp.len()` does not overflow: `pp` is a slice of 4-byte elements.
    if vg.len() < 4 * pp.len() {
        debug_assert!(false, "wsum_packed4: packed V too short");
        return;
    }
    if pp.is_empty() {
        return;
    }
    let range = pp.as_ptr_range();
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    // SAFETY: `r0` walks `pp` (non-empty) to its end, one word per iteration; `r2` reads four
    // words of `vg` per iteration, `4·pp.len() ≤ vg.len()` in all (checked; `vg` is a `u32`
    // slice, so word-aligned for `LDM`). Every written register is declared.
    unsafe {
        asm!(dsp_directive!(),
            "2:",
            "ldr r9, [r0], #4",
            "ldm r2!, {{r10, r11, r12, lr}}",
            "smlad r3, r9, r10, r3",
            "smlad r4, r9, r11, r4",
            "smlad r5, r9, r12, r5",
            "smlad r8, r9, lr, r8",
            "cmp r0, r1",
            "bne 2b",
            inout("r0") range.start => _,
            in("r1") range.end,
            inout("r2") vg.as_ptr() => _,
            inout("r3") a0,
            inout("r4") a1,
            inout("r5") a2,
            inout("r8") a3,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
            options(nostack, readonly),
        );
    }
    *acc = [a0, a1, a2, a3];
}
