//! The DSP-extension int8 dot product: 4 products per 2 `SMLAD`, both operands sign-extended
//! with `SXTB16`. Written against [`crate::dsp::hw`], so that on targets without the DSP
//! extension (the host) the same code runs with the instructions emulated: the variant is its
//! own host twin, registered in [`crate::dsp::DOT_I8_VARIANTS`].

use crate::dsp::hw;

/// `Σ a[i]·b[i]` over the common length, wrapping: `SMLAD` over 4-byte chunks, then the
/// remaining bytes with the portable loop ([`crate::dsp::portable::dot_i8`]); the same bits as
/// it (integer additions wrap and are associative).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let mut acc = 0i32;
    #[cfg(not(core_attn_small))]
    let (ar, br) = {
        let (ac, bc) = (a[..n].chunks_exact(4), b[..n].chunks_exact(4));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            let x = u32::from_le_bytes([x[0] as u8, x[1] as u8, x[2] as u8, x[3] as u8]);
            let y = u32::from_le_bytes([y[0] as u8, y[1] as u8, y[2] as u8, y[3] as u8]);
            acc = hw::smlad(hw::sxtb16(x), hw::sxtb16(y), acc);
            acc = hw::smlad(hw::sxtb16_ror8(x), hw::sxtb16_ror8(y), acc);
        }
        (ar, br)
    };
    // Size-first builds: array chunks (`as_chunks`), as out of line (opt-level "s") the
    // `chunks_exact` form keeps index checks and `Zip::new`'s length division, each a
    // panic path (see `tensor::zip_lazy`).
    #[cfg(core_attn_small)]
    let (ar, br) = {
        let ((ac, ar), (bc, br)) = (a[..n].as_chunks::<4>(), b[..n].as_chunks::<4>());
        for (&[x0, x1, x2, x3], &[y0, y1, y2, y3]) in ac.iter().zip(bc) {
            let x = u32::from_le_bytes([x0 as u8, x1 as u8, x2 as u8, x3 as u8]);
            let y = u32::from_le_bytes([y0 as u8, y1 as u8, y2 as u8, y3 as u8]);
            acc = hw::smlad(hw::sxtb16(x), hw::sxtb16(y), acc);
            acc = hw::smlad(hw::sxtb16_ror8(x), hw::sxtb16_ror8(y), acc);
        }
        (ar, br)
    };
    acc.wrapping_add(crate::dsp::portable::dot_i8(ar, br))
}
