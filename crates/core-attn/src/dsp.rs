//! Optimized inner loops, one backend per instruction set: Cortex-M DSP-extension kernels
//! (`SMLAD` / `SXTB16`), Helium (MVE) and Armv6-M kernels in `asm!`, their host twins and the
//! portable counterparts. The only module of the crate allowed `unsafe`.
//!
//! Every kernel here computes exactly the same bits as the generic reference code in
//! [`crate::linear`], [`crate::attention`] and [`crate::softmax`]: integer additions wrap and are
//! associative, so a different order of the same products gives the same sum, and the fast
//! requantization below is proved equal to [`Requant::apply`](crate::Requant::apply) on its domain (and falls back to
//! it elsewhere). `tests/variants.rs` runs one suite against every variant.
//!
//! # Layout
//! One directory per instruction set, each holding only that set's code and taking plain slices
//! and scalars ([`LinearArgs`], never [`crate::linear::Linear`] or the attention types), and the
//! shared pieces beside them; the dependency is one-way (the kernel modules call in here, nothing
//! here calls back):
//!
//! | module | what |
//! | --- | --- |
//! | `intrinsics.rs` | `SMLAD`, `SXTB16`, `UADD8`/`UQSUB8`: portable definitions and, in `hw`, the instructions behind `cfg` |
//! | `requant.rs` | [`RowRequant`], [`requant_asm_form`], the check that a layer qualifies for the `asm!` requantization |
//! | `portable.rs` | the portable blocked linear kernel ([`linear_portable`]) |
//! | `armv7em_dsp/` | Armv7E-M / Armv8-M Mainline DSP extension: `SMLAD`/`SXTB16` linear kernels and their host twin |
//! | `helium/` | Armv8.1-M Helium (MVE): `VMLADAVA` linear kernels and their host twin |
//! | `armv6m/` | Armv6-M (Cortex-M0/M0+): the `MULS` linear kernel and its host twin |
//! | `softmax.rs`, `attention.rs` | the softmax passes and the attention inner loops in `asm!` (DSP-extension and Helium targets only) |
//! | `passes.rs` | those passes behind one trait: `Asm` (the `asm!`), `Emulated` (their host twin), `Portable` (the kernels' portable loops) |
//! | `gqa.rs` | grouped-query attention's paired scores (two query heads per key row read) |
//!
//! [`LINEAR_VARIANTS`] lists every linear variant; the dispatcher (`linear`) runs the device
//! variants of that list, and `tests/variants.rs` runs every entry against the generic kernel.
//! The softmax, attention, LayerNorm, residual and rsqrt dispatchers do the same with their
//! registries (`softmax::SOFTMAX_VARIANTS`, `attention::ATTENTION_VARIANTS`,
//! `norm::LAYER_NORM_VARIANTS`, `residual::RESIDUAL_VARIANTS`, `norm::RSQRT_VARIANTS`): each
//! runs the one `native` entry, chosen at compile time.
//!
//! # Softmax and attention (`dsp/softmax.rs`, `dsp/attention.rs`, `dsp/passes.rs`)
//! The exponential pass of the softmax (index by `SMMULR`, two table reads, `MLA` rounding),
//! the row maximum and the probability pass (`UMULL`) in `asm!`; the attention scores and
//! weighted sums (`SMLAD` on probability pairs × V). The softmax and attention kernels are
//! generic over `passes::Passes`: the registries' `armv7em_dsp` entries run them on the `asm!`
//! (`Asm`), the `armv7em_dsp_emulated` entries on the emulation (`Emulated`, any target: the
//! shared suite checks the `asm!` algorithm on the host), the `portable` entries on their
//! portable loops.

use crate::linear::Linear;

/// First template line of every DSP `asm!` block: `.cpu cortex-m33` on `thumbv8m.main` when
/// the DSP kernels were selected without `-C target-cpu=cortex-m33` (the `dsp` feature), so
/// that the assembler accepts `SMLAD`/`SXTB16`; empty otherwise.
#[cfg(core_attn_dsp_directive)]
macro_rules! dsp_directive {
    () => {
        ".cpu cortex-m33"
    };
}
#[cfg(core_attn_mve_directive)]
macro_rules! dsp_directive {
    () => {
        ".cpu cortex-m55"
    };
}
#[cfg(not(any(core_attn_dsp_directive, core_attn_mve_directive)))]
#[allow(unused_macros)]
macro_rules! dsp_directive {
    () => {
        ""
    };
}

/// The same for the Helium `asm!` blocks: `.cpu cortex-m55` under the `mve` feature without
/// `-C target-cpu=cortex-m55`.
#[cfg(core_attn_mve_directive)]
macro_rules! mve_directive {
    () => {
        ".cpu cortex-m55"
    };
}
#[cfg(all(core_attn_mve, not(core_attn_mve_directive)))]
macro_rules! mve_directive {
    () => {
        ""
    };
}
use core::num::NonZeroUsize;

mod armv6m;
mod armv7em_dsp;
pub(crate) mod attention;
pub(crate) mod gqa;
mod helium;
mod intrinsics;
pub(crate) mod passes;
pub(crate) mod portable;
mod requant;
pub(crate) mod softmax;

pub(crate) use intrinsics::hw;
pub use intrinsics::{smlad, sxtb16, sxtb16_ror8};
pub use requant::{requant_i8, RowRequant};
// Test hooks (used by tests/variants.rs and the benchmarks), not part of the public API.
#[doc(hidden)]
pub use armv6m::mulhi;
#[doc(hidden)]
pub use helium::{requant_mve_form, vmladava_s8};
#[doc(hidden)]
pub use requant::requant_asm_form;
pub(crate) use requant::requant_ok;

/// A linear layer as the instruction-set kernels see it: plain slices and scalars, the fields
/// of [`Linear`] with its requantization unpacked (what `Linear::run` checked, unchanged).
#[derive(Debug, Clone, Copy)]
pub struct LinearArgs<'a> {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// `[out_features][in_features]` row-major int8 weights.
    pub weights: &'a [i8],
    /// `out_features` biases.
    pub bias: &'a [i32],
    /// `out_features` Q31 multipliers.
    pub multipliers: &'a [i32],
    /// `out_features` shifts.
    pub shifts: &'a [i8],
    /// Output zero point.
    pub output_zero_point: i32,
}

impl<'a> LinearArgs<'a> {
    /// The slices and scalars of `l`.
    #[inline(always)]
    pub fn of(l: &Linear<'a>) -> Self {
        LinearArgs {
            in_features: l.in_features,
            out_features: l.out_features,
            weights: l.weights,
            bias: l.bias,
            multipliers: l.requant.multipliers,
            shifts: l.requant.shifts,
            output_zero_point: l.output_zero_point,
        }
    }
}

/// The int8 dot product as this build runs it ([`DOT_I8_VARIANTS`]' native entry: `SMLAD` on
/// the DSP extension), equal to the generic reference [`crate::linear::dot_i8`] (the portable
/// loop, which LLVM turns into `VMLADAVA` on Helium and which the other targets run).
#[inline(always)]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    NATIVE_DOT_I8(a, b)
}

/// An int8 dot product variant: `Σ a[i]·b[i]` over the common length, wrapping in i32.
pub type DotI8Fn = fn(&[i8], &[i8]) -> i32;

/// One registered dot-product variant.
#[derive(Clone, Copy)]
pub struct DotI8Variant {
    /// Name, as the tests report it.
    pub name: &'static str,
    /// The kernel.
    pub run: DotI8Fn,
    /// Whether [`dot_i8`] runs this variant in this build (at most one entry; the portable
    /// loop where none is).
    pub native: bool,
}

/// Every int8 dot-product variant, each runnable on any target (the DSP one through
/// `hw`, its instructions emulated off the DSP targets): [`dot_i8`] runs the `native` entry of
/// this list, and `tests/variants.rs` runs every entry against [`crate::linear::dot_i8`].
pub const DOT_I8_VARIANTS: &[DotI8Variant] = &[
    DotI8Variant {
        name: "armv7em_dsp",
        run: armv7em_dsp::dot::dot_i8,
        native: cfg!(core_attn_dsp),
    },
    DotI8Variant {
        name: "portable",
        run: portable::dot_i8,
        native: !cfg!(core_attn_dsp),
    },
];

/// The entry of [`DOT_I8_VARIANTS`] that [`dot_i8`] runs: the first native one.
const NATIVE_DOT_I8: DotI8Fn = {
    let mut i = 0;
    let mut found: Option<DotI8Fn> = None;
    while i < DOT_I8_VARIANTS.len() {
        if DOT_I8_VARIANTS[i].native && found.is_none() {
            found = Some(DOT_I8_VARIANTS[i].run);
        }
        i += 1;
    }
    match found {
        Some(f) => f,
        None => portable::dot_i8,
    }
};

/// Input widths with a fully unrolled `asm!` linear kernel (DSP and Helium); other widths up to
/// [`MAX_ANY_WIDTH`] use the looped kernels.
pub const DSP_WIDTHS: [usize; 4] = [16, 32, 64, 128];

/// Largest input width of the DSP kernels (size of the sign-extended input buffer).
pub(crate) const MAX_DSP_WIDTH: usize = 128;

/// Widest input of the looped `asm!` linear kernels (any width from 4 up to this one; the
/// sign-extended input buffer is on the stack: 4 bytes per input). Wider layers use
/// [`linear_portable`].
pub const MAX_ANY_WIDTH: usize = 512;

/// A linear layer's parameter slices, each cut to exactly the length its shape gives (`out·in`
/// weights, `out` biases, multipliers and shifts), with `in`, `out` nonzero and `2·in`, `2·out`
/// computed without overflow: what the kernels index, stated once so that the compiler sees
/// every access below it in bounds.
#[derive(Clone, Copy)]
pub(crate) struct Params<'a> {
    pub(crate) w: &'a [i8],
    pub(crate) bias: &'a [i32],
    pub(crate) mult: &'a [i32],
    pub(crate) shift: &'a [i8],
    pub(crate) inf: usize,
    pub(crate) outf: usize,
    /// `2·inf` (one token pair of inputs, one row pair of weights).
    pub(crate) inf2: NonZeroUsize,
    /// `2·outf` (one token pair of outputs).
    pub(crate) outf2: NonZeroUsize,
}

impl<'a> Params<'a> {
    /// Outputs (of `y`), weights, biases, multipliers and shifts of rows `from..`; `None` if
    /// `from > out` or `y` is shorter than `from`.
    #[allow(clippy::type_complexity)]
    #[inline(always)]
    pub(crate) fn rows_from<'y>(
        &self,
        y: &'y mut [i8],
        from: usize,
    ) -> Option<(&'y mut [i8], &'a [i8], &'a [i32], &'a [i32], &'a [i8])> {
        if from > self.outf {
            return None;
        }
        // `from·in ≤ out·in`, which `Parts::new` computed without overflow.
        Some((
            y.get_mut(from..)?,
            self.w.get(from * self.inf..)?,
            self.bias.get(from..)?,
            self.mult.get(from..)?,
            self.shift.get(from..)?,
        ))
    }
}

/// `a·b`, or `None` on overflow; without a 64-bit multiply (a library call on Armv6-M) when
/// both are below `2^16`.
#[inline(always)]
pub(crate) fn mul(a: usize, b: usize) -> Option<usize> {
    if (a | b) >> 16 == 0 {
        Some(a * b)
    } else {
        a.checked_mul(b)
    }
}

/// [`Params`] and the token rows: `rows·in` inputs, `rows·out` outputs.
pub(crate) struct Parts<'a, 'b> {
    pub(crate) x: &'b [i8],
    pub(crate) y: &'b mut [i8],
    pub(crate) p: Params<'a>,
}

impl<'a, 'b> Parts<'a, 'b> {
    /// `None` if a slice is too short for the shape or a size overflows: unreachable for the
    /// kernels' callers, which checked the shapes ([`Linear::run`] via `check_run`: exact
    /// lengths). The kernels return early (writing nothing) on `None`, after a `debug_assert!`.
    #[inline(always)]
    pub(crate) fn new(
        l: &LinearArgs<'a>,
        input: &'b [i8],
        output: &'b mut [i8],
        rows: usize,
    ) -> Option<Self> {
        let (inf, outf) = (l.in_features, l.out_features);
        if inf == 0 || outf == 0 {
            return None;
        }
        let inf2 = NonZeroUsize::new(inf.checked_mul(2)?)?;
        let outf2 = NonZeroUsize::new(outf.checked_mul(2)?)?;
        Some(Parts {
            x: input.get(..mul(rows, inf)?)?,
            y: output.get_mut(..mul(rows, outf)?)?,
            p: Params {
                w: l.weights.get(..mul(outf, inf)?)?,
                bias: l.bias.get(..outf)?,
                mult: l.multipliers.get(..outf)?,
                shift: l.shifts.get(..outf)?,
                inf,
                outf,
                inf2,
                outf2,
            },
        })
    }
}

/// Outputs `from..` of one token outside the blocked passes (an odd last row, the rows after
/// the last block of 4): [`dot_i8`] (`SMLAD` where the target has it) and [`requant_i8`].
/// `x`: the token's inputs, `y`: its outputs.
#[cfg(any(core_attn_dsp, core_attn_mve))]
#[inline(never)]
pub(crate) fn tail_rows(p: &Params<'_>, x: &[i8], y: &mut [i8], from: usize, zp: i32) {
    let Some((y, mut w, b, m, s)) = p.rows_from(y, from) else {
        return;
    };
    for ((y, &b), (&m, &s)) in y.iter_mut().zip(b).zip(m.iter().zip(s)) {
        let Some((row, rest)) = w.split_at_checked(p.inf) else {
            break;
        };
        w = rest;
        *y = requant_i8(b.wrapping_add(dot_i8(x, row)), m, s, zp);
    }
}

/// Entry point of a linear-layer variant: `output[t][o] = requant(bias + x·w)` for `rows`
/// tokens, shapes as [`Linear::run`] checked them. `false` (nothing written) if the variant does
/// not take this layer (width, alignment or requantization outside what it handles).
pub type LinearFn = fn(&LinearArgs<'_>, &[i8], &mut [i8], usize) -> bool;

/// One registered linear-layer variant.
#[derive(Clone, Copy)]
pub struct LinearVariant {
    /// Name, as the tests report it.
    pub name: &'static str,
    /// The kernel.
    pub run: LinearFn,
    /// `true` for the instruction-set kernels the dispatcher runs on their own target; `false`
    /// for the portable kernel and the host twins (the same algorithms with the instructions
    /// emulated), which run anywhere.
    pub native: bool,
    /// Whether `run` does anything in this build: a native variant only on its target (elsewhere
    /// it returns `false`), everything else always.
    pub available: bool,
}

/// Every linear-layer variant. The dispatcher (`dsp::linear`, behind `Linear::run`) runs the first native variant of
/// this list available in the build and nothing else but the portable fallback, and
/// `tests/variants.rs` runs every available entry against the generic kernel: a kernel that is
/// not listed here cannot be dispatched, and one that is listed is tested.
pub const LINEAR_VARIANTS: &[LinearVariant] = &[
    LinearVariant {
        name: "armv7em_dsp",
        run: armv7em_dsp::linear,
        native: true,
        available: cfg!(core_attn_dsp),
    },
    LinearVariant {
        name: "helium",
        run: helium::linear,
        native: true,
        available: cfg!(core_attn_mve),
    },
    LinearVariant {
        name: "armv6m",
        run: armv6m::linear_native,
        native: true,
        available: cfg!(all(target_arch = "arm", core_attn_v6m)),
    },
    LinearVariant {
        name: "portable",
        run: portable::linear_variant,
        native: false,
        available: true,
    },
    LinearVariant {
        name: "armv7em_dsp_emulated",
        run: armv7em_dsp::emulated::linear,
        native: false,
        available: true,
    },
    LinearVariant {
        name: "helium_emulated",
        run: helium::emulated::linear,
        native: false,
        available: true,
    },
    LinearVariant {
        name: "armv6m_emulated",
        run: armv6m::linear_emulated,
        native: false,
        available: true,
    },
];

/// The native variant the dispatcher runs in this build: the first native, available entry of
/// [`LINEAR_VARIANTS`] (`None` on the host and other targets without one).
const NATIVE_LINEAR: Option<LinearFn> = {
    let mut i = 0;
    let mut found = None;
    while i < LINEAR_VARIANTS.len() {
        let v = &LINEAR_VARIANTS[i];
        if v.native && v.available && found.is_none() {
            found = Some(v.run);
        }
        i += 1;
    }
    found
};

/// Linear layer without activation, `rows` tokens: `output[t][o] = requant(bias + x·w)`.
/// Shapes are checked by the caller. Runs this build's native variant of [`LINEAR_VARIANTS`]
/// (`SMLAD` on the DSP extension, Helium, Armv6-M) where it takes the layer
/// ([`asm_requant_ok`], at most [`MAX_ANY_WIDTH`] inputs), else [`linear_portable`].
#[inline(always)]
pub(crate) fn linear(layer: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    let l = &LinearArgs::of(layer);
    if let Some(run) = NATIVE_LINEAR {
        if run(l, input, output, rows) {
            return;
        }
    }
    #[cfg(all(core_attn_small, any(core_attn_dsp, core_attn_mve)))]
    linear_rows(l, input, output, rows);
    #[cfg(not(all(core_attn_small, any(core_attn_dsp, core_attn_mve))))]
    portable::linear(l, input, output, rows)
}

/// Size-first builds with DSP kernels (`cfg(core_attn_small)`): the layers the `asm!` passes
/// do not take go row by row ([`tail_rows`]: `SMLAD` dot products, the same bits as
/// [`linear_portable`]) instead of linking the blocked portable kernel for them too. Shapes
/// as [`linear_portable`] takes them (shorter slices: nothing written).
#[cfg(all(core_attn_small, any(core_attn_dsp, core_attn_mve)))]
fn linear_rows(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
        debug_assert!(false, "linear_rows: shapes not checked");
        return;
    };
    // `Parts::new` checked both widths non-zero.
    let (Some(inf), Some(outf)) = (NonZeroUsize::new(p.inf), NonZeroUsize::new(p.outf)) else {
        return;
    };
    let rows = crate::tensor::zip_lazy(x.chunks_exact(inf.get()), y.chunks_exact_mut(outf.get()));
    for (x, y) in rows {
        tail_rows(&p, x, y, 0, l.output_zero_point);
    }
}

/// Portable blocked linear kernel (2 output rows × 2 tokens per step, each loaded input and
/// weight used twice): plain Rust for targets without the DSP extension (Cortex-M0, host).
/// Shapes as [`Linear::run`] checks them (`input`: `rows·in`, `output`: `rows·out`); with
/// shorter slices it writes nothing (a `debug_assert!` in debug builds).
#[doc(hidden)] // test hook, not part of the public API
pub fn linear_portable(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    portable::linear(&LinearArgs::of(l), input, output, rows)
}

/// Whether every output channel of `l` can use the `asm!` kernels' requantization
/// ([`requant_asm_form`]): right shift `31 − shift` in `33..=62` and an output zero point in
/// `-128..=127` (both always true for layers the packer writes; others take the portable path).
#[doc(hidden)] // test hook, not part of the public API
pub fn asm_requant_ok(l: &Linear<'_>) -> bool {
    requant_ok(&LinearArgs::of(l))
}

/// The DSP linear algorithm with the instructions emulated (`armv7em_dsp/emulated.rs`):
/// `false` (doing nothing) for layers the DSP kernels do not handle (width outside
/// `4..=`[`MAX_ANY_WIDTH`], or not [`asm_requant_ok`]).
#[doc(hidden)] // test hook, not part of the public API
pub fn linear_dsp_emulated(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    armv7em_dsp::emulated::linear(&LinearArgs::of(l), input, output, rows)
}

/// The Helium linear algorithm with the instructions emulated (`helium/emulated.rs`): `false`
/// (doing nothing) for layers the Helium kernels do not handle.
#[doc(hidden)] // test hook, not part of the public API
pub fn linear_mve_emulated(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    helium::emulated::linear(&LinearArgs::of(l), input, output, rows)
}

/// The Armv6-M linear algorithm in Rust (`armv6m/mod.rs`): `false` (doing nothing) for layers
/// the Armv6-M kernel does not handle.
#[doc(hidden)] // test hook, not part of the public API
pub fn linear_m0_emulated(l: &Linear<'_>, input: &[i8], output: &mut [i8], rows: usize) -> bool {
    armv6m::linear_emulated(&LinearArgs::of(l), input, output, rows)
}
