//! Strided row views over int8 activations.
//!
//! Activations are `[tokens][features]` row-major. A fused QKV projection writes rows of
//! `3·D`; attention then reads Q, K and V as three strided views of that one buffer without
//! copying.

use crate::Error;

/// A read-only view of `rows` rows of `width` int8 values, each `stride` apart.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    data: &'a [i8],
    rows: usize,
    width: usize,
    stride: usize,
}

impl<'a> Rows<'a> {
    /// A view of no rows (width 1).
    pub const EMPTY: Rows<'static> = Rows {
        data: &[],
        rows: 0,
        width: 1,
        stride: 1,
    };

    /// A view of contiguous rows (`stride == width`); `data.len()` must be a multiple of `width`.
    pub fn contiguous(data: &'a [i8], width: usize) -> Result<Self, Error> {
        if width == 0 {
            return Err(Error::BadDimension {
                what: "row width",
                value: 0,
            });
        }
        if data.len() % width != 0 {
            return Err(Error::ShapeMismatch {
                what: "rows",
                expected: data.len() / width * width,
                found: data.len(),
            });
        }
        Ok(Rows {
            data,
            rows: data.len() / width,
            width,
            stride: width,
        })
    }

    /// A view of `rows` rows of `width` values starting at `offset`, rows `stride` apart.
    pub fn strided(
        data: &'a [i8],
        offset: usize,
        rows: usize,
        width: usize,
        stride: usize,
    ) -> Result<Self, Error> {
        if width == 0 || stride < width {
            return Err(Error::BadDimension {
                what: "row width/stride",
                value: width,
            });
        }
        // Checked: a wrapped bound would accept a view larger than `data`, and the kernels'
        // `get`/`iter` would then stop early instead of the shape being refused here.
        let needed = match rows.checked_sub(1) {
            None => Some(0),
            Some(last) => last
                .checked_mul(stride)
                .and_then(|n| n.checked_add(offset))
                .and_then(|n| n.checked_add(width)),
        }
        .unwrap_or(usize::MAX);
        if data.len() < needed {
            return Err(Error::BufferTooSmall {
                what: "strided rows",
                needed,
                available: data.len(),
            });
        }
        Ok(Rows {
            data: &data[offset.min(data.len())..],
            rows,
            width,
            stride,
        })
    }

    /// Number of rows.
    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row.
    #[inline]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Row `i` (panics if `i >= rows`; kernels only index rows they have range-checked).
    #[inline(always)]
    pub fn row(&self, i: usize) -> &'a [i8] {
        let start = i * self.stride;
        &self.data[start..start + self.width]
    }

    /// Row `i`, or `None` if `i >= rows` (for kernels that must not panic).
    #[inline(always)]
    pub fn get_row(&self, i: usize) -> Option<&'a [i8]> {
        if i >= self.rows {
            return None;
        }
        // `i·stride + width ≤ data.len()` for every row (checked by the constructors).
        let start = i * self.stride;
        self.data.get(start..start + self.width)
    }

    /// Columns `start..start + len` of every row, as a narrower view (one attention head).
    pub fn columns(&self, start: usize, len: usize) -> Result<Self, Error> {
        let end = start.saturating_add(len);
        if end > self.width || len == 0 {
            return Err(Error::BadDimension {
                what: "column range",
                value: end,
            });
        }
        Ok(Rows {
            data: &self.data[start.min(self.data.len())..],
            rows: self.rows,
            width: len,
            stride: self.stride,
        })
    }

    /// The rows in order, each `width` wide: the iterator form of [`Rows::get_row`], without a
    /// panic path and without a multiplication or a row count per row. The constructors
    /// check `stride ≥ width ≥ 1` (so `max(1)` changes nothing) and that the `rows` rows span
    /// `(rows − 1)·stride + width` values of the data, so the chunks of that span are exactly
    /// the rows (the last one `width` long) and `map_while` never stops early.
    #[inline(always)]
    pub fn iter(&self) -> impl Iterator<Item = &'a [i8]> + 'a {
        let width = self.width;
        let span = match self.rows {
            0 => 0,
            n => (n - 1).wrapping_mul(self.stride).wrapping_add(width),
        };
        self.data
            .get(..span)
            .unwrap_or_default()
            .chunks(self.stride.max(1))
            .map_while(move |r| r.get(..width))
    }
}

/// `a.zip(b)` without `Zip::new`: pairs until either iterator ends. For two `chunks_exact`
/// iterators (or a range and one), `Zip::new` computes both lengths up front, a division by
/// the chunk width; out of line (opt-level "s" does not inline it) that division keeps a
/// division-by-zero panic call, which links the panic machinery (the handler and its
/// formatting, about 1 KB) into a firmware that otherwise has no panic path. Here each step
/// is the iterators' own `next` (no division).
///
/// Size-first builds only (`cfg(core_attn_small)`): elsewhere it is `a.zip(b)`, which the
/// optimizer inlines (the division folds) and whose known trip count the unrolled kernels use.
#[cfg(core_attn_small)]
#[inline(always)]
pub(crate) fn zip_lazy<I: Iterator, J: Iterator>(
    mut a: I,
    mut b: J,
) -> impl Iterator<Item = (I::Item, J::Item)> {
    core::iter::from_fn(move || Some((a.next()?, b.next()?)))
}

/// See the size-first [`zip_lazy`]: here `a.zip(b)`.
#[cfg(not(core_attn_small))]
#[inline(always)]
pub(crate) fn zip_lazy<I: Iterator, J: Iterator>(a: I, b: J) -> core::iter::Zip<I, J> {
    a.zip(b)
}
