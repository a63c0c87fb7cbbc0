//! The KV cache: keys and values of the tokens decoded so far, in caller-provided storage.

use crate::error::check_len;
use crate::tensor::Rows;
use crate::Error;

/// Keys and values of the tokens seen so far, in caller-provided storage.
///
/// Decoding token `t` appends its key and value rows, then attends its query over rows
/// `0..=t` — no earlier key or value is recomputed. Invariants (from [`KvCache::new`]):
/// `width ≥ 1`, `keys.len() = values.len()` a multiple of `width`, `len ≤ capacity`; the
/// accessors rely on them without a panic path (a full cache is [`Error::CacheFull`]).
#[derive(Debug)]
pub struct KvCache<'a> {
    keys: &'a mut [i8],
    values: &'a mut [i8],
    width: usize,
    len: usize,
}

impl<'a> KvCache<'a> {
    /// A cache over `keys` and `values` (each `capacity · width` long).
    pub fn new(keys: &'a mut [i8], values: &'a mut [i8], width: usize) -> Result<Self, Error> {
        if width == 0 {
            return Err(Error::BadDimension {
                what: "kv cache width",
                value: 0,
            });
        }
        check_len("kv cache values", keys.len(), values.len())?;
        if keys.len() % width != 0 {
            return Err(Error::ShapeMismatch {
                what: "kv cache keys",
                expected: keys.len() / width * width,
                found: keys.len(),
            });
        }
        Ok(KvCache {
            keys,
            values,
            width,
            len: 0,
        })
    }

    /// A cache that holds nothing (capacity 0), a placeholder.
    pub(crate) fn empty() -> KvCache<'static> {
        KvCache {
            keys: &mut [],
            values: &mut [],
            width: 1,
            len: 0,
        }
    }

    /// Tokens the cache can hold.
    pub fn capacity(&self) -> usize {
        // `width ≥ 1` (checked by `new`): `max(1)` only spares a division-by-zero check.
        self.keys.len() / self.width.max(1)
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no token is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forget every token (start a new sequence).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Append one token's key and value rows.
    pub fn append(&mut self, key: &[i8], value: &[i8]) -> Result<(), Error> {
        check_len("kv cache key row", self.width, key.len())?;
        check_len("kv cache value row", self.width, value.len())?;
        // Row `len` of both buffers (`keys` and `values` are equally long, `new`); `None`
        // exactly when the cache is full (`len == capacity`).
        let start = self.len * self.width;
        let end = start.wrapping_add(self.width);
        let (Some(k), Some(v)) = (
            self.keys.get_mut(start..end),
            self.values.get_mut(start..end),
        ) else {
            return Err(Error::CacheFull {
                capacity: self.capacity(),
            });
        };
        // Both `width` long, like `key` and `value` (checked above): equal lengths.
        k.copy_from_slice(key);
        v.copy_from_slice(value);
        self.len += 1;
        Ok(())
    }

    /// Append rows `offset..offset + width` of every `stride`-wide row of `keys_src` and
    /// `values_src` (e.g. the K and V thirds of a fused QKV buffer).
    pub fn append_rows(&mut self, keys_src: Rows<'_>, values_src: Rows<'_>) -> Result<(), Error> {
        check_len("kv cache values", keys_src.rows(), values_src.rows())?;
        for t in 0..keys_src.rows() {
            // `t < rows` of both views: `get` is `Some`.
            let (Some(key), Some(value)) = (keys_src.get_row(t), values_src.get_row(t)) else {
                return Err(Error::ShapeMismatch {
                    what: "kv cache rows",
                    expected: keys_src.rows(),
                    found: t,
                });
            };
            self.append(key, value)?;
        }
        Ok(())
    }

    /// The cached keys as rows.
    pub fn keys(&self) -> Rows<'_> {
        Self::rows(self.keys, self.len, self.width)
    }

    /// The cached values as rows.
    pub fn values(&self) -> Rows<'_> {
        Self::rows(self.values, self.len, self.width)
    }

    /// The first `len` rows of `width` of `data` (`len ≤ capacity`, so in bounds; an
    /// impossible out-of-range `len` gives no rows rather than a panic).
    fn rows(data: &[i8], len: usize, width: usize) -> Rows<'_> {
        data.get(..len * width)
            .and_then(|d| Rows::contiguous(d, width).ok())
            .unwrap_or(Rows::EMPTY)
    }
}
