//! Linear layer on Helium (`cfg(core_attn_mve)`: Cortex-M55/M85)
//! `VMLADAVA.S8` adds 16 int8 products to a scalar accumulator. 4 rows × 2 tokens per step,
//! the accumulators in the 8 even registers (the only ones `VMLADAVA` takes): per 128 MACs
//! 2 `VLDRB` (inputs, straight from the int8 tokens) + 4 `VLDRW` (weights, row-major) +
//! 8 `VMLADAVA` = 14 instructions (0.11/MAC); one token: 9 per 64 MACs. The requantization
//! runs on 4 outputs per token at once: `VMOV` ×2 of the accumulators into a vector, `VLDRW`
//! multipliers, `VLDRB.S32` shifts (+2: `VSHL` by a negative amount is the floor right shift),
//! `VMULH.S32`, `VSHL.S32`, `VADD` of `2·zp + 1`, `VQSHRNB #1` + `VQMOVNB` (the saturation),
//! `VSTRB.32`.
//!
//! Other widths (`1..=`[`MAX_ANY_WIDTH`]) and alignments (`kernels::pass_any`): the same 4 rows ×
//! 2 tokens (or 1), each row through its own pointer (`VLDRB.U8`, any alignment), a counted
//! loop over the whole 16-input chunks (16 instructions per 128 MACs), then one last chunk
//! whose weight loads are predicated by `VCTP.8` (`inf mod 16` lanes: no byte past a row is
//! read); the inputs are copied into a zero-padded stack buffer (token pairs interleaved per
//! 16 bytes), so the lanes a predicated load leaves alone multiply zeros.
//!
//! Host twin: `linear_mve_emulated` (`helium/emulated.rs`), the same blocking, accumulation
//!
//! Layout: `kernels.rs` (the `asm!`, `cfg(core_attn_mve)`), `emulated.rs` (the host twin).
//! Plain slices and scalars only ([`super::LinearArgs`]).

pub(crate) mod emulated;
#[cfg(core_attn_mve)]
pub(crate) mod kernels;

pub use emulated::{requant_mve_form, vmladava_s8};

/// The native Helium variant: the `asm!` kernels on Helium builds, `false` (nothing written)
/// elsewhere.
#[inline(always)]
pub(crate) fn linear(
    l: &super::LinearArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    rows: usize,
) -> bool {
    #[cfg(core_attn_mve)]
    {
        kernels::linear(l, input, output, rows)
    }
    #[cfg(not(core_attn_mve))]
    {
        let _ = (l, input, output, rows);
        false
    }
}
