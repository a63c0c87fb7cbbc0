//! Attention and softmax helpers: the DSP instructions the attention kernel uses, as the
//! instruction where the target has it (`cfg(core_attn_dsp)`) and as the portable emulation
//! elsewhere (so that the same algorithm runs, and is tested, on the host).

/// `SMLAD` (instruction or [`super::smlad`]).
#[inline(always)]
pub(crate) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    #[cfg(core_attn_dsp)]
    {
        super::arm::smlad(a, b, acc)
    }
    #[cfg(not(core_attn_dsp))]
    {
        super::smlad(a, b, acc)
    }
}

/// `SXTB16` (instruction or [`super::sxtb16`]).
#[inline(always)]
pub(crate) fn sxtb16(x: u32) -> u32 {
    #[cfg(core_attn_dsp)]
    {
        super::arm::sxtb16(x)
    }
    #[cfg(not(core_attn_dsp))]
    {
        super::sxtb16(x)
    }
}

/// `SXTB16 …, ROR #8` (instruction or [`super::sxtb16_ror8`]).
#[inline(always)]
pub(crate) fn sxtb16_ror8(x: u32) -> u32 {
    #[cfg(core_attn_dsp)]
    {
        super::arm::sxtb16_ror8(x)
    }
    #[cfg(not(core_attn_dsp))]
    {
        super::sxtb16_ror8(x)
    }
}
