//! The softmax registry: every fast form of the softmax, each of which must give its generic
//! reference's bits ([`super::softmax_scores_in_place_generic`], [`super::softmax_i8_generic`]).
//!
//! The dispatchers ([`super::softmax_scores_in_place`], [`super::softmax_i8`]) run the one
//! `native` entry of [`SOFTMAX_VARIANTS`] (chosen at compile time: a direct, inlinable call),
//! and `tests/variants.rs` runs every `available` entry against the generic kernels: a kernel
//! that is not registered here cannot be dispatched to, and one that is registered is tested.
//!
//! | entry | passes | native on |
//! | --- | --- | --- |
//! | `armv7em_dsp` | the `asm!` passes of `dsp/softmax.rs` | DSP-extension and Helium builds |
//! | `portable` | the portable loops | every other build |
//! | `armv7em_dsp_emulated` | the `asm!` passes emulated (`dsp/passes.rs`), the host twin | never (runs on any target) |

use super::row_i8::softmax_i8_fast;
use super::{softmax_scores_fast, ExpTable};
use crate::dsp::passes::{Asm, Emulated, Portable};
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
    /// Whether the dispatchers run this entry in this build (exactly one entry is native).
    pub native: bool,
    /// Whether the entry's instructions exist in this build (the `asm!` entry only on its
    /// targets); the suite runs the available entries.
    pub available: bool,
}

const DSP: bool = cfg!(any(core_attn_dsp, core_attn_mve));

/// Every softmax variant (see the module).
pub const SOFTMAX_VARIANTS: &[SoftmaxVariant] = &[
    SoftmaxVariant {
        name: "armv7em_dsp",
        scores: softmax_scores_fast::<Asm>,
        i8: softmax_i8_fast::<Asm>,
        native: DSP,
        available: DSP,
    },
    SoftmaxVariant {
        name: "portable",
        scores: softmax_scores_fast::<Portable>,
        i8: softmax_i8_fast::<Portable>,
        native: !DSP,
        available: true,
    },
    SoftmaxVariant {
        name: "armv7em_dsp_emulated",
        scores: softmax_scores_fast::<Emulated>,
        i8: softmax_i8_fast::<Emulated>,
        native: false,
        available: true,
    },
];

/// The native entry of [`SOFTMAX_VARIANTS`]; fails the build unless there is exactly one and
/// it is available.
const NATIVE: SoftmaxVariant = {
    let mut i = 0;
    let mut found: Option<SoftmaxVariant> = None;
    while i < SOFTMAX_VARIANTS.len() {
        let v = SOFTMAX_VARIANTS[i];
        if v.native {
            assert!(found.is_none(), "two native softmax variants");
            assert!(v.available, "the native softmax variant is not available");
            found = Some(v);
        }
        i += 1;
    }
    match found {
        Some(v) => v,
        None => panic!("no native softmax variant"),
    }
};

/// [`super::softmax_scores_in_place`]'s kernel.
pub(super) const NATIVE_SCORES: SoftmaxScoresFn = NATIVE.scores;

/// [`super::softmax_i8`]'s kernel.
pub(super) const NATIVE_I8: SoftmaxI8Fn = NATIVE.i8;
