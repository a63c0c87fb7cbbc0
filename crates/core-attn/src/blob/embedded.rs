//! The check of a ViT classifier blob as a `const fn`, for a blob embedded in the firmware
//! ([`include_model!`](crate::include_model)): the compiler runs every check of
//! [`Blob::parse`] on it, so that a bad embedded blob fails the **build**; at boot the firmware
//! only confirms that the flash still holds those exact bytes (an FNV-1a 32 over the whole
//! blob, compared with the one the compiler computed: [`Embedded::open`]).
//!
//! The preamble and header checks are the ones [`Blob::parse`] runs (`parse::head`,
//! `parse::table`, both `const fn`s). The walk over the sections and the parameter checks of
//! the kernel structs (`Linear::validate`, `Attention::validate`, … in the kernel modules,
//! which are not `const fn`s) are restated here in the same order with the same errors:
//! `tests/blob_oracle.rs` checks that [`Embedded::check_vit`] returns what `Blob::parse`
//! returns (as `Debug` text) for every recorded corruption of the ViT blobs.
//!
//! What this check cannot see: where the bytes will sit in memory (the `i32`/`u16` sections
//! need 4-byte alignment). `include_model!` keeps the blob in a 16-byte aligned static, and
//! the accessors of [`Blob`] still refuse a misaligned section with an error.

use super::parse::{head, table, Layout};
use super::reader::Elem;
use super::*;
use crate::linear::MAX_BIAS;
use crate::MAX_WIDTH;

/// A ViT classifier blob checked by the compiler: everything [`Blob`] holds besides the bytes,
/// and the FNV-1a 32 of the bytes that were checked.
///
/// Built in a `const` by [`Embedded::vit`] ([`include_model!`](crate::include_model) does it);
/// [`Embedded::open`] gives the [`Blob`] over the bytes in flash after comparing their
/// fingerprint.
///
/// ```compile_fail,E0080
/// // A ViT blob with one byte flipped (a weight: the checksum no longer matches) does not build.
/// const BAD: [u8; 86000] = {
///     let mut b = *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/vit-mnist.tatn"));
///     b[5000] ^= 1;
///     b
/// };
/// const CHECKED: core_attn::blob::Embedded = core_attn::blob::Embedded::vit(&BAD);
/// ```
///
/// ```
/// // The intact blob builds.
/// const GOOD: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/vit-mnist.tatn"));
/// const CHECKED: core_attn::blob::Embedded = core_attn::blob::Embedded::vit(GOOD);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    header: Header,
    total: usize,
    table: usize,
    count: usize,
    layout: Layout,
    fingerprint: u32,
}

impl Embedded {
    /// Every check of [`Blob::parse`] on a blob that must be a ViT classifier, as a
    /// `const fn`.
    ///
    /// # Errors
    ///
    /// What [`Blob::parse`] returns for these bytes (a blob of another kind: "model kind
    /// differs from the one asked for"), except that the alignment of the bytes in memory is
    /// not checked.
    pub const fn check_vit(bytes: &[u8]) -> Result<Embedded, Error> {
        const VIT: u16 = ModelKind::VitClassifier as u16;
        let (bytes, header) = tri!(head::<VIT>(bytes));
        let required = tri!(header.required_buffers_const(ModelKind::VitClassifier));
        let blob = tri!(table(bytes, header, required));
        let (table, count) = blob.table_and_count();
        let mut c = C {
            bytes,
            table,
            count,
            next: 0,
        };
        let layout = tri!(walk_vit(&mut c, &header));
        Ok(Embedded {
            header,
            total: bytes.len(),
            table,
            count,
            layout,
            fingerprint: fnv1a32(bytes),
        })
    }

    /// [`Embedded::check_vit`] for a `const`: a blob that fails a check is a compile error
    /// naming the check (the text of its `BlobError` or `what`, e.g. `evaluation panicked:
    /// checksum mismatch (corrupt blob)`).
    ///
    /// # Panics
    ///
    /// On a blob [`Embedded::check_vit`] rejects (at compile time in a `const`).
    pub const fn vit(bytes: &[u8]) -> Embedded {
        match Self::check_vit(bytes) {
            Ok(e) => e,
            Err(e) => panic!("{}", const_message(&e)),
        }
    }

    /// The checked blob's header.
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// Bytes the checked blob covers (its header's total length).
    pub const fn len(&self) -> usize {
        self.total
    }

    /// Never true (a checked blob holds at least its header).
    pub const fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The [`Blob`] over `bytes` (the embedded blob, as it is in flash now) after confirming
    /// they are the bytes the compiler checked: their FNV-1a 32 over the whole blob equals
    /// the one computed at compile time. A few dozen bytes of code instead of the whole
    /// validation.
    ///
    /// # Errors
    ///
    /// [`BlobError::Truncated`] when `bytes` is shorter than the checked blob;
    /// [`BlobError::Checksum`] (expected: the compile-time fingerprint) when any byte
    /// differs.
    pub fn open<'a>(&self, bytes: &'a [u8]) -> Result<Blob<'a>, Error> {
        let Some(bytes) = bytes.get(..self.total) else {
            return Err(BlobError::Truncated {
                what: "blob shorter than its header says (truncated)",
                needed: self.total,
                available: bytes.len(),
            }
            .into());
        };
        let found = fnv1a32(bytes);
        if found != self.fingerprint {
            return Err(BlobError::Checksum {
                expected: self.fingerprint,
                found,
            }
            .into());
        }
        Ok(Blob::from_parts(
            bytes,
            self.header,
            self.table,
            self.count,
            self.layout,
        ))
    }
}

/// The message of `e` for a compile error: `model blob: ` and the check's text.
const fn const_message(e: &Error) -> &'static str {
    match *e {
        Error::BadBlob(b) => b.message(),
        Error::ShapeMismatch { what, .. }
        | Error::BadDimension { what, .. }
        | Error::BufferTooSmall { what, .. } => what,
        Error::CacheFull { .. } => "KV cache full",
        Error::TokenOutOfRange { .. } => "token id out of range",
        Error::BadRequant => "requantization multiplier/shift out of range",
    }
}

/// A section: byte offset and element count.
#[derive(Clone, Copy)]
struct Sec {
    off: usize,
    n: usize,
}

/// `Cursor` as a `const fn` reader: the same checks, sections as offsets instead of slices.
struct C<'a> {
    bytes: &'a [u8],
    table: usize,
    count: usize,
    next: usize,
}

const fn bad(what: &'static str) -> Error {
    crate::error::bad_blob(what)
}

const fn same(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::BadBlob(BlobError::Mismatch {
            what,
            expected,
            found,
        }))
    }
}

const fn check(ok: bool, what: &'static str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(bad(what))
    }
}

const fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
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

const fn int8(v: i32) -> bool {
    -128 <= v && v <= 127
}

const fn usize_of(v: i32) -> Result<usize, Error> {
    if v < 0 {
        Err(bad("negative dimension"))
    } else {
        Ok(v as usize)
    }
}

const fn requant(m: i32, s: i32) -> Result<Requant, Error> {
    if !int8(s) {
        return Err(bad("shift outside int8"));
    }
    Ok(Requant {
        multiplier: m,
        shift: s as i8,
    })
}

/// `Requant::validate` without its value.
const fn requant_ok(r: Requant) -> Result<(), Error> {
    match r.validate() {
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

impl C<'_> {
    const fn take(&mut self, want_tag: u16, elem: Elem) -> Result<Sec, Error> {
        if self.next >= self.count {
            return Err(bad("fewer sections than the model needs"));
        }
        let e = self.table + self.next * ENTRY_BYTES;
        self.next += 1;
        if e + ENTRY_BYTES > self.bytes.len() {
            return Err(bad("blob truncated"));
        }
        let te = self.u32_at(e);
        let (offset, count) = (self.u32_at(e + 4) as usize, self.u32_at(e + 8) as usize);
        let index = self.next - 1;
        if (te & 0xffff) as u16 != want_tag {
            return Err(Error::BadBlob(BlobError::SectionTag {
                index,
                expected: want_tag,
                found: (te & 0xffff) as u16,
            }));
        }
        if (te >> 16) as u16 != elem as u16 {
            return Err(Error::BadBlob(BlobError::SectionElem {
                index,
                expected: elem as u16,
                found: (te >> 16) as u16,
            }));
        }
        if offset % SECTION_ALIGN != 0 {
            return Err(Error::BadBlob(BlobError::SectionAlignment {
                index,
                offset,
            }));
        }
        let Some(len) = count.checked_mul(elem.size()) else {
            return Err(bad("section size overflow"));
        };
        let Some(end) = offset.checked_add(len) else {
            return Err(bad("section size overflow"));
        };
        if end > self.bytes.len() {
            return Err(Error::BadBlob(BlobError::SectionBounds {
                index,
                end,
                len: self.bytes.len(),
            }));
        }
        Ok(Sec {
            off: offset,
            n: count,
        })
    }

    const fn u32_at(&self, at: usize) -> u32 {
        let b = self.bytes;
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// Element `i` of an `i32` section.
    const fn i32_of(&self, s: Sec, i: usize) -> i32 {
        self.u32_at(s.off + 4 * i) as i32
    }

    /// Element `i` of a `u16` section.
    const fn u16_of(&self, s: Sec, i: usize) -> u16 {
        let at = s.off + 2 * i;
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    /// Element `i` of an `i8` section.
    const fn i8_of(&self, s: Sec, i: usize) -> i8 {
        self.bytes[s.off + i] as i8
    }

    const fn scalars(&mut self, tag: u16, n: usize) -> Result<Sec, Error> {
        let s = tri!(self.take(tag, Elem::I32));
        if s.n != n {
            return Err(bad("scalar section has the wrong length"));
        }
        Ok(s)
    }

    /// `Cursor::layer_norm`; returns `(width, output zero point)`.
    const fn layer_norm(&mut self) -> Result<usize, Error> {
        let gamma = tri!(self.take(tag::LN_GAMMA, Elem::I32));
        let beta = tri!(self.take(tag::LN_BETA, Elem::I32));
        let s = tri!(self.scalars(tag::LN_SCALARS, 3));
        if beta.n != gamma.n {
            return Err(bad("LayerNorm gamma and beta lengths differ"));
        }
        if !int8(self.i32_of(s, 2)) {
            return Err(bad("LayerNorm zero point outside int8"));
        }
        Ok(gamma.n)
    }

    const fn linear(&mut self) -> Result<Lin, Error> {
        let s = tri!(self.scalars(tag::LIN_SHAPE, 3));
        let in_features = tri!(usize_of(self.i32_of(s, 0)));
        let out_features = tri!(usize_of(self.i32_of(s, 1)));
        Ok(Lin {
            in_features,
            out_features,
            weights: tri!(self.take(tag::LIN_W, Elem::I8)),
            bias: tri!(self.take(tag::LIN_B, Elem::I32)),
            multipliers: tri!(self.take(tag::LIN_MUL, Elem::I32)),
            shifts: tri!(self.take(tag::LIN_SHIFT, Elem::I8)),
            output_zero_point: self.i32_of(s, 2),
        })
    }

    /// `Linear::validate` (with `ChannelRequant::validate`).
    const fn validate_linear(&self, l: &Lin) -> Result<(), Error> {
        if l.in_features == 0 || l.in_features > MAX_WIDTH {
            return Err(Error::BadDimension {
                what: "linear in_features",
                value: l.in_features,
            });
        }
        if l.out_features == 0 {
            return Err(Error::BadDimension {
                what: "linear out_features",
                value: 0,
            });
        }
        let Some(n) = l.in_features.checked_mul(l.out_features) else {
            return Err(Error::BadDimension {
                what: "linear size",
                value: usize::MAX,
            });
        };
        tri!(check_len("linear weights", n, l.weights.n));
        tri!(check_len("linear bias", l.out_features, l.bias.n));
        tri!(check_len("requant shifts", l.multipliers.n, l.shifts.n));
        let mut i = 0;
        while i < l.multipliers.n {
            tri!(requant_ok(Requant {
                multiplier: self.i32_of(l.multipliers, i),
                shift: self.i8_of(l.shifts, i),
            }));
            i += 1;
        }
        tri!(check_len("linear requant", l.out_features, l.multipliers.n));
        let mut i = 0;
        while i < l.bias.n {
            if self.i32_of(l.bias, i).unsigned_abs() > MAX_BIAS as u32 {
                return Err(Error::BadDimension {
                    what: "linear bias magnitude",
                    value: MAX_BIAS as usize,
                });
            }
            i += 1;
        }
        if !int8(l.output_zero_point) {
            return Err(Error::BadDimension {
                what: "linear output zero point",
                value: l.output_zero_point.unsigned_abs() as usize,
            });
        }
        Ok(())
    }

    /// An exp table is positive at 0 and non-increasing (`ExpTable::new`).
    const fn exp_ok(&self, t: Sec) -> bool {
        if self.u16_of(t, 0) == 0 {
            return false;
        }
        let mut i = 1;
        while i < 256 {
            if self.u16_of(t, i) > self.u16_of(t, i - 1) {
                return false;
            }
            i += 1;
        }
        true
    }

    /// `Cursor::attention` then `Attention::validate`; returns `(heads, width)`.
    const fn attention(&mut self) -> Result<Att, Error> {
        let s = tri!(self.scalars(tag::ATT_SCALARS, 7));
        let heads = tri!(usize_of(self.i32_of(s, 0)));
        let head_dim = tri!(usize_of(self.i32_of(s, 1)));
        match heads.checked_mul(head_dim) {
            Some(w) if w != 0 && w <= MAX_WIDTH => {}
            _ => return Err(bad("attention width out of range")),
        }
        let hi = tri!(self.take(tag::EXP_HI, Elem::U16));
        if hi.n != 256 {
            return Err(bad("exp table is not 256 entries"));
        }
        let lo = tri!(self.take(tag::EXP_LO, Elem::U16));
        if lo.n != 256 {
            return Err(bad("exp table is not 256 entries"));
        }
        let score = tri!(requant(self.i32_of(s, 2), self.i32_of(s, 3)));
        if !self.exp_ok(hi) || !self.exp_ok(lo) {
            return Err(bad("exp table not positive and non-increasing"));
        }
        let output = tri!(requant(self.i32_of(s, 4), self.i32_of(s, 5)));
        Ok(Att {
            heads,
            head_dim,
            score,
            output,
            output_zero_point: self.i32_of(s, 6),
        })
    }

    /// `Cursor::residual`: the two requantizations and the three zero points.
    const fn residual(&mut self) -> Result<Res, Error> {
        let s = tri!(self.scalars(tag::RESIDUAL, 7));
        let a = tri!(requant(self.i32_of(s, 0), self.i32_of(s, 1)));
        let b = tri!(requant(self.i32_of(s, 3), self.i32_of(s, 4)));
        Ok(Res {
            a,
            b,
            zero_points: [self.i32_of(s, 2), self.i32_of(s, 5), self.i32_of(s, 6)],
        })
    }

    /// `Cursor::mlp`; returns `(fc1, fc2)`.
    const fn mlp(&mut self) -> Result<(Lin, Lin), Error> {
        let fc1 = tri!(self.linear());
        let lut = tri!(self.take(tag::LUT, Elem::I8));
        if lut.n != 256 {
            return Err(bad("lookup table is not 256 entries"));
        }
        let fc2 = tri!(self.linear());
        Ok((fc1, fc2))
    }

    /// `Cursor::encoder_block` then `EncoderBlock::validate`; returns `(width, heads, mlp
    /// width, post-norm)`.
    const fn encoder_block(&mut self) -> Result<(usize, usize, usize, bool), Error> {
        let s = tri!(self.scalars(tag::BLOCK, 2));
        let post = match self.i32_of(s, 0) {
            0 => false,
            1 => true,
            _ => return Err(bad("unknown norm placement")),
        };
        let ln1 = tri!(self.layer_norm());
        let qkv = tri!(self.linear());
        let att = tri!(self.attention());
        let proj = tri!(self.linear());
        let add1 = tri!(self.residual());
        let ln2 = tri!(self.layer_norm());
        let (fc1, fc2) = tri!(self.mlp());
        let add2 = tri!(self.residual());
        // `validate_common` (block.rs).
        let w = att.heads.saturating_mul(att.head_dim);
        tri!(validate_attention(&att));
        tri!(validate_layer_norm(ln1));
        tri!(validate_layer_norm(ln2));
        tri!(check_len("ln1 width", w, ln1));
        tri!(check_len("ln2 width", w, ln2));
        tri!(self.validate_linear(&qkv));
        tri!(check_len("qkv input", w, qkv.in_features));
        tri!(check_len("qkv output", 3 * w, qkv.out_features));
        if qkv.output_zero_point != 0 {
            return Err(Error::BadRequant);
        }
        tri!(self.validate_linear(&proj));
        tri!(check_len("proj input", w, proj.in_features));
        tri!(check_len("proj output", w, proj.out_features));
        tri!(validate_residual(&add1));
        tri!(validate_residual(&add2));
        // `Mlp::validate`.
        tri!(self.validate_linear(&fc1));
        tri!(self.validate_linear(&fc2));
        tri!(check_len("mlp fc1 input", w, fc1.in_features));
        tri!(check_len(
            "mlp fc2 input",
            fc1.out_features,
            fc2.in_features
        ));
        tri!(check_len("mlp fc2 output", w, fc2.out_features));
        Ok((w, att.heads, fc1.out_features, post))
    }

    /// `read_vocab`; returns the number of entries.
    const fn vocab(&mut self) -> Result<usize, Error> {
        let offsets = tri!(self.take(tag::VOCAB_OFFSETS, Elem::I32));
        let text = tri!(self.take(tag::VOCAB_BYTES, Elem::I8));
        if offsets.n == 0 {
            return Err(bad("vocabulary offsets empty"));
        }
        tri!(check(
            self.i32_of(offsets, 0) == 0,
            "vocabulary offsets do not start at 0"
        ));
        tri!(check(
            self.i32_of(offsets, offsets.n - 1) as usize == text.n,
            "vocabulary offsets do not end at the text's length",
        ));
        let mut i = 0;
        while i + 1 < offsets.n {
            let (a, b) = (self.i32_of(offsets, i), self.i32_of(offsets, i + 1));
            tri!(check(0 <= a && a <= b, "vocabulary offsets decrease"));
            if b as usize > text.n {
                return Err(bad("vocabulary offsets past the text"));
            }
            let entry = self
                .bytes
                .split_at(text.off + b as usize)
                .0
                .split_at(text.off + a as usize)
                .1;
            tri!(check(
                vocab::utf8_ok(entry),
                "vocabulary entry is not UTF-8"
            ));
            i += 1;
        }
        Ok(offsets.n - 1)
    }
}

/// A linear layer's shape and sections.
struct Lin {
    in_features: usize,
    out_features: usize,
    weights: Sec,
    bias: Sec,
    multipliers: Sec,
    shifts: Sec,
    output_zero_point: i32,
}

/// An attention's parameters.
struct Att {
    heads: usize,
    head_dim: usize,
    score: Requant,
    output: Requant,
    output_zero_point: i32,
}

/// A residual addition's parameters.
struct Res {
    a: Requant,
    b: Requant,
    zero_points: [i32; 3],
}

/// `LayerNorm::validate` after `Cursor::layer_norm` (which checked the lengths and the zero
/// point): the width.
const fn validate_layer_norm(width: usize) -> Result<(), Error> {
    if width == 0 || width > MAX_WIDTH {
        return Err(Error::BadDimension {
            what: "layer norm width",
            value: width,
        });
    }
    Ok(())
}

/// `Attention::validate` after `Cursor::attention` (which checked the tables).
const fn validate_attention(a: &Att) -> Result<(), Error> {
    if a.heads == 0 {
        return Err(Error::BadDimension {
            what: "attention heads",
            value: 0,
        });
    }
    if a.head_dim == 0 || a.heads.saturating_mul(a.head_dim) > MAX_WIDTH {
        return Err(Error::BadDimension {
            what: "attention head_dim",
            value: a.head_dim,
        });
    }
    tri!(requant_ok(a.score));
    tri!(requant_ok(a.output));
    if !int8(a.output_zero_point) {
        return Err(Error::BadRequant);
    }
    Ok(())
}

/// `ResidualAdd::validate`.
const fn validate_residual(r: &Res) -> Result<(), Error> {
    let scales = [r.a, r.b];
    let mut i = 0;
    while i < 2 {
        tri!(requant_ok(scales[i]));
        if scales[i].shift > 8 {
            return Err(Error::BadRequant);
        }
        i += 1;
    }
    let mut i = 0;
    while i < 3 {
        if !int8(r.zero_points[i]) {
            return Err(Error::BadRequant);
        }
        i += 1;
    }
    Ok(())
}

/// `Blob::walk` for a ViT classifier.
const fn walk_vit(c: &mut C<'_>, h: &Header) -> Result<Layout, Error> {
    let e = &h.encoder;
    let mut l = Layout::EMPTY;
    l.vit_embed = c.next;
    // `read_vit_embedding`.
    let projection = tri!(c.linear());
    let class_token = tri!(c.take(tag::CLASS_TOKEN, Elem::I8));
    let positions = tri!(c.take(tag::POSITIONS, Elem::I8));
    let position_add = tri!(c.residual());
    // `PatchEmbedding::validate`: the geometry, then the projection.
    let geometry = [
        ("image channels", e.channels),
        ("image height", e.height),
        ("image width", e.image_width),
        ("patch size", e.patch),
    ];
    let mut i = 0;
    while i < geometry.len() {
        let (what, value) = geometry[i];
        if value == 0 {
            return Err(Error::BadDimension { what, value });
        }
        i += 1;
    }
    if e.height % e.patch != 0 {
        return Err(Error::BadDimension {
            what: "image height (not a multiple of the patch size)",
            value: e.height,
        });
    }
    if e.image_width % e.patch != 0 {
        return Err(Error::BadDimension {
            what: "image width (not a multiple of the patch size)",
            value: e.image_width,
        });
    }
    let len = match e.channels.checked_mul(e.patch) {
        Some(n) => n.checked_mul(e.patch),
        None => None,
    };
    let Some(len) = len else {
        return Err(Error::BadDimension {
            what: "patch size",
            value: e.patch,
        });
    };
    tri!(check_len(
        "patch projection in_features",
        len,
        projection.in_features
    ));
    tri!(c.validate_linear(&projection));
    tri!(same(
        "patch projection width",
        e.width,
        projection.out_features
    ));
    tri!(same("class token length", e.width, class_token.n));
    let table_ok = match e.tokens().checked_mul(e.width) {
        Some(n) => n == positions.n,
        None => false,
    };
    tri!(check(table_ok, "ViT position table size"));
    tri!(validate_residual(&position_add));
    l.enc_blocks = c.next;
    let mut i = 0;
    while i < e.layers {
        let (width, heads, mlp, post) = tri!(c.encoder_block());
        tri!(same("encoder block width", e.width, width));
        tri!(same("encoder block heads", e.heads, heads));
        tri!(same("encoder block mlp width", e.mlp, mlp));
        tri!(check(post == e.post_norm, "encoder norm placement"));
        if i == 0 {
            l.enc_block_sections = c.next - l.enc_blocks;
        }
        tri!(check(
            c.next - l.enc_blocks == (i + 1) * l.enc_block_sections,
            "encoder blocks differ in layout",
        ));
        i += 1;
    }
    l.enc_final_ln = c.next;
    let ln = tri!(c.layer_norm());
    tri!(validate_layer_norm(ln));
    tri!(same("encoder final LayerNorm width", e.width, ln));
    l.classifier = c.next;
    let cl = tri!(c.linear());
    tri!(c.validate_linear(&cl));
    tri!(same("classifier input width", e.width, cl.in_features));
    tri!(same("classifier classes", e.classes, cl.out_features));
    tri!(check(
        cl.output_zero_point == h.logits_zero_point,
        "classifier zero point",
    ));
    if c.next < c.count {
        // `Cursor::peek_tag` (the table fits the blob: `parse::table`).
        let tag = (c.u32_at(c.table + c.next * ENTRY_BYTES) & 0xffff) as u16;
        if tag == tag::VOCAB_OFFSETS {
            l.vocab = Some(c.next);
            let n = tri!(c.vocab());
            tri!(same(
                "vocabulary size differs from the model's",
                e.classes,
                n
            ));
        }
    }
    if c.next != c.count {
        return Err(Error::BadBlob(BlobError::Mismatch {
            what: "more sections than the model needs",
            expected: c.next,
            found: c.count,
        }));
    }
    Ok(l)
}
