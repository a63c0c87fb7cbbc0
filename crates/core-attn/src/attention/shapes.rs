//! The shape checks every attention kernel runs first ([`Attention::check`]), and their
//! grouped-query form: what the kernels' bounds rest on.

use super::*;

impl Attention<'_> {
    /// Shape checks shared by the variants; returns the number of keys. After it: `heads ≥ 1`,
    /// `head_dim ≥ 1`, `width() = heads · head_dim ≤ MAX_WIDTH` (no overflow), Q/K/V rows
    /// `width()` wide, `out` exactly `q.rows()` rows of `width()`, `nk = k.rows() = v.rows()`
    /// in `1..=MAX_SEQ_LEN` and `scratch.len() ≥ nk` — what the kernels' bounds rest on (a
    /// valid blob's layers pass: `Blob::parse` bounds the width the same way, and the blocks
    /// size the views and buffers from it).
    pub(super) fn check(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Rows<'_>,
        out: &[i8],
        scratch: &[i32],
    ) -> Result<Dims, Error> {
        if self.heads == 0 {
            return Err(Error::BadDimension {
                what: "attention heads",
                value: 0,
            });
        }
        self.check_shapes(q, k, Some(v), out, scratch)
    }

    /// [`Attention::check`] after its `heads ≥ 1`, in its order. `v: None` for grouped K/V
    /// ([`Attention::run_grouped`]): the widths of `k`/`v` and `v.rows() = k.rows()` are then
    /// the caller's checks.
    #[inline(always)]
    pub(super) fn check_shapes(
        &self,
        q: Rows<'_>,
        k: Rows<'_>,
        v: Option<Rows<'_>>,
        out: &[i8],
        scratch: &[i32],
    ) -> Result<Dims, Error> {
        let (Some(width_nz), Some(dh)) = (
            self.heads
                .checked_mul(self.head_dim)
                .filter(|&w| w <= MAX_WIDTH)
                .and_then(NonZeroUsize::new),
            NonZeroUsize::new(self.head_dim),
        ) else {
            return Err(Error::BadDimension {
                what: "attention head_dim",
                value: self.head_dim,
            });
        };
        let width = width_nz.get();
        check_len("attention query width", width, q.width())?;
        if let Some(v) = v {
            check_len("attention key width", width, k.width())?;
            check_len("attention value width", width, v.width())?;
            check_len("attention values", k.rows(), v.rows())?;
        }
        check_len("attention output", q.rows() * width, out.len())?;
        let nk = k.rows();
        let Some(nk) = NonZeroUsize::new(nk).filter(|n| n.get() <= MAX_SEQ_LEN) else {
            return Err(Error::BadDimension {
                what: "attention key count",
                value: nk,
            });
        };
        if scratch.len() < nk.get() {
            return Err(Error::BufferTooSmall {
                what: "attention scratch",
                needed: nk.get(),
                available: scratch.len(),
            });
        }
        Ok(Dims {
            nk,
            width: width_nz,
            dh,
        })
    }
}
