//! The attention registry: every form of the attention kernel, each of which must give
//! [`Attention::run_generic`]'s bits (scores, softmax and weighted sum of every row and head).
//!
//! The dispatcher ([`Attention::run`]) runs the one `native` entry of [`ATTENTION_VARIANTS`]
//! (chosen at compile time: a direct, inlinable call), and `tests/variants.rs` runs every
//! `available` entry against the generic kernel: a kernel that is not registered here cannot
//! be dispatched to, and one that is registered is tested.
//!
//! | entry | kernel | native on |
//! | --- | --- | --- |
//! | `armv7em_dsp` | the DSP form (packed V, probability pairs, `SMLAD`) on the `asm!` passes of `dsp/attention.rs` and `dsp/softmax.rs`; query rows for the layers it does not take | DSP-extension and Helium builds |
//! | `portable` | query row by query row, portable loops | every other build |
//! | `armv7em_dsp_emulated` | the DSP form on the emulated `asm!` passes (`dsp/passes.rs`), the host twin | never (runs on any target) |
//! | `run_packed` | [`Attention::run_packed`]: the DSP form, on the portable loops off the DSP targets | never |

use super::{Attention, Mask};
use crate::dsp::passes::{Asm, Emulated, Portable};
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
    /// Whether [`Attention::run`] runs this entry in this build (exactly one entry is native).
    pub native: bool,
    /// Whether the entry's instructions exist in this build (the `asm!` entry only on its
    /// targets); the suite runs the available entries.
    pub available: bool,
}

const DSP: bool = cfg!(any(core_attn_dsp, core_attn_mve));

/// The entries' kernels as plain functions (each a direct call the dispatcher inlines).
macro_rules! entry {
    ($name:ident, $($call:tt)*) => {
        #[inline(always)]
        fn $name(
            a: &Attention<'_>,
            q: Rows<'_>,
            k: Rows<'_>,
            v: Rows<'_>,
            mask: Mask,
            out: &mut [i8],
            scratch: &mut [i32],
        ) -> Result<(), Error> {
            a.$($call)*(q, k, v, mask, out, scratch)
        }
    };
}
entry!(armv7em_dsp, run_with::<Asm>);
entry!(portable, run_with::<Portable>);
entry!(armv7em_dsp_emulated, run_with::<Emulated>);
entry!(run_packed, run_packed);

/// Every attention variant (see the module).
pub const ATTENTION_VARIANTS: &[AttentionVariant] = &[
    AttentionVariant {
        name: "armv7em_dsp",
        run: armv7em_dsp,
        native: DSP,
        available: DSP,
    },
    AttentionVariant {
        name: "portable",
        run: portable,
        native: !DSP,
        available: true,
    },
    AttentionVariant {
        name: "armv7em_dsp_emulated",
        run: armv7em_dsp_emulated,
        native: false,
        available: true,
    },
    AttentionVariant {
        name: "run_packed",
        run: run_packed,
        native: false,
        available: true,
    },
];

/// [`Attention::run`]'s kernel: the native entry of [`ATTENTION_VARIANTS`]; fails the build
/// unless there is exactly one and it is available.
pub(super) const NATIVE_ATTENTION: AttentionFn = {
    let mut i = 0;
    let mut found: Option<AttentionFn> = None;
    while i < ATTENTION_VARIANTS.len() {
        let v = &ATTENTION_VARIANTS[i];
        if v.native {
            assert!(found.is_none(), "two native attention variants");
            assert!(v.available, "the native attention variant is not available");
            found = Some(v.run);
        }
        i += 1;
    }
    match found {
        Some(f) => f,
        None => panic!("no native attention variant"),
    }
};
