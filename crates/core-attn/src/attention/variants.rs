//! The attention registry: every optimized form of the attention kernel, each of which must
//! give [`Attention::run_generic`]'s bits (scores, softmax and weighted sum of every row and
//! head). `tests/variants.rs` runs every entry; a new attention kernel is registered here to be
//! tested.
//!
//! The entries are the entry points: on the DSP and Helium builds they run the `SMLAD` inner
//! loops of `dsp/attention.rs` (checked on the device by the bench firmware), elsewhere the
//! same algorithms with the instructions emulated (`run_packed`) or the row path (`run`).

use super::{Attention, Mask};
use crate::tensor::Rows;
use crate::Error;

/// An attention kernel: `(attention, q, k, v, mask, out, scratch)` as [`Attention::run`] takes
/// them.
pub type AttentionFn = fn(
    &Attention<'_>,
    Rows<'_>,
    Rows<'_>,
    Rows<'_>,
    Mask,
    &mut [i8],
    &mut [i32],
) -> Result<(), Error>;

/// One registered attention variant.
#[derive(Clone, Copy)]
pub struct AttentionVariant {
    /// Name, as the tests report it.
    pub name: &'static str,
    /// The kernel.
    pub run: AttentionFn,
}

/// Every attention variant (see the module).
pub const ATTENTION_VARIANTS: &[AttentionVariant] = &[
    AttentionVariant {
        name: "run",
        run: |a, q, k, v, mask, out, scratch| a.run(q, k, v, mask, out, scratch),
    },
    AttentionVariant {
        name: "run_packed",
        run: |a, q, k, v, mask, out, scratch| a.run_packed(q, k, v, mask, out, scratch),
    },
];
