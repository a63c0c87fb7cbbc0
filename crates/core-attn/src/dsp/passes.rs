//! The softmax and attention passes the DSP-form kernels are written in, as one interface
//! ([`Passes`]) with three implementations:
//!
//! - [`Asm`]: the `asm!` loops of `dsp/softmax.rs` and `dsp/attention.rs` (Cortex-M4/M7/M33
//!   with the DSP extension, and the Helium cores, which implement it too). Off those targets
//!   `Asm` is the emulation below (the registries' `armv7em_dsp` entries are then unavailable:
//!   never dispatched, not run by the suite);
//! - [`Emulated`]: the host twin of every `asm!` pass, the same algorithm written instruction
//!   by instruction with the intrinsics' portable definitions (`SMMULR`, `UMULL`, `SMLAD`,
//!   `SMLAxy`, `SXTB16`, `SSUB8`/`SEL`, `PKHBT`), including the `asm!` passes' marking of the
//!   elements between the two bounds of the fast range. The registries'
//!   `armv7em_dsp_emulated` entries run the DSP-form softmax and attention kernels on it, so
//!   that the shared suite (`tests/variants.rs`) checks the `asm!` algorithm on the host
//!   against the generic kernels, as `armv7em_dsp/emulated.rs` does for the linear layer;
//! - [`Portable`]: `DSP_FORM = false`, the kernels' own portable loops (the non-DSP builds and
//!   the host's `portable` entries; its pass methods are never called).
//!
//! The kernels are generic over `P: Passes` and branch on the constant `P::DSP_FORM`: each
//! instantiation keeps exactly one branch, so the firmware's code is the code the `cfg`s
//! selected before (no run-time cost).

use super::softmax::ExpLoop;
use crate::tensor::Rows;

/// The `asm!` passes of the softmax and attention kernels (see the module). Every method's
/// contract is that of the `asm!` function of the same name (`dsp/softmax.rs`,
/// `dsp/attention.rs`); the provided bodies are the emulation.
pub(crate) trait Passes {
    /// Whether the kernels run these passes (`true`) or their portable loops (`false`).
    const DSP_FORM: bool;

    /// Row maximum, then [`Passes::exp_pass_i32`] with it (`p.max` ignored).
    ///
    /// Injected bug caught (emulation): `p.max` used instead of the row maximum
    /// (`softmax_variants_are_bit_identical`, `softmax_any_requant_is_bit_identical`).
    // Size-first builds (`cfg(core_attn_small)`) run the generic softmax loops only.
    #[cfg_attr(core_attn_small, allow(dead_code))]
    #[inline(always)]
    fn softmax_exp_i32(buf: &mut [i32], p: &ExpLoop<'_>) -> u32 {
        if buf.is_empty() {
            return 0;
        }
        let max = emu::row_max_i32(buf);
        emu::exp_pass_i32(buf, &ExpLoop { max, ..*p })
    }

    /// `buf[j] ← exp(max − buf[j])` on the fast range; elements between the bounds are left as
    /// `d | 2^31` and bit 31 of the returned sum is set.
    #[inline(always)]
    fn exp_pass_i32(buf: &mut [i32], p: &ExpLoop<'_>) -> u32 {
        emu::exp_pass_i32(buf, p)
    }

    /// `buf[j] ← (buf[j]·recip + 2^31) >> 32` (`SM`: `SMMULR`, else `UMULL` and the carry).
    ///
    /// Injected bug caught (emulation): the first element left unscaled (the `len % 4`
    /// singles loop entered one element late): five tests of `tests/variants.rs` fail.
    #[inline(always)]
    fn scale_i32<const SM: bool>(buf: &mut [i32], recip: u32) {
        for x in buf.iter_mut() {
            *x = emu::mul_q32::<SM>(*x as u32, recip) as i32;
        }
    }

    /// Largest element (`i32::MIN` for an empty row).
    #[inline(always)]
    fn row_max_i32(buf: &[i32]) -> i32 {
        emu::row_max_i32(buf)
    }

    /// [`Passes::exp_pass_i32`] for an int8 row into `u16` exponentials (marked: `0xffff`).
    #[inline(always)]
    fn exp_pass_i8(input: &[i8], out: &mut [u16], p: &ExpLoop<'_>) -> u32 {
        emu::exp_pass_i8(input, out, p)
    }

    /// Largest element of an int8 row (`SSUB8`/`SEL` lane maxima; `i8::MIN` if empty).
    #[inline(always)]
    fn max_i8(input: &[i8]) -> i8 {
        emu::max_i8(input)
    }

    /// Probabilities of `2·npairs` exponentials packed in pairs in place; the OR of the words.
    #[inline(always)]
    fn pairs_i32<const SM: bool>(buf: &mut [i32], npairs: usize, recip: u32) -> u32 {
        emu::pairs_i32::<SM>(buf, npairs, recip)
    }

    /// The first `4·⌊len/4⌋` probabilities scaled; returns how many.
    #[inline(always)]
    fn scale_u16<const SM: bool>(probs: &mut [u16], recip: u32) -> usize {
        let n4 = probs.len() & !3;
        for p in probs.iter_mut().take(n4) {
            *p = emu::mul_q32::<SM>(*p as u32, recip) as u16;
        }
        n4
    }

    /// Weighted sum of four columns of V over probability pairs, straight from int8 rows.
    #[inline(always)]
    fn wsum_pairs4(pp: &[i32], v: Rows<'_>, col: usize, acc: &mut [i32; 4]) {
        emu::wsum_pairs4(pp, v, col, acc)
    }

    /// One row of scores of a sign-extended query head; `None` for other head widths than
    /// 8/16/24/32 or keys that are not there.
    #[inline(always)]
    fn scores_row(qe: &[u32], k: Rows<'_>, c0: usize, out: &mut [i32]) -> Option<i32> {
        emu::scores_row(qe, k, c0, out)
    }

    /// Packed-V weighted sum of one column group.
    #[inline(always)]
    fn wsum_packed4(pp: &[i32], vg: &[u32], acc: &mut [i32; 4]) {
        emu::wsum_packed4(pp, vg, acc)
    }
}

/// The emulated `asm!` passes (the provided methods of [`Passes`]): the host twin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Emulated;

impl Passes for Emulated {
    const DSP_FORM: bool = true;
}

/// The portable loops of the kernels (`DSP_FORM = false`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Portable;

impl Passes for Portable {
    const DSP_FORM: bool = false;
}

/// The `asm!` passes themselves (see the module).
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asm;

/// Off the DSP targets there is no `asm!`: [`Emulated`] stands in (the registries mark the
/// `armv7em_dsp` entries unavailable there).
#[cfg(not(any(core_attn_dsp, core_attn_mve)))]
pub(crate) type Asm = Emulated;

#[cfg(any(core_attn_dsp, core_attn_mve))]
impl Passes for Asm {
    const DSP_FORM: bool = true;

    #[inline(always)]
    fn softmax_exp_i32(buf: &mut [i32], p: &ExpLoop<'_>) -> u32 {
        super::softmax::softmax_exp_i32(buf, p)
    }
    #[inline(always)]
    fn exp_pass_i32(buf: &mut [i32], p: &ExpLoop<'_>) -> u32 {
        super::softmax::exp_pass_i32(buf, p)
    }
    #[inline(always)]
    fn scale_i32<const SM: bool>(buf: &mut [i32], recip: u32) {
        super::softmax::scale_i32::<SM>(buf, recip)
    }
    #[inline(always)]
    fn row_max_i32(buf: &[i32]) -> i32 {
        super::softmax::row_max_i32(buf)
    }
    #[inline(always)]
    fn exp_pass_i8(input: &[i8], out: &mut [u16], p: &ExpLoop<'_>) -> u32 {
        super::softmax::exp_pass_i8(input, out, p)
    }
    #[inline(always)]
    fn max_i8(input: &[i8]) -> i8 {
        super::softmax::max_i8(input)
    }
    #[inline(always)]
    fn pairs_i32<const SM: bool>(buf: &mut [i32], npairs: usize, recip: u32) -> u32 {
        super::softmax::pairs_i32::<SM>(buf, npairs, recip)
    }
    #[inline(always)]
    fn scale_u16<const SM: bool>(probs: &mut [u16], recip: u32) -> usize {
        super::softmax::scale_u16::<SM>(probs, recip)
    }
    #[inline(always)]
    fn wsum_pairs4(pp: &[i32], v: Rows<'_>, col: usize, acc: &mut [i32; 4]) {
        super::attention::wsum_pairs4(pp, v, col, acc)
    }
    #[inline(always)]
    fn scores_row(qe: &[u32], k: Rows<'_>, c0: usize, out: &mut [i32]) -> Option<i32> {
        super::attention::scores_row(qe, k, c0, out)
    }
    #[inline(always)]
    fn wsum_packed4(pp: &[i32], vg: &[u32], acc: &mut [i32; 4]) {
        super::attention::wsum_packed4(pp, vg, acc)
    }
}

/// The emulation, instruction by instruction (register names as in the `asm!`).
///
/// Each pass is checked by the shared suite through the DSP-form kernels
/// ([`crate::softmax::SOFTMAX_VARIANTS`] and [`crate::attention::ATTENTION_VARIANTS`],
/// `armv7em_dsp_emulated`); the bug named on each function was injected and caught there
/// (`cargo test -p core-attn --test variants`).
mod emu {
    use super::ExpLoop;
    use crate::dsp::intrinsics::{smlad, sxtb16, sxtb16_ror8};
    use crate::tensor::Rows;

    /// `SMMULR a, b`: `(a·b + 2^31) >> 32`, signed.
    #[inline(always)]
    fn smmulr(a: u32, b: u32) -> u32 {
        ((a as i32 as i64 * b as i32 as i64 + (1 << 31)) >> 32) as u32
    }

    /// `UMULL lo, hi, a, b` then `ADD hi, hi, lo, LSR #31` (`SM`: one `SMMULR`, equal for
    /// `a, b < 2^31`).
    ///
    /// Injected bug caught: the `ADD …, LSR #31` rounding carry dropped: five tests fail.
    #[inline(always)]
    pub(super) fn mul_q32<const SM: bool>(a: u32, b: u32) -> u32 {
        if SM {
            smmulr(a, b)
        } else {
            let x = a as u64 * b as u64;
            ((x >> 32) as u32).wrapping_add(x as u32 >> 31)
        }
    }

    /// `SMLAxy`: `acc + a·b` of two signed halfwords, wrapping.
    #[inline(always)]
    fn smla(a: u16, b: u16, acc: i32) -> i32 {
        acc.wrapping_add(a as i16 as i32 * b as i16 as i32)
    }

    /// The table product of the fast path: `lsr r11, q, #8`, `uxtb r12, q`, two `LDRH`,
    /// `MLA` with `2^15`, `LSR #16`. `q < 65535` there (a larger one would read past the
    /// tables: 0 here, after a `debug_assert!`).
    #[inline(always)]
    fn table(p: &ExpLoop<'_>, q: u32) -> u32 {
        let (Some(&h), Some(&l)) = (p.hi.get((q >> 8) as usize), p.lo.get((q & 255) as usize))
        else {
            debug_assert!(false, "fast-path index past the tables");
            return 0;
        };
        (h as u32 * l as u32).wrapping_add(1 << 15) >> 16
    }

    /// `exp_pass_i32`: per element `sub`, unsigned `cmp`/`bhs` against `t_lo`; fast path
    /// `lsl` by `sh`, `SMMULR` by `m`, the table product; slow path: a wrapped (negative)
    /// difference is index 0, `d ≥ t_hi` gives 0, else `d | 2^31` is stored, bit 31 of the sum
    /// set and nothing added.
    ///
    /// Injected bug caught: the wrapped-difference branch giving 0 instead of index 0's
    /// exponential (`softmax_any_requant_is_bit_identical`, whose rows reach `±2^31`).
    pub(super) fn exp_pass_i32(buf: &mut [i32], p: &ExpLoop<'_>) -> u32 {
        let mut sum = 0u32;
        for x in buf.iter_mut() {
            let d = (p.max as u32).wrapping_sub(*x as u32);
            if d < p.t_lo {
                let e = table(p, smmulr(d << p.sh, p.m as u32));
                *x = e as i32;
                sum = sum.wrapping_add(e);
            } else if (d as i32) < 0 {
                let e = table(p, 0);
                *x = e as i32;
                sum = sum.wrapping_add(e);
            } else if d >= p.t_hi {
                *x = 0;
            } else {
                *x = (d | 1 << 31) as i32;
                sum |= 1 << 31;
            }
        }
        sum
    }

    /// `row_max_i32` (`cmp`/`it gt`/`movgt` from the first element).
    ///
    /// Injected bug caught: `movlt` for `movgt` (a row minimum): five tests fail.
    pub(super) fn row_max_i32(buf: &[i32]) -> i32 {
        let Some((&first, rest)) = buf.split_first() else {
            return i32::MIN;
        };
        rest.iter().fold(first, |m, &x| if x > m { x } else { m })
    }

    /// `exp_pass_i8`: `LDRSB`, the same fast path into `STRH`; slow path (no wrapped
    /// differences in an int8 row): `d ≥ t_hi` gives 0, else `0xffff` is stored and bit 31 of
    /// the sum set. Lengths differ or empty: 0, nothing written.
    ///
    /// Injected bug caught: `d ≤ t_lo` taken as the fast range instead of `d < t_lo` (the
    /// first difference past it read through the single-word index: an index past the
    /// tables, which [`table`]'s assertion reports, in `softmax_any_requant_is_bit_identical`).
    pub(super) fn exp_pass_i8(input: &[i8], out: &mut [u16], p: &ExpLoop<'_>) -> u32 {
        if input.is_empty() || input.len() != out.len() {
            return 0;
        }
        let mut sum = 0u32;
        for (o, &x) in out.iter_mut().zip(input) {
            let d = (p.max as u32).wrapping_sub(x as i32 as u32);
            if d < p.t_lo {
                let e = table(p, smmulr(d << p.sh, p.m as u32));
                *o = e as u16;
                sum = sum.wrapping_add(e);
            } else if d >= p.t_hi {
                *o = 0;
            } else {
                *o = 0xffff;
                sum |= 1 << 31;
            }
        }
        sum
    }

    /// `SSUB8` (the GE flag of each byte lane: `x − m ≥ 0`, signed) and `SEL` (those lanes
    /// of `x`, the others of `m`).
    #[inline(always)]
    fn ssub8_sel(x: u32, m: u32) -> u32 {
        let mut r = 0u32;
        for lane in 0..4 {
            let (a, b) = ((x >> (8 * lane)) as i8, (m >> (8 * lane)) as i8);
            let ge = a as i32 - b as i32 >= 0;
            r |= ((if ge { a } else { b }) as u8 as u32) << (8 * lane);
        }
        r
    }

    /// `max_i8`: lane-wise maxima of the words (the first word again included), reduced, then
    /// the last `len % 4` elements.
    ///
    /// Injected bug caught: `SEL` taking the lanes where `x < m` (a lane-wise minimum):
    /// `softmax_variants_are_bit_identical` and two more fail.
    pub(super) fn max_i8(input: &[i8]) -> i8 {
        let mut chunks = input.chunks_exact(4);
        let Some(&first) = input.first() else {
            return i8::MIN;
        };
        let mut m = first;
        if let Some(c) = input.first_chunk::<4>() {
            let w = |c: &[i8]| u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
            let mut lanes = w(c);
            for c in &mut chunks {
                lanes = ssub8_sel(w(c), lanes);
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

    /// `pairs_i32`: per pair `LDRD`, the two products ([`mul_q32`]), `PKHBT` (low half of the
    /// first, the second shifted up), `ORR`, `STR` to word `k`.
    ///
    /// Injected bug caught: the pair's halves swapped (`PKHBT r8, r9, r8, LSL #16`):
    /// `attention_variants_are_bit_identical`, `single_query_rows_every_kv_length` and the
    /// registry test fail.
    pub(super) fn pairs_i32<const SM: bool>(buf: &mut [i32], npairs: usize, recip: u32) -> u32 {
        if npairs > buf.len() / 2 {
            return 0;
        }
        let mut or = 0u32;
        for k in 0..npairs {
            let (Some(&e0), Some(&e1)) = (buf.get(2 * k), buf.get(2 * k + 1)) else {
                return or;
            };
            let p0 = mul_q32::<SM>(e0 as u32, recip);
            let p1 = mul_q32::<SM>(e1 as u32, recip);
            let w = (p0 & 0xffff) | (p1 << 16);
            or |= w;
            if let Some(x) = buf.get_mut(k) {
                *x = w as i32;
            }
        }
        or
    }

    /// `wsum_pairs4`: per key pair `LDR` of the probability pair and of the two rows' four
    /// columns, `SXTB16` (even columns) / `SXTB16 ROR #8` (odd columns) of each, and
    /// `SMLABB`/`SMLABT` (the first row by the low probability) and `SMLATB`/`SMLATT` (the
    /// second row by the high one) into the four column accumulators. Needs row 1 to exist
    /// (as the `asm!`, which takes the stride from it) and row `2·pp.len() − 1`; otherwise
    /// nothing is added.
    ///
    /// Injected bug caught: the second row multiplied by the low probability (`SMLABB` for
    /// `SMLATB`): `attention_variants_are_bit_identical`, `single_query_rows_every_kv_length`.
    pub(super) fn wsum_pairs4(pp: &[i32], v: Rows<'_>, col: usize, acc: &mut [i32; 4]) {
        let n = pp.len();
        if n == 0 {
            return;
        }
        let end = col.wrapping_add(4);
        let ok = v.get_row(1).is_some()
            && v.get_row(2 * n - 1).and_then(|r| r.get(col..end)).is_some()
            && v.get_row(0).and_then(|r| r.get(col..end)).is_some();
        if !ok {
            debug_assert!(false, "wsum_pairs4: rows or columns out of range");
            return;
        }
        let word = |j: usize| {
            v.get_row(j)
                .and_then(|r| r.get(col..end))
                .and_then(|c| c.first_chunk::<4>())
                .map_or(0, |c| u32::from_le_bytes(c.map(|b| b as u8)))
        };
        let [mut a0, mut a1, mut a2, mut a3] = *acc;
        for (k, &p) in pp.iter().enumerate() {
            let p = p as u32;
            let (lo, hi) = (p as u16, (p >> 16) as u16);
            let (r0, r1) = (word(2 * k), word(2 * k + 1));
            let e = sxtb16(r0);
            a0 = smla(lo, e as u16, a0);
            a2 = smla(lo, (e >> 16) as u16, a2);
            let o = sxtb16_ror8(r0);
            a1 = smla(lo, o as u16, a1);
            a3 = smla(lo, (o >> 16) as u16, a3);
            let e = sxtb16(r1);
            a0 = smla(hi, e as u16, a0);
            a2 = smla(hi, (e >> 16) as u16, a2);
            let o = sxtb16_ror8(r1);
            a1 = smla(hi, o as u16, a1);
            a3 = smla(hi, (o >> 16) as u16, a3);
        }
        *acc = [a0, a1, a2, a3];
    }

    /// `scores_row`: per key, per 4-column word `LDR`, `SXTB16`/`SXTB16 ROR #8` and `SMUAD`
    /// (first word) / `SMLAD` with the extended query words `qe[2c]`, `qe[2c + 1]`; the score
    /// stored and the signed maximum kept. `None` as the `asm!`: head width not 8/16/24/32,
    /// no keys, fewer key rows than scores, columns outside the rows.
    ///
    /// Injected bug caught: the odd columns' query word `qe[2c + 1]` paired with the even
    /// columns' key halves (`SXTB16` for `SXTB16 ROR #8`): four attention tests fail.
    pub(super) fn scores_row(qe: &[u32], k: Rows<'_>, c0: usize, out: &mut [i32]) -> Option<i32> {
        let dh = 2 * qe.len();
        let n = out.len();
        if n == 0 || !matches!(dh, 8 | 16 | 24 | 32) || k.rows() < n {
            return None;
        }
        let end = c0.wrapping_add(dh);
        k.get_row(0)?.get(c0..end)?;
        k.get_row(n - 1)?.get(c0..end)?;
        let mut max = i32::MIN;
        for (j, s) in out.iter_mut().enumerate() {
            let row = k.get_row(j)?.get(c0..end)?;
            let mut acc = 0i32;
            for (c, e) in row.chunks_exact(4).zip(qe.chunks_exact(2)) {
                let x = u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
                acc = smlad(e[0], sxtb16(x), acc);
                acc = smlad(e[1], sxtb16_ror8(x), acc);
            }
            *s = acc;
            if acc > max {
                max = acc;
            }
        }
        Some(max)
    }

    /// `wsum_packed4`: per key pair `LDR` of the probability pair, `LDM` of four packed V
    /// words, `SMLAD` ×4. `vg` shorter than `4·pp.len()`: nothing added.
    ///
    /// Injected bug caught: each accumulator fed the next column's packed word
    /// (`vg[4k + (c + 1) % 4]`): `attention_small_row_sums_are_bit_identical` and two more fail.
    pub(super) fn wsum_packed4(pp: &[i32], vg: &[u32], acc: &mut [i32; 4]) {
        if vg.len() < 4 * pp.len() {
            debug_assert!(false, "wsum_packed4: packed V too short");
            return;
        }
        for (&p, w) in pp.iter().zip(vg.chunks_exact(4)) {
            for (a, &w) in acc.iter_mut().zip(w) {
                *a = smlad(p as u32, w, *a);
            }
        }
    }
}
