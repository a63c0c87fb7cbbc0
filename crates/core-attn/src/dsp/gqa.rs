//! Grouped-query attention's paired scores ([`scores_pair`]): two query heads that share a
//! key/value head scored against its key rows in one pass, each key word loaded and
//! sign-extended once for both. `asm!` on the DSP and Helium cores for head widths 8 and 16;
//! the portable loop (the host twin, the same `SMLAD` sums) elsewhere and for other widths.
//! The kernel that calls it is `crate::attention::Attention::run_grouped`.

#[cfg(any(core_attn_dsp, core_attn_mve))]
use core::arch::asm;

use crate::tensor::Rows;

#[cfg(any(core_attn_dsp, core_attn_mve))]
/// One 4-column word of a key row against both queries: `ldr`, `sxtb16` ×2, then per query
/// `ldrd` (its two extended words) and two dual MACs (`smuad` starts the sums).
macro_rules! score2_word {
    ($op:ident, $k:literal, $qa:literal, $qb:literal) => {
        concat!(
            "ldr r12, [r0, #",
            $k,
            "]\n",
            "sxtb16 lr, r12\n",
            "sxtb16 r12, r12, ror #8\n",
            "ldrd r10, r11, [r2, #",
            $qa,
            "]\n",
            score2_word!(@mac $op, "r4"),
            "ldrd r10, r11, [r2, #",
            $qb,
            "]\n",
            score2_word!(@mac $op, "r9"),
        )
    };
    (@mac smuad, $acc:literal) => {
        concat!(
            "smuad ", $acc, ", r10, lr\n",
            "smlad ", $acc, ", r11, r12, ", $acc, "\n",
        )
    };
    (@mac smlad, $acc:literal) => {
        concat!(
            "smlad ", $acc, ", r10, lr, ", $acc, "\n",
            "smlad ", $acc, ", r11, r12, ", $acc, "\n",
        )
    };
}

#[cfg(any(core_attn_dsp, core_attn_mve))]
/// The key loop of [`scores_pair`] for one head width (its words as `(key offset, query A
/// offset, query B offset)` literals, fully unrolled).
macro_rules! scores_pair_loop {
    ($first:expr, $end:expr, $qe:expr, $stride:expr, $out:expr, $diff:expr,
     ($k0:literal, $a0:literal, $b0:literal) $(, ($k:literal, $a:literal, $b:literal))*) => {
        // SAFETY: see `scores_pair`.
        unsafe {
            asm!(dsp_directive!(),
                "2:",
                score2_word!(smuad, $k0, $a0, $b0),
                $(score2_word!(smlad, $k, $a, $b),)*
                "add r0, r0, r3",
                "str r9, [r8, r5]",
                "str r4, [r8], #4",
                "cmp r8, r1",
                "bne 2b",
                inout("r0") $first => _,
                in("r1") $end,
                in("r2") $qe,
                in("r3") $stride,
                out("r4") _,
                in("r5") $diff,
                inout("r8") $out => _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                out("lr") _,
                options(nostack),
            );
        }
    };
}

/// `sa[j]`, `sb[j]` = the dot products of key row `j` of `kh` (its first `DH = qe.len()`
/// columns, `W = DH / 2`) with the two query heads, given extended (`qe[..W]`: head A,
/// `qe[W..]`: head B, each `[SXTB16(word c), SXTB16(word c, ROR 8)]` per 4 query bytes).
/// `false` (nothing written) if the shapes do not fit: `DH` not a multiple of 4, `kh`
/// narrower than `DH` or with fewer rows than `sa`, `sb` not as long as `sa`, no keys
/// (unreachable for the caller).
///
/// On the DSP and Helium cores, head widths 8 and 16 run in `asm!`: per key and 4 columns
/// `ldr` (key word), `sxtb16` ×2, and per head `ldrd` (its two query words) + 2
/// `smuad`/`smlad`; then `add` (next key), two `str`, loop — `9·DH/4 + 5` instructions per
/// key for both heads (one head alone: `6·DH/4 + 7` with its maximum, which
/// [`crate::softmax::row_max`] takes here afterwards).
#[inline(always)]
pub(crate) fn scores_pair(kh: Rows<'_>, qe: &[u32], sa: &mut [i32], sb: &mut [i32]) -> bool {
    let (n, w) = (sa.len(), qe.len() / 2);
    if sb.len() != n || kh.rows() < n || kh.width() < 2 * w || qe.len() % 4 != 0 || n == 0 {
        return false;
    }
    #[cfg(any(core_attn_dsp, core_attn_mve))]
    if w == 4 || w == 8 {
        // Bounds: the first and last key rows read (every row between lies between them in
        // the same slice, `stride` apart).
        let (Some(row0), Some(last)) = (kh.get_row(0), kh.get_row(n - 1)) else {
            return false;
        };
        if row0.len() < 2 * w || last.len() < 2 * w {
            return false;
        }
        let stride = match kh.get_row(1) {
            Some(r1) if n > 1 => (r1.as_ptr() as usize).wrapping_sub(row0.as_ptr() as usize),
            _ => 0,
        };
        let first = row0.as_ptr();
        let range = sa.as_mut_ptr_range();
        let diff = (sb.as_mut_ptr() as usize).wrapping_sub(range.start as usize);
        let qe = qe.as_ptr();
        // SAFETY (each `scores_pair_loop!`): `r8` writes the `n` words of `sa` (non-empty)
        // up to its end, one per key, and `r8 + r5` the same word of `sb` (as long as `sa`,
        // checked); `r0` reads `2·w` bytes of key rows `0..n` (`stride` apart, the first and
        // the last bounds-checked above; unaligned `LDR` is allowed on Armv7E-M / Armv8-M
        // Mainline); `r2` reads the `2·w` words of `qe` (`LDRD` at offsets `< 8·w`,
        // word-aligned, `qe.len() = 2·w`). Every written register is declared.
        if w == 4 {
            scores_pair_loop!(
                first,
                range.end,
                qe,
                stride,
                range.start,
                diff,
                ("0", "0", "16"),
                ("4", "8", "24")
            );
        } else {
            scores_pair_loop!(
                first,
                range.end,
                qe,
                stride,
                range.start,
                diff,
                ("0", "0", "32"),
                ("4", "8", "40"),
                ("8", "16", "48"),
                ("12", "24", "56")
            );
        }
        return true;
    }
    scores_pair_portable(kh, qe, w, sa, sb)
}

/// [`scores_pair`]'s portable loop (its host twin): the same `SMLAD` sums through
/// [`super::hw`] (the instructions where the target has them), `w` extended words per head.
#[inline(never)]
fn scores_pair_portable(
    kh: Rows<'_>,
    qe: &[u32],
    w: usize,
    sa: &mut [i32],
    sb: &mut [i32],
) -> bool {
    use super::hw::{smlad, sxtb16, sxtb16_ror8};
    let (Some(qa), Some(qb)) = (qe.get(..w), qe.get(w..2 * w)) else {
        return false;
    };
    for (j, (a, b)) in sa.iter_mut().zip(sb.iter_mut()).enumerate() {
        let Some(kr) = kh.get_row(j) else {
            return false;
        };
        let (mut acca, mut accb) = (0i32, 0i32);
        for ((c, ea), eb) in kr
            .chunks_exact(4)
            .zip(qa.chunks_exact(2))
            .zip(qb.chunks_exact(2))
        {
            let (&[c0, c1, c2, c3], &[a0, a1], &[b0, b1]) = (c, ea, eb) else {
                return false;
            };
            let x = u32::from_le_bytes([c0 as u8, c1 as u8, c2 as u8, c3 as u8]);
            let (xe, xo) = (sxtb16(x), sxtb16_ror8(x));
            acca = smlad(a1, xo, smlad(a0, xe, acca));
            accb = smlad(b1, xo, smlad(b0, xe, accb));
        }
        *a = acca;
        *b = accb;
    }
    true
}
