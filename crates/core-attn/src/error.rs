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
    /// The model blob is malformed: which check failed first, with the values it compared
    /// where there are some ([`BlobError`]).
    BadBlob(BlobError),
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
            // The `&str` parts through `write_str`, not `{}`: the same text without linking
            // `Formatter::pad` (padding support) into firmware that prints an error.
            Error::ShapeMismatch {
                what,
                expected,
                found,
            } => {
                f.write_str(what)?;
                write!(f, ": expected length {expected}, found {found}")
            }
            Error::BadDimension { what, value } => {
                f.write_str("unsupported ")?;
                f.write_str(what)?;
                write!(f, ": {value}")
            }
            Error::BadRequant => f.write_str("requantization multiplier/shift out of range"),
            Error::BufferTooSmall {
                what,
                needed,
                available,
            } => {
                f.write_str(what)?;
                write!(f, " too small: need {needed}, have {available}")
            }
            Error::CacheFull { capacity } => write!(f, "KV cache full ({capacity} tokens)"),
            Error::BadBlob(why) => {
                f.write_str("invalid model blob: ")?;
                f.write_str(why.message())
            }
            Error::TokenOutOfRange { id, vocab } => {
                write!(f, "token id {id} out of range for vocabulary of {vocab}")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Which check of a model blob failed ([`Error::BadBlob`]), with expected and found values
/// where the check compares some. Its `Display` is the check's message alone (the values are
/// in the fields, `Debug` and `defmt::Format`), so that messages stay stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BlobError {
    /// The first four bytes are not `b"TATN"`.
    BadMagic,
    /// The format version is not the one this reader reads.
    Version {
        /// Version this reader reads.
        supported: u16,
        /// Version in the blob.
        found: u16,
    },
    /// The model kind is not 1, 2 or 3.
    UnknownKind {
        /// Kind in the blob.
        found: u16,
    },
    /// The blob is shorter than its header or its length word says.
    Truncated {
        /// The message (which length).
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The FNV-1a checksum does not match.
    Checksum {
        /// Checksum in the header.
        expected: u32,
        /// Checksum of the bytes.
        found: u32,
    },
    /// A section's role tag is not the one the model layout calls for.
    SectionTag {
        /// Section index.
        index: usize,
        /// Tag the layout calls for.
        expected: u16,
        /// Tag in the table.
        found: u16,
    },
    /// A section's element type is not the one the layout calls for.
    SectionElem {
        /// Section index.
        index: usize,
        /// Element type code the layout calls for (1 i8, 2 u16, 3 i32).
        expected: u16,
        /// Element type code in the table.
        found: u16,
    },
    /// A section's offset is not 16-byte aligned.
    SectionAlignment {
        /// Section index.
        index: usize,
        /// Its offset.
        offset: usize,
    },
    /// A section extends past the end of the blob.
    SectionBounds {
        /// Section index.
        index: usize,
        /// End offset of the section.
        end: usize,
        /// Blob length.
        len: usize,
    },
    /// A size or count disagrees with the header's or another part's.
    Mismatch {
        /// The message (which size).
        what: &'static str,
        /// Value the header or layout calls for.
        expected: usize,
        /// Value found.
        found: usize,
    },
    /// Any other check; the message names it.
    Invalid(&'static str),
}

impl BlobError {
    /// The check's message (what `Display` prints).
    pub const fn message(&self) -> &'static str {
        match *self {
            BlobError::BadMagic => "bad magic (not a TATN model blob)",
            BlobError::Version { supported, found } => {
                if found > supported {
                    "format version newer than this reader"
                } else {
                    "unsupported old format version"
                }
            }
            BlobError::UnknownKind { .. } => "unknown model kind",
            BlobError::Checksum { .. } => "checksum mismatch (corrupt blob)",
            BlobError::SectionTag { .. } => "section tag does not match the model layout",
            BlobError::SectionElem { .. } => "section element type does not match",
            BlobError::SectionAlignment { .. } => "section not 16-byte aligned",
            BlobError::SectionBounds { .. } => "section extends past the end of the blob",
            BlobError::Truncated { what, .. }
            | BlobError::Mismatch { what, .. }
            | BlobError::Invalid(what) => what,
        }
    }
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for BlobError {}

/// Compares the message: `err == "checksum mismatch (corrupt blob)"`.
impl PartialEq<&str> for BlobError {
    fn eq(&self, other: &&str) -> bool {
        self.message() == *other
    }
}

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        Error::BadBlob(e)
    }
}

/// [`Error::BadBlob`] with [`BlobError::Invalid`].
pub(crate) const fn bad_blob(what: &'static str) -> Error {
    Error::BadBlob(BlobError::Invalid(what))
}

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
