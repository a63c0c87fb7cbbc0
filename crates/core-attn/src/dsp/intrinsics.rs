//! The instructions the kernels are written in, in one place: each as its portable definition
//! (plain Rust, public: the emulation the host twins and the tests use) and, in [`hw`], as the
//! instruction itself where the target has it (`asm!` under `cfg(core_attn_dsp)` /
//! `cfg(core_attn_mve)`: Helium cores implement the DSP extension too) or the portable
//! definition elsewhere, so that the same algorithm runs, and is tested, on the host.

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

/// The instructions themselves where the target has them, else the portable definitions above.
pub(crate) mod hw {
    #[cfg(any(core_attn_dsp, core_attn_mve))]
    use core::arch::asm;

    /// `SMLAD` (instruction or [`super::smlad`]).
    #[inline(always)]
    pub(crate) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        #[cfg(any(core_attn_dsp, core_attn_mve))]
        {
            let r: i32;
            // SAFETY: a pure register operation.
            unsafe {
                asm!(dsp_directive!(), "smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
                     c = in(reg) acc, options(pure, nomem, nostack, preserves_flags));
            }
            r
        }
        #[cfg(not(any(core_attn_dsp, core_attn_mve)))]
        {
            super::smlad(a, b, acc)
        }
    }

    /// `SXTB16` (instruction or [`super::sxtb16`]).
    #[inline(always)]
    pub(crate) fn sxtb16(x: u32) -> u32 {
        #[cfg(any(core_attn_dsp, core_attn_mve))]
        {
            let r: u32;
            // SAFETY: a pure register operation.
            unsafe {
                asm!(dsp_directive!(), "sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
                     options(pure, nomem, nostack, preserves_flags));
            }
            r
        }
        #[cfg(not(any(core_attn_dsp, core_attn_mve)))]
        {
            super::sxtb16(x)
        }
    }

    /// `SXTB16 …, ROR #8` (instruction or [`super::sxtb16_ror8`]).
    #[inline(always)]
    pub(crate) fn sxtb16_ror8(x: u32) -> u32 {
        #[cfg(any(core_attn_dsp, core_attn_mve))]
        {
            let r: u32;
            // SAFETY: a pure register operation.
            unsafe {
                asm!(dsp_directive!(), "sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
                     options(pure, nomem, nostack, preserves_flags));
            }
            r
        }
        #[cfg(not(any(core_attn_dsp, core_attn_mve)))]
        {
            super::sxtb16_ror8(x)
        }
    }
}

/// The byte-parallel DSP instructions used by [`super::requant::requant_ok`].
#[cfg(any(core_attn_dsp, core_attn_mve))]
pub(crate) mod simd8 {
    use core::arch::asm;

    /// `UADD8`: per-byte wrapping add (sets the GE flags, nothing else).
    #[inline(always)]
    pub(crate) fn uadd8(a: u32, b: u32) -> u32 {
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
    pub(crate) fn uqsub8(a: u32, b: u32) -> u32 {
        let r: u32;
        // SAFETY: a pure register operation.
        unsafe {
            asm!(dsp_directive!(), "uqsub8 {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
                 options(pure, nomem, nostack, preserves_flags));
        }
        r
    }
}
