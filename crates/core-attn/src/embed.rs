//! Input embeddings: ViT patch embedding (with the class token) and token-id lookup.
//!
//! # Patch embedding
//! An int8 image `[C][H][W]` is cut into non-overlapping `P × P` patches in row-major patch
//! order (`patch = py·(W/P) + px`); each patch is flattened in `(channel, row, col)` order into a
//! caller-provided scratch and multiplied through a [`Linear`] with weights `[D][C·P·P]`: all
//! `N` patches at once (im2col `[N][C·P·P]`, one batched projection) when the scratch holds
//! them, else one patch (`C·P·P` bytes) at a time. This is exactly a `Conv2d(C, D, kernel = P, stride = P)` followed by
//! `flatten(2).transpose(1, 2)` (HF `ViTPatchEmbeddings`): the conv kernel `[D][C][P][P]`
//! reshaped to `[D][C·P·P]` *is* the linear weight matrix. The image zero point is folded into
//! the bias at pack time, as for every [`Linear`].
//!
//! ViT's token layout is `[cls; patches]`: [`PatchEmbedding::run_with_class_token`] writes the
//! class-token row as token 0 and the patches as tokens `1..=N`.
//!
//! # Token embedding
//! [`embed_tokens`] copies rows of an int8 `[vocab][D]` table for a sequence of ids.

use core::num::NonZeroUsize;

use crate::error::check_len;
use crate::linear::{Activation, Linear};
use crate::Error;

/// `a · b`, or [`Error::BadDimension`] naming `what` on overflow.
fn mul(what: &'static str, a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b)
        .ok_or(Error::BadDimension { what, value: a })
}

/// A ViT patch embedding: image geometry plus the projection.
#[derive(Debug, Clone, Copy)]
pub struct PatchEmbedding<'a> {
    /// Input channels `C`.
    pub channels: usize,
    /// Image height `H` (a multiple of `patch`).
    pub height: usize,
    /// Image width `W` (a multiple of `patch`).
    pub width: usize,
    /// Patch side `P` (also the conv stride).
    pub patch: usize,
    /// Projection `[D][C·P·P]`: the conv kernel `[D][C][P][P]` flattened.
    pub projection: Linear<'a>,
}

impl<'a> PatchEmbedding<'a> {
    /// Check the geometry (non-zero, `P` divides `H` and `W`, `C·P·P` equals the projection's
    /// input features) and the projection's parameters.
    #[inline(never)] // load-time check: one copy, not inlined into each caller
    pub fn validate(&self) -> Result<(), Error> {
        self.check_geometry()?;
        self.projection.validate()
    }

    /// Geometry checks only (cheap; done by every run).
    #[inline(never)] // load-time check: one copy, not inlined into each caller
    fn check_geometry(&self) -> Result<(), Error> {
        for (what, value) in [
            ("image channels", self.channels),
            ("image height", self.height),
            ("image width", self.width),
            ("patch size", self.patch),
        ] {
            if value == 0 {
                return Err(Error::BadDimension { what, value });
            }
        }
        // `checked_rem` (the patch is non-zero, checked above): no division-by-zero panic
        // path where the loop above is not unrolled (opt-level "s").
        if self.height.checked_rem(self.patch) != Some(0) {
            return Err(Error::BadDimension {
                what: "image height (not a multiple of the patch size)",
                value: self.height,
            });
        }
        if self.width.checked_rem(self.patch) != Some(0) {
            return Err(Error::BadDimension {
                what: "image width (not a multiple of the patch size)",
                value: self.width,
            });
        }
        let len = self
            .channels
            .checked_mul(self.patch)
            .and_then(|n| n.checked_mul(self.patch))
            .ok_or(Error::BadDimension {
                what: "patch size",
                value: self.patch,
            })?;
        check_len(
            "patch projection in_features",
            len,
            self.projection.in_features,
        )?;
        Ok(())
    }

    /// Number of patches `N = (H/P)·(W/P)` (0 if the patch size is 0).
    pub fn patches(&self) -> usize {
        if self.patch == 0 {
            return 0;
        }
        (self.height / self.patch) * (self.width / self.patch)
    }

    /// Bytes of one flattened patch, `C·P·P` (the scratch size; saturates on overflow, which
    /// [`Self::validate`] rejects).
    pub fn patch_len(&self) -> usize {
        self.channels
            .saturating_mul(self.patch)
            .saturating_mul(self.patch)
    }

    /// Model width `D`.
    pub fn dim(&self) -> usize {
        self.projection.out_features
    }

    /// Copy patch `index` (row-major patch order) into `scratch` in `(channel, row, col)` order.
    pub fn extract_patch(
        &self,
        image: &[i8],
        index: usize,
        scratch: &mut [i8],
    ) -> Result<(), Error> {
        self.check_geometry()?;
        let image_len = mul(
            "image size",
            mul("image size", self.channels, self.height)?,
            self.width,
        )?;
        check_len("image", image_len, image.len())?;
        check_len("patch scratch", self.patch_len(), scratch.len())?;
        let n = self.patches();
        if index >= n {
            return Err(Error::BadDimension {
                what: "patch index",
                value: index,
            });
        }
        self.copy_patch(image, index, scratch);
        Ok(())
    }

    /// Unchecked-shape body of [`Self::extract_patch`] (callers have checked the geometry, the
    /// image length and `index < N`; `scratch` holds `C·P·P` bytes).
    fn copy_patch(&self, image: &[i8], index: usize, scratch: &mut [i8]) {
        let (p, w) = (self.patch, self.width);
        // `check_geometry` (run by every caller) makes the patch size and the patch grid width
        // non-zero: this early return is unreachable.
        let Some(grid_w) = w.checked_div(p).and_then(NonZeroUsize::new) else {
            debug_assert!(false, "patch geometry not checked");
            return;
        };
        let (py, px) = (index / grid_w, index % grid_w);
        // Row `ky` of channel `c` of the patch starts at `c·H·W + (py·P + ky)·W + px·P`.
        let channel_step = (self.height * w).wrapping_sub(p * w);
        let mut start = py * p * w + px * p;
        let mut ky = 0;
        for dst in scratch.chunks_exact_mut(p) {
            // Always in the image (`[C][H][W]`, `index < N`): the early return is unreachable.
            let Some(src) = image.get(start..start + p) else {
                debug_assert!(false, "patch outside the image");
                return;
            };
            dst.copy_from_slice(src);
            ky += 1;
            start += w;
            if ky == p {
                ky = 0;
                start = start.wrapping_add(channel_step);
            }
        }
    }

    /// Bytes of scratch that let [`Self::run`] embed all patches with one batched projection:
    /// `N·C·P·P` (the im2col matrix; saturates on overflow).
    pub fn batched_scratch_len(&self) -> usize {
        self.patches().saturating_mul(self.patch_len())
    }

    /// Embed every patch: `output` is `[N][D]`; `scratch` holds at least `C·P·P` bytes.
    ///
    /// With at least [`Self::batched_scratch_len`] bytes of scratch, every patch is copied out
    /// first (im2col, `[N][C·P·P]`) and projected by one [`Linear::run`] over `N` rows, which
    /// lets the linear kernel reuse each weight across token pairs; otherwise each patch is
    /// copied and projected on its own. Both give the same bytes (each output row depends on
    /// its own patch only).
    pub fn run(&self, image: &[i8], scratch: &mut [i8], output: &mut [i8]) -> Result<(), Error> {
        let pl = self.check(image, scratch)?;
        let d = self.dim();
        let n = self.patches();
        check_len(
            "patch embedding output",
            mul("patch embedding output", n, d)?,
            output.len(),
        )?;
        let all = n * pl.get(); // ≤ image length, no overflow
        if let Some(matrix) = scratch.get_mut(..all) {
            for (index, dst) in matrix.chunks_exact_mut(pl.get()).enumerate() {
                self.copy_patch(image, index, dst);
            }
            return self.projection.run(matrix, output, Activation::Identity);
        }
        let Some(d) = NonZeroUsize::new(d) else {
            return Err(Error::BadDimension {
                what: "patch embedding width",
                value: d,
            });
        };
        // `check` made `scratch` at least one patch long.
        let found = scratch.len();
        let scratch = scratch.get_mut(..pl.get()).ok_or(Error::ShapeMismatch {
            what: "patch scratch",
            expected: pl.get(),
            found,
        })?;
        for (index, row) in output.chunks_exact_mut(d.get()).enumerate() {
            self.copy_patch(image, index, scratch);
            self.projection.run(scratch, row, Activation::Identity)?;
        }
        Ok(())
    }

    /// ViT layout `[cls; patches]`: `output` is `[N + 1][D]`; row 0 is `class_token` (already in
    /// the output's quantization), rows `1..=N` the embedded patches (`scratch` as for
    /// [`Self::run`]).
    pub fn run_with_class_token(
        &self,
        image: &[i8],
        class_token: &[i8],
        scratch: &mut [i8],
        output: &mut [i8],
    ) -> Result<(), Error> {
        self.check(image, scratch)?;
        let d = self.dim();
        check_len("class token", d, class_token.len())?;
        check_len(
            "patch embedding output",
            mul("patch embedding output", self.patches() + 1, d)?,
            output.len(),
        )?;
        // `output` holds `(N + 1)·D ≥ D` bytes (checked just above).
        let found = output.len();
        let (cls, patches) = output.split_at_mut_checked(d).ok_or(Error::ShapeMismatch {
            what: "patch embedding output",
            expected: d,
            found,
        })?;
        cls.copy_from_slice(class_token);
        self.run(image, scratch, patches)
    }

    /// Shared shape checks of the runs; returns the (non-zero) patch length `C·P·P`.
    fn check(&self, image: &[i8], scratch: &[i8]) -> Result<NonZeroUsize, Error> {
        self.check_geometry()?;
        let image_len = mul(
            "image size",
            mul("image size", self.channels, self.height)?,
            self.width,
        )?;
        check_len("image", image_len, image.len())?;
        let pl = self.patch_len();
        if scratch.len() < pl {
            return Err(Error::ShapeMismatch {
                what: "patch scratch",
                expected: pl,
                found: scratch.len(),
            });
        }
        // `check_geometry`: channels and patch size are non-zero and `C·P·P` does not overflow.
        NonZeroUsize::new(pl).ok_or(Error::BadDimension {
            what: "patch size",
            value: self.patch,
        })
    }

    /// Multiply–accumulates per image.
    pub fn macs(&self) -> usize {
        self.patches()
            .saturating_mul(self.projection.macs_per_row())
    }
}

/// Token embedding lookup: `output[t] = table[ids[t]]` for an int8 table `[vocab][width]`
/// (`vocab = table.len() / width`); `output` is `[ids.len()][width]`.
///
/// All ids are checked before anything is written: an id `≥ vocab` gives
/// [`Error::TokenOutOfRange`] and leaves `output` untouched.
#[inline] // one id per decoder step: inlined, the id loop and the length checks fold
pub fn embed_tokens(
    ids: &[u32],
    table: &[i8],
    width: usize,
    output: &mut [i8],
) -> Result<(), Error> {
    if width == 0 {
        return Err(Error::BadDimension {
            what: "embedding width",
            value: 0,
        });
    }
    if table.len() % width != 0 {
        return Err(Error::ShapeMismatch {
            what: "embedding table",
            expected: table.len() / width * width,
            found: table.len(),
        });
    }
    let vocab = table.len() / width;
    let expected = ids.len().checked_mul(width).ok_or(Error::BadDimension {
        what: "token count",
        value: ids.len(),
    })?;
    check_len("embedding output", expected, output.len())?;
    if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::TokenOutOfRange {
            id,
            vocab: u32::try_from(vocab).unwrap_or(u32::MAX),
        });
    }
    for (&id, row) in ids.iter().zip(output.chunks_exact_mut(width)) {
        // Every id was checked against `vocab` above: `start + width ≤ table.len()`.
        let start = id as usize * width;
        let src = table
            .get(start..start + width)
            .ok_or(Error::TokenOutOfRange {
                id,
                vocab: u32::try_from(vocab).unwrap_or(u32::MAX),
            })?;
        row.copy_from_slice(src);
    }
    Ok(())
}
