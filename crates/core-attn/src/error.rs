//! The one error type of the crate.

use core::fmt;

/// Everything that can go wrong in core-attn.
///
/// Kernels return this instead of panicking when the shapes they are handed do not agree; the
/// blob reader returns it for a blob that is corrupt or does not fit the compiled buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A slice's length disagrees with the shape it should hold.
    ShapeMismatch {
        /// What the slice is (e.g. `"linear weights"`).
        what: &'static str,
        /// Length the shape calls for.
        expected: usize,
        /// Length that was passed.
        found: usize,
    },
    /// A dimension is zero, too large for the crate's overflow bounds, or does not divide.
    BadDimension {
        /// Which dimension.
        what: &'static str,
        /// Its value.
        value: usize,
    },
    /// A requantization multiplier/shift pair outside the supported range.
    BadRequant,
    /// A caller-provided buffer is too small for the work asked of it.
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Bytes or elements needed.
        needed: usize,
        /// Bytes or elements available.
        available: usize,
    },
    /// The KV cache is full.
    CacheFull {
        /// Its capacity in tokens.
        capacity: usize,
    },
    /// The model blob is malformed; the string names the first problem found.
    BadBlob(&'static str),
    /// A token id or class index outside the model's vocabulary.
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::ShapeMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what}: expected length {expected}, found {found}"),
            Error::BadDimension { what, value } => write!(f, "unsupported {what}: {value}"),
            Error::BadRequant => f.write_str("requantization multiplier/shift out of range"),
            Error::BufferTooSmall {
                what,
                needed,
                available,
            } => write!(f, "{what} too small: need {needed}, have {available}"),
            Error::CacheFull { capacity } => write!(f, "KV cache full ({capacity} tokens)"),
            Error::BadBlob(why) => write!(f, "invalid model blob: {why}"),
            Error::TokenOutOfRange { id, vocab } => {
                write!(f, "token id {id} out of range for vocabulary of {vocab}")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Check that `found == expected`, naming `what` otherwise.
#[inline]
pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what,
            expected,
            found,
        })
    }
}

/// The first `len` elements of `buf`, or [`Error::BufferTooSmall`] naming `what`.
pub(crate) fn prefix<'s, T>(
    buf: &'s mut [T],
    len: usize,
    what: &'static str,
) -> Result<&'s mut [T], Error> {
    let available = buf.len();
    buf.get_mut(..len).ok_or(Error::BufferTooSmall {
        what,
        needed: len,
        available,
    })
}
