//! The optional vocabulary sections.

use super::*;

/// The text of each token id (or class), read zero-copy from a blob's optional vocabulary
/// sections ([`Blob::vocab`]).
#[derive(Debug, Clone, Copy)]
pub struct Vocab<'a> {
    /// `len + 1` byte offsets into `bytes`, non-decreasing (checked by [`Blob::parse`]).
    offsets: &'a [i32],
    /// UTF-8 text of every entry, concatenated.
    bytes: &'a [u8],
}

impl<'a> Vocab<'a> {
    /// The vocabulary over sections already checked (`read_vocab`'s checks passed).
    pub(super) fn from_parts(offsets: &'a [i32], bytes: &'a [u8]) -> Self {
        Vocab { offsets, bytes }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when there are no ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text of `id`; `None` for an id out of range or without an entry (empty text).
    pub fn text(&self, id: u32) -> Option<&'a str> {
        let i = id as usize;
        let (&a, &b) = (self.offsets.get(i)?, self.offsets.get(i.checked_add(1)?)?);
        let bytes = self.bytes.get(a as usize..b as usize)?;
        core::str::from_utf8(bytes).ok().filter(|s| !s.is_empty())
    }

    /// Encode `text` into ids, longest entry first at each position (for a character
    /// vocabulary: one id per character). Returns how many ids were written to `out`.
    ///
    /// # Errors
    ///
    /// [`Error::BadDimension`] (`what`: `"text byte offset without a vocabulary entry"`) when
    /// no entry matches at some byte offset, [`Error::BufferTooSmall`] when `out` is full.
    pub fn encode(&self, text: &str, out: &mut [u32]) -> Result<usize, Error> {
        let mut rest = text.as_bytes();
        let mut n = 0;
        while !rest.is_empty() {
            let mut best: Option<(u32, usize)> = None;
            for id in 0..self.len() as u32 {
                if let Some(e) = self.text(id) {
                    let l = e.len();
                    if rest.starts_with(e.as_bytes()) && best.is_none_or(|(_, bl)| l > bl) {
                        best = Some((id, l));
                    }
                }
            }
            let Some((id, l)) = best else {
                return Err(Error::BadDimension {
                    what: "text byte offset without a vocabulary entry",
                    value: text.len() - rest.len(),
                });
            };
            let available = out.len();
            let slot = out.get_mut(n).ok_or(Error::BufferTooSmall {
                what: "token ids buffer",
                needed: n + 1,
                available,
            })?;
            *slot = id;
            n += 1;
            rest = rest.get(l..).unwrap_or(&[]);
        }
        Ok(n)
    }
}

#[inline(never)] // load-time reader: one copy, not one per caller (code size)
pub(super) fn read_vocab<'a>(c: &mut Cursor<'a>) -> Result<Vocab<'a>, Error> {
    let offsets = c.i32s(tag::VOCAB_OFFSETS)?;
    let bytes: &[u8] = bytemuck::cast_slice(c.i8s(tag::VOCAB_BYTES)?);
    let Some((&first, _)) = offsets.split_first() else {
        return Err(crate::error::bad_blob("vocabulary offsets empty"));
    };
    check(first == 0, "vocabulary offsets do not start at 0")?;
    check(
        offsets.last().is_some_and(|&l| l as usize == bytes.len()),
        "vocabulary offsets do not end at the text's length",
    )?;
    for w in offsets.windows(2) {
        let &[a, b] = w else {
            return Err(crate::error::bad_blob("vocabulary offsets empty"));
        };
        check(0 <= a && a <= b, "vocabulary offsets decrease")?;
        let entry = bytes
            .get(a as usize..b as usize)
            .ok_or(crate::error::bad_blob("vocabulary offsets past the text"))?;
        check(utf8_ok(entry), "vocabulary entry is not UTF-8")?;
    }
    Ok(Vocab { offsets, bytes })
}

/// `core::str::from_utf8(b).is_ok()` in a loop of a few instructions per byte (core's
/// validation, inlined at every use, has a word-at-a-time ASCII fast path: code size).
/// Well-formed UTF-8 as the Unicode standard defines it: shortest form, no surrogates, at most
/// U+10FFFF.
///
/// A `const fn`: the compile-time check of an embedded blob runs it too.
pub(super) const fn utf8_ok(b: &[u8]) -> bool {
    // `split_first` / `split_at_checked`, not indexing: no bounds check (a panic call site)
    // is left in a firmware (`boards/no-panic`).
    let mut rest = b;
    while let Some((&lead, tail)) = rest.split_first() {
        let (more, min, bits) = match lead {
            0x00..=0x7f => (0, 0, lead),
            0xc2..=0xdf => (1, 0x80, lead & 0x1f),
            0xe0..=0xef => (2, 0x800, lead & 0x0f),
            0xf0..=0xf4 => (3, 0x1_0000, lead & 0x07),
            _ => return false,
        };
        let Some((mut cont, after)) = tail.split_at_checked(more) else {
            return false;
        };
        let mut c = bits as u32;
        while let Some((&x, next)) = cont.split_first() {
            if x & 0xc0 != 0x80 {
                return false;
            }
            c = (c << 6) | (x & 0x3f) as u32;
            cont = next;
        }
        if c < min || (0xd800 <= c && c <= 0xdfff) || c > 0x10_ffff {
            return false;
        }
        rest = after;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::utf8_ok;

    /// `utf8_ok` agrees with `core::str::from_utf8` (the independent reference) on every
    /// sequence of one and two bytes, and on every sequence of three and four bytes drawn from
    /// the values at the edges of the UTF-8 byte classes (ASCII, continuation bytes, the
    /// leads with restricted second bytes `E0`/`ED`/`F0`/`F4`, the never-valid bytes),
    /// followed or not by ASCII. Guards against a validator that accepts surrogates (the
    /// `0xd800..=0xdfff` test removed: `ED A0 80` passes), overlong forms (`c < min` removed:
    /// `E0 80 80` passes), code points past U+10FFFF (`F4 90 80 80`) or a truncated sequence.
    #[test]
    fn utf8_ok_is_from_utf8() {
        let agree = |b: &[u8]| {
            assert_eq!(
                utf8_ok(b),
                core::str::from_utf8(b).is_ok(),
                "bytes {b:02x?}"
            );
        };
        // Under Miri (`.ci/miri`) a sample of the two-byte sequences and no four-byte ones.
        let step = if cfg!(miri) { 7 } else { 1 };
        for a in 0..=255u8 {
            agree(&[a]);
            for b in (0..=255u8).step_by(step) {
                agree(&[a, b]);
            }
        }
        let edges = [
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
            0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
        ];
        for &a in &edges {
            for &b in &edges {
                for &c in &edges {
                    agree(&[a, b, c]);
                    agree(&[a, b, c, b'x']);
                    for &d in edges.iter().filter(|_| !cfg!(miri)) {
                        agree(&[a, b, c, d]);
                    }
                }
            }
        }
    }
}
