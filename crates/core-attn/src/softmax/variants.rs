//! The softmax registries: every form of the fast softmax, each of which must give its generic
//! reference's bits ([`super::softmax_scores_in_place_generic`], [`super::softmax_i8_generic`]).
//! `tests/variants.rs` runs every entry; a new softmax kernel is registered here to be tested.
//!
//! The entries are the entry points: on the DSP and Helium builds they run the `asm!` passes of
//! `dsp/softmax.rs` (checked on the device by the bench firmware), elsewhere the portable fast
//! path.

use super::{softmax_i8, softmax_scores_in_place, ExpTable};
use crate::requant::Requant;
use crate::Error;

/// A softmax of raw `i32` scores in place, into Q15 probabilities.
pub type SoftmaxScoresFn = fn(&mut [i32], Requant, ExpTable<'_>) -> Result<(), Error>;

/// A softmax of an int8 row into Q15 probabilities.
pub type SoftmaxI8Fn = fn(&[i8], Requant, ExpTable<'_>, &mut [u16]) -> Result<(), Error>;

/// One registered softmax variant: both row forms.
#[derive(Clone, Copy)]
pub struct SoftmaxVariant {
    /// Name, as the tests report it.
    pub name: &'static str,
    /// The `i32`-scores form (attention rows).
    pub scores: SoftmaxScoresFn,
    /// The int8 form.
    pub i8: SoftmaxI8Fn,
}

/// Every softmax variant (see the module).
pub const SOFTMAX_VARIANTS: &[SoftmaxVariant] = &[SoftmaxVariant {
    name: "dispatched",
    scores: softmax_scores_in_place,
    i8: softmax_i8,
}];
