//! The packed model blob: one versioned, checksummed, little-endian file that holds a whole
//! int8 model, read zero-copy on the device.
//!
//! # Layout (format version [`VERSION`])
//! ```text
//! offset  size          field
//! 0       4             magic b"TATN"
//! 4       2             format version (u16)
//! 6       2             model kind (u16, see ModelKind)
//! 8       4             checksum: FNV-1a 32 of bytes 12 .. total_len
//! 12      4             total_len (u32): bytes covered by the blob
//! 16      4·HEADER_WORDS header words (u32): dimensions, special ids, quantization of the
//!                       input and the logits, and the buffer sizes a runner needs
//! ..      4             section count n
//! ..      12·n          section table: (tag u16 | elem u16 << 16, offset u32, count u32)
//! ..                    section data, each section starting on a 16-byte boundary
//! ```
//! Every section is an array of `i8`, `u16` or `i32` values (`count` elements). Sections are
//! read in a fixed order determined by the model kind; each carries a role tag, so a writer and
//! reader that disagree fail with a specific [`Error::BadBlob`] rather than misreading. Two table
//! entries may point at the same bytes (a tied LM head reuses the token-embedding section).
//!
//! # Optional vocabulary
//!
//! After the model's sections a blob may carry its vocabulary (`tools convert` embeds the
//! checkpoint's `vocab.json`), read zero-copy by [`Blob::vocab`] as a [`Vocab`]:
//!
//! ```text
//! tag 0x80  i32 × (n+1)   byte offsets: entry i is text[offsets[i] .. offsets[i+1]]
//! tag 0x81  i8  × len     UTF-8 text of every entry, concatenated (an empty entry: no text)
//! ```
//!
//! `n` is the decoder's vocabulary size (or a classifier's class count). Versioning: the
//! sections are optional and trailing, so the format version stays 1: a blob without them is
//! byte for byte what earlier writers produced and still loads; a blob with them needs a
//! reader that knows them (an older core-attn refuses it with "more sections than the model
//! needs"). [`Blob::parse`] checks that the offsets start at 0, never decrease, end at the
//! text's length and that every entry is UTF-8.
//!
//! # Llama blobs
//!
//! Model kind 4 ([`ModelKind::Llama`], [`crate::llama`]) is additive: the format version stays
//! 1, blobs of the other kinds are byte for byte what they were (header word 33 stays a
//! reserved zero for them), and a reader without this kind refuses it as an unknown kind.
//! Header: the decoder words (`mlp` = SwiGLU hidden width, `start_token` = BOS, `sinusoidal`
//! 0) plus word 33 = `kv_heads`, which must divide `heads` (checked with the other dimensions
//! by [`crate::llama::LlamaDims::validate`]). Sections, in order:
//!
//! ```text
//! 0x60 i8   token embedding [vocab][D] (the first residual stream; a tied classifier's weights)
//! 0x90 i32  RoPE shape: head_dim, positions (= max_positions), style (0 interleaved, 1 half-split)
//! 0x91 u16  cos table (i16 Q1.14, [positions][head_dim/2])     0x92 u16  sin table
//! per block:
//!   0x70 i32  [2 (Llama block), kv_heads]
//!   RMSNorm: 0x94 i32 γ [D], 0x95 i32 [ε lo, ε hi, input zero point, output zero point]
//!   linear q|k|v (D → D + 2·kv_width)
//!   0x93 i32  RoPE requantization [q multiplier, q shift, k multiplier, k shift]
//!   attention scalars + exp tables (heads = query heads)
//!   linear Wo, residual, RMSNorm, linear W1, linear W3
//!   0x96 i32  SiLU table [256]; 0x97 i32 [up zero point, multiplier, shift, output zero point]
//!   linear W2, residual
//! RMSNorm (final), classifier linear (tied: its weight entry points at the embedding's bytes)
//! ```
//!
//! then the optional vocabulary. Every field is validated by [`Blob::parse`] (the kernels'
//! `validate()`, and the header's dimensions against every section).
//!
//! [`Blob::parse`] checks magic, version, kind, length, checksum, every section's bounds and
//! alignment (with checked arithmetic: no input makes it panic), then builds every kernel
//! parameter struct once and calls its `validate()`. The accessors ([`Blob::encoder_block`],
//! [`Blob::decoder_block`], …) rebuild those borrowed structs from the table on demand (a few
//! dozen table lookups, no copying), so nothing needs to be allocated.
//!
//! The `i32`/`u16` views use `bytemuck::try_cast_slice`, which fails when the blob is not 4-byte
//! aligned in memory: keep it in a `#[repr(align(16))]` static on the device, or in a `Vec<u32>`
//! on the host (the tools do).
//!
//! The host-side writer (`write`, `std` feature) lives at the end of this file, next to the
//! reader.

use crate::activation::Lut;
use crate::attention::Attention;
use crate::block::{CrossAttention, DecoderBlock, EncoderBlock, Mlp, NormPlacement};
use crate::embed::PatchEmbedding;
use crate::linear::Linear;
use crate::llama::{LlamaBlock, LlamaModel};
use crate::norm::LayerNorm;
use crate::quant::{ChannelRequant, Requant};
use crate::residual::ResidualAdd;
use crate::rmsnorm::RmsNorm;
use crate::rope::{Rope, RopeStyle, RopeTable};
use crate::softmax::ExpTable;
use crate::swiglu::SwiGlu;
use crate::{BlobError, Error};

/// The four magic bytes at offset 0.
pub const MAGIC: [u8; 4] = *b"TATN";
/// The format version this reader understands.
pub const VERSION: u16 = 1;
/// Number of `u32` header words after the fixed 16-byte preamble.
pub const HEADER_WORDS: usize = 40;
/// Alignment of every section's data.
pub const SECTION_ALIGN: usize = 16;
/// Byte offset of the first header word.
const PREAMBLE: usize = 16;
/// Byte offset of the section count.
const TABLE_COUNT_OFFSET: usize = PREAMBLE + 4 * HEADER_WORDS;
/// Bytes per section table entry.
const ENTRY_BYTES: usize = 12;
/// Largest section count accepted (bounds the table size).
pub const MAX_SECTIONS: usize = 1 << 16;
/// Header value meaning "no such token id" (e.g. no eos).
pub const NO_TOKEN: u32 = u32::MAX;
/// First scalar of a Llama block's `BLOCK` section (GPT-2 blocks store 0 or 1 there).
const LLAMA_BLOCK_MARKER: i32 = 2;

/// FNV-1a 32-bit hash (the blob checksum).
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ModelKind {
    /// ViT image classifier (encoder + classifier head on the class token).
    VitClassifier = 1,
    /// Decoder-only language model (GPT-2 layout).
    DecoderLm = 2,
    /// ViT encoder + decoder with cross-attention.
    EncoderDecoder = 3,
    /// Llama-family decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU; see
    /// [`crate::llama`] and the module docs' "Llama blobs").
    Llama = 4,
}

impl ModelKind {
    fn from_u16(v: u16) -> Result<Self, Error> {
        match v {
            1 => Ok(ModelKind::VitClassifier),
            2 => Ok(ModelKind::DecoderLm),
            3 => Ok(ModelKind::EncoderDecoder),
            4 => Ok(ModelKind::Llama),
            found => Err(BlobError::UnknownKind { found }.into()),
        }
    }

    /// True when the model has a ViT encoder.
    pub fn has_encoder(self) -> bool {
        matches!(self, ModelKind::VitClassifier | ModelKind::EncoderDecoder)
    }

    /// True when the model has a GPT-2-layout decoder ([`Blob::decoder_block`]; a Llama's
    /// blocks are [`Blob::llama_block`]).
    pub fn has_decoder(self) -> bool {
        matches!(self, ModelKind::DecoderLm | ModelKind::EncoderDecoder)
    }
}

/// Element sizes a runner's buffers need (bytes for `i8` buffers, entries for `scores`).
///
/// [`Blob::parse`] recomputes these from the dimensions and rejects a header that disagrees;
/// firmware compares them with its compiled buffers through [`BufferSizes::fits_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferSizes {
    /// Residual stream `x` (int8).
    pub x: usize,
    /// Block `normed` scratch (int8); also holds the final LayerNorm output.
    pub normed: usize,
    /// Block `wide` scratch (int8); also holds the cross-attention K/V projection.
    pub wide: usize,
    /// Attention scores (`i32` entries).
    pub scores: usize,
    /// One flattened image patch (int8).
    pub patch: usize,
    /// Logits (int8).
    pub logits: usize,
    /// Self-attention KV caches of all decoder layers (int8, keys and values).
    pub kv: usize,
    /// Cross-attention KV caches of all decoder layers (int8, keys and values).
    pub cross_kv: usize,
}

impl BufferSizes {
    /// True when every buffer of `self` is at most the one in `available`.
    pub fn fits_in(&self, available: &BufferSizes) -> bool {
        self.x <= available.x
            && self.normed <= available.normed
            && self.wide <= available.wide
            && self.scores <= available.scores
            && self.patch <= available.patch
            && self.logits <= available.logits
            && self.kv <= available.kv
            && self.cross_kv <= available.cross_kv
    }

    /// Total RAM in bytes (scores are 4 bytes each).
    pub fn total_bytes(&self) -> usize {
        self.x
            .saturating_add(self.normed)
            .saturating_add(self.wide)
            .saturating_add(self.scores.saturating_mul(4))
            .saturating_add(self.patch)
            .saturating_add(self.logits)
            .saturating_add(self.kv)
            .saturating_add(self.cross_kv)
    }
}

/// Encoder (ViT) dimensions; all zero for a decoder-only model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EncoderDims {
    /// Layers.
    pub layers: usize,
    /// Model width D.
    pub width: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP hidden width.
    pub mlp: usize,
    /// Image channels C.
    pub channels: usize,
    /// Image height H.
    pub height: usize,
    /// Image width W.
    pub image_width: usize,
    /// Patch side P.
    pub patch: usize,
    /// Classes (ViT classifier), 0 otherwise.
    pub classes: usize,
    /// Pre- or post-norm layers (0 = pre, 1 = post).
    pub post_norm: bool,
}

impl EncoderDims {
    /// Tokens per image: patches + class token (0 when there is no encoder).
    pub fn tokens(&self) -> usize {
        if self.patch == 0 {
            return 0;
        }
        (self.height / self.patch)
            .saturating_mul(self.image_width / self.patch)
            .saturating_add(1)
    }
}

/// Decoder dimensions and special token ids; all zero for a classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecoderDims {
    /// Layers.
    pub layers: usize,
    /// Model width D.
    pub width: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP hidden width.
    pub mlp: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Longest sequence (rows of the position table, capacity of each KV cache).
    pub max_positions: usize,
    /// 0 = learned, 1 = sinusoidal position table.
    pub sinusoidal: bool,
    /// LM head tied to the token embedding (stored once).
    pub tied_head: bool,
    /// Decoder start token (encoder–decoder), [`NO_TOKEN`] if none.
    pub start_token: u32,
    /// End-of-sequence token, [`NO_TOKEN`] if none.
    pub eos_token: u32,
    /// Padding token used after eos, [`NO_TOKEN`] if none.
    pub pad_token: u32,
    /// Key/value heads of a Llama (header word 33); 0 for the other kinds.
    pub kv_heads: usize,
}

impl DecoderDims {
    /// A Llama's dimensions (`mlp` is the SwiGLU hidden width).
    pub fn llama(&self) -> crate::llama::LlamaDims {
        crate::llama::LlamaDims {
            layers: self.layers,
            width: self.width,
            heads: self.heads,
            kv_heads: self.kv_heads,
            hidden: self.mlp,
            vocab: self.vocab,
            max_positions: self.max_positions,
        }
    }
}

/// Everything in the header words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Model kind.
    pub kind: ModelKind,
    /// Encoder dimensions.
    pub encoder: EncoderDims,
    /// Decoder dimensions.
    pub decoder: DecoderDims,
    /// Input image quantization: `f32` bits of the scale (0 without an encoder).
    pub input_scale_bits: u32,
    /// Input image zero point.
    pub input_zero_point: i32,
    /// Logits quantization: `f32` bits of the scale.
    pub logits_scale_bits: u32,
    /// Logits zero point.
    pub logits_zero_point: i32,
    /// Buffer sizes a runner needs.
    pub buffers: BufferSizes,
}

impl Header {
    /// Buffer sizes implied by the dimensions (what the header must say).
    ///
    /// The encoder runs all `T` tokens at once; the decoder runs one token at a time, so its
    /// activation buffers are one row wide, its `wide` buffer must also hold the cross K/V
    /// projection of the encoder output (`T · 2·D`), and its KV caches hold `max_positions`
    /// rows per layer.
    pub fn required_buffers(&self) -> Result<BufferSizes, Error> {
        self.required_buffers_as(self.kind)
    }

    /// [`Header::required_buffers`] for `kind`, which is `self.kind`: [`Blob::parse_as`] passes
    /// it as a constant, so that the other kinds' arms are not linked into its firmware.
    #[inline(always)]
    fn required_buffers_as(&self, kind: ModelKind) -> Result<BufferSizes, Error> {
        let e = &self.encoder;
        let d = &self.decoder;
        let ov = crate::error::bad_blob("dimensions overflow");
        let m = |a: usize, b: usize| a.checked_mul(b).ok_or(ov);
        let mut s = BufferSizes::default();
        if kind.has_encoder() {
            let t = e.tokens();
            s.x = m(t, e.width)?;
            s.normed = s.x;
            s.wide = m(t, m(3, e.width)?.max(e.mlp))?;
            s.scores = t;
            s.patch = m(e.channels, m(e.patch, e.patch)?)?;
            s.logits = e.classes;
        }
        if kind == ModelKind::Llama {
            return d.llama().buffers().map_err(|_| ov);
        }
        if kind.has_decoder() {
            s.x = s.x.max(d.width);
            s.normed = s.normed.max(d.width);
            s.wide = s.wide.max(m(3, d.width)?.max(d.mlp));
            s.scores = s.scores.max(d.max_positions);
            s.logits = s.logits.max(d.vocab);
            s.kv = m(m(2, d.layers)?, m(d.max_positions, d.width)?)?;
            if kind == ModelKind::EncoderDecoder {
                let t = e.tokens();
                s.wide = s.wide.max(m(t, m(2, d.width)?)?);
                s.scores = s.scores.max(t);
                s.cross_kv = m(m(2, d.layers)?, m(t, d.width)?)?;
            }
        }
        Ok(s)
    }

    #[cfg(feature = "std")]
    fn to_words(self) -> [u32; HEADER_WORDS] {
        let e = &self.encoder;
        let d = &self.decoder;
        let b = &self.buffers;
        let u = |v: usize| v as u32;
        let mut w = [0u32; HEADER_WORDS];
        let vals = [
            u(e.layers),
            u(e.width),
            u(e.heads),
            u(e.mlp),
            u(e.channels),
            u(e.height),
            u(e.image_width),
            u(e.patch),
            u(e.classes),
            e.post_norm as u32,
            u(d.layers),
            u(d.width),
            u(d.heads),
            u(d.mlp),
            u(d.vocab),
            u(d.max_positions),
            d.sinusoidal as u32,
            d.tied_head as u32,
            d.start_token,
            d.eos_token,
            d.pad_token,
            self.input_scale_bits,
            self.input_zero_point as u32,
            self.logits_scale_bits,
            self.logits_zero_point as u32,
            u(b.x),
            u(b.normed),
            u(b.wide),
            u(b.scores),
            u(b.patch),
            u(b.logits),
            u(b.kv),
            u(b.cross_kv),
            u(d.kv_heads),
        ];
        w[..vals.len()].copy_from_slice(&vals);
        w
    }

    fn from_words(kind: ModelKind, w: &[u32; HEADER_WORDS]) -> Result<Self, Error> {
        let u = |i: usize| w[i] as usize;
        let flag = |i: usize| match w[i] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(crate::error::bad_blob("header flag not 0 or 1")),
        };
        // Word 33 is a Llama's kv_heads; reserved (zero) for the other kinds.
        let reserved = if kind == ModelKind::Llama { 34 } else { 33 };
        if w[reserved..].iter().any(|&x| x != 0) {
            return Err(crate::error::bad_blob("reserved header words not zero"));
        }
        Ok(Header {
            kind,
            encoder: EncoderDims {
                layers: u(0),
                width: u(1),
                heads: u(2),
                mlp: u(3),
                channels: u(4),
                height: u(5),
                image_width: u(6),
                patch: u(7),
                classes: u(8),
                post_norm: flag(9)?,
            },
            decoder: DecoderDims {
                layers: u(10),
                width: u(11),
                heads: u(12),
                mlp: u(13),
                vocab: u(14),
                max_positions: u(15),
                sinusoidal: flag(16)?,
                tied_head: flag(17)?,
                start_token: w[18],
                eos_token: w[19],
                pad_token: w[20],
                kv_heads: u(33),
            },
            input_scale_bits: w[21],
            input_zero_point: w[22] as i32,
            logits_scale_bits: w[23],
            logits_zero_point: w[24] as i32,
            buffers: BufferSizes {
                x: u(25),
                normed: u(26),
                wide: u(27),
                scores: u(28),
                patch: u(29),
                logits: u(30),
                kv: u(31),
                cross_kv: u(32),
            },
        })
    }

    /// Check the dimensions are usable (non-zero where needed, heads divide widths, ids in
    /// range, zero points int8).
    ///
    /// `kind` is `self.kind` ([`Blob::parse_as`] passes it as a constant where it can: the
    /// other kinds' checks are not linked).
    fn check(&self, kind: ModelKind) -> Result<(), Error> {
        let zp = |z: i32| (-128..=127).contains(&z);
        if !zp(self.input_zero_point) || !zp(self.logits_zero_point) {
            return Err(crate::error::bad_blob("header zero point outside int8"));
        }
        if kind.has_encoder() {
            let e = &self.encoder;
            if e.layers == 0 || e.width == 0 || e.heads == 0 || e.mlp == 0 {
                return Err(crate::error::bad_blob("encoder dimension is zero"));
            }
            if e.width % e.heads != 0 {
                return Err(crate::error::bad_blob(
                    "encoder heads do not divide the width",
                ));
            }
            if e.channels == 0 || e.patch == 0 || e.height == 0 || e.image_width == 0 {
                return Err(crate::error::bad_blob("image geometry is zero"));
            }
            if e.height % e.patch != 0 || e.image_width % e.patch != 0 {
                return Err(crate::error::bad_blob(
                    "patch size does not divide the image",
                ));
            }
            if (kind == ModelKind::VitClassifier) != (e.classes > 0) {
                return Err(crate::error::bad_blob(
                    "class count does not match the model kind",
                ));
            }
        }
        if kind == ModelKind::Llama {
            let d = &self.decoder;
            d.llama().validate().map_err(|e| match e {
                Error::BadDimension { what, .. } => crate::error::bad_blob(what),
                other => other,
            })?;
            if d.sinusoidal || d.start_token != NO_TOKEN && d.start_token as usize >= d.vocab {
                return Err(crate::error::bad_blob(
                    "llama header: sinusoidal flag set or start token outside the vocabulary",
                ));
            }
            for t in [d.eos_token, d.pad_token] {
                if t != NO_TOKEN && t as usize >= d.vocab {
                    return Err(crate::error::bad_blob(
                        "special token id outside the vocabulary",
                    ));
                }
            }
            let e = &self.encoder;
            if *e != EncoderDims::default() || self.input_scale_bits != 0 {
                return Err(crate::error::bad_blob(
                    "llama header with encoder dimensions",
                ));
            }
        }
        if kind.has_decoder() {
            let d = &self.decoder;
            if d.layers == 0 || d.width == 0 || d.heads == 0 || d.mlp == 0 {
                return Err(crate::error::bad_blob("decoder dimension is zero"));
            }
            if d.width % d.heads != 0 {
                return Err(crate::error::bad_blob(
                    "decoder heads do not divide the width",
                ));
            }
            if d.vocab == 0 || d.max_positions == 0 {
                return Err(crate::error::bad_blob(
                    "decoder vocabulary or positions is zero",
                ));
            }
            for t in [d.start_token, d.eos_token, d.pad_token] {
                if t != NO_TOKEN && t as usize >= d.vocab {
                    return Err(crate::error::bad_blob(
                        "special token id outside the vocabulary",
                    ));
                }
            }
            if kind == ModelKind::EncoderDecoder && d.start_token == NO_TOKEN {
                return Err(crate::error::bad_blob(
                    "encoder-decoder without a start token",
                ));
            }
        }
        Ok(())
    }
}

/// Element type of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    I8 = 1,
    U16 = 2,
    I32 = 3,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::I8 => 1,
            Elem::U16 => 2,
            Elem::I32 => 4,
        }
    }
}

/// Role tags of the sections.
mod tag {
    pub const LN_GAMMA: u16 = 0x10;
    pub const LN_BETA: u16 = 0x11;
    pub const LN_SCALARS: u16 = 0x12;
    pub const LIN_SHAPE: u16 = 0x20;
    pub const LIN_W: u16 = 0x21;
    pub const LIN_B: u16 = 0x22;
    pub const LIN_MUL: u16 = 0x23;
    pub const LIN_SHIFT: u16 = 0x24;
    pub const ATT_SCALARS: u16 = 0x30;
    pub const EXP_HI: u16 = 0x31;
    pub const EXP_LO: u16 = 0x32;
    pub const RESIDUAL: u16 = 0x40;
    pub const LUT: u16 = 0x50;
    pub const TOKEN_EMBED: u16 = 0x60;
    pub const POSITIONS: u16 = 0x61;
    pub const CLASS_TOKEN: u16 = 0x62;
    pub const BLOCK: u16 = 0x70;
    pub const VOCAB_OFFSETS: u16 = 0x80;
    pub const VOCAB_BYTES: u16 = 0x81;
    pub const ROPE_SHAPE: u16 = 0x90;
    pub const ROPE_COS: u16 = 0x91;
    pub const ROPE_SIN: u16 = 0x92;
    pub const ROPE_REQUANT: u16 = 0x93;
    pub const RMS_GAMMA: u16 = 0x94;
    pub const RMS_SCALARS: u16 = 0x95;
    pub const SILU: u16 = 0x96;
    pub const SWIGLU_SCALARS: u16 = 0x97;
}

fn word(bytes: &[u8], offset: usize) -> Result<u32, Error> {
    let end = offset
        .checked_add(4)
        .ok_or(crate::error::bad_blob("offset overflow"))?;
    let b = bytes
        .get(offset..end)
        .ok_or(crate::error::bad_blob("blob truncated"))?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads sections in order from the table.
struct Cursor<'a> {
    bytes: &'a [u8],
    table: usize,
    count: usize,
    next: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, want_tag: u16, elem: Elem) -> Result<&'a [u8], Error> {
        if self.next >= self.count {
            return Err(crate::error::bad_blob(
                "fewer sections than the model needs",
            ));
        }
        let e = self.table + self.next * ENTRY_BYTES;
        self.next += 1;
        let te = word(self.bytes, e)?;
        let offset = word(self.bytes, e + 4)? as usize;
        let count = word(self.bytes, e + 8)? as usize;
        let index = self.next - 1;
        if (te & 0xffff) as u16 != want_tag {
            return Err(BlobError::SectionTag {
                index,
                expected: want_tag,
                found: (te & 0xffff) as u16,
            }
            .into());
        }
        if (te >> 16) as u16 != elem as u16 {
            return Err(BlobError::SectionElem {
                index,
                expected: elem as u16,
                found: (te >> 16) as u16,
            }
            .into());
        }
        if offset % SECTION_ALIGN != 0 {
            return Err(BlobError::SectionAlignment { index, offset }.into());
        }
        let len = count
            .checked_mul(elem.size())
            .ok_or(crate::error::bad_blob("section size overflow"))?;
        let end = offset
            .checked_add(len)
            .ok_or(crate::error::bad_blob("section size overflow"))?;
        self.bytes.get(offset..end).ok_or(
            BlobError::SectionBounds {
                index,
                end,
                len: self.bytes.len(),
            }
            .into(),
        )
    }

    /// The tag of the next section (without consuming it).
    fn peek_tag(&self) -> Result<u16, Error> {
        Ok((word(self.bytes, self.table + self.next * ENTRY_BYTES)? & 0xffff) as u16)
    }

    fn i8s(&mut self, tag: u16) -> Result<&'a [i8], Error> {
        let b = self.take(tag, Elem::I8)?;
        bytemuck::try_cast_slice(b).map_err(|_| crate::error::bad_blob("int8 section cast failed"))
    }

    fn i32s(&mut self, tag: u16) -> Result<&'a [i32], Error> {
        let b = self.take(tag, Elem::I32)?;
        bytemuck::try_cast_slice(b)
            .map_err(|_| crate::error::bad_blob("blob not 4-byte aligned in memory"))
    }

    fn u16s(&mut self, tag: u16) -> Result<&'a [u16], Error> {
        let b = self.take(tag, Elem::U16)?;
        bytemuck::try_cast_slice(b)
            .map_err(|_| crate::error::bad_blob("blob not 2-byte aligned in memory"))
    }

    fn scalars<const N: usize>(&mut self, tag: u16) -> Result<[i32; N], Error> {
        let s = self.i32s(tag)?;
        s.try_into()
            .map_err(|_| crate::error::bad_blob("scalar section has the wrong length"))
    }

    fn usize_of(v: i32) -> Result<usize, Error> {
        usize::try_from(v).map_err(|_| crate::error::bad_blob("negative dimension"))
    }

    fn shift(v: i32) -> Result<i8, Error> {
        i8::try_from(v).map_err(|_| crate::error::bad_blob("shift outside int8"))
    }

    fn requant(m: i32, s: i32) -> Result<Requant, Error> {
        Ok(Requant {
            multiplier: m,
            shift: Self::shift(s)?,
        })
    }

    /// The one place a [`LayerNorm`] is read (see [`write_layer_norm`] for the writer).
    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    fn layer_norm(&mut self) -> Result<LayerNorm<'a>, Error> {
        let gamma = self.i32s(tag::LN_GAMMA)?;
        let beta = self.i32s(tag::LN_BETA)?;
        let [eps_lo, eps_hi, output_zero_point] = self.scalars::<3>(tag::LN_SCALARS)?;
        if beta.len() != gamma.len() {
            return Err(crate::error::bad_blob(
                "LayerNorm gamma and beta lengths differ",
            ));
        }
        if !(-128..=127).contains(&output_zero_point) {
            return Err(crate::error::bad_blob("LayerNorm zero point outside int8"));
        }
        Ok(LayerNorm {
            width: gamma.len(),
            gamma,
            beta,
            epsilon: (eps_lo as u32 as u64) | ((eps_hi as u32 as u64) << 32),
            output_zero_point,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    fn linear(&mut self) -> Result<Linear<'a>, Error> {
        let [in_f, out_f, zp] = self.scalars::<3>(tag::LIN_SHAPE)?;
        Ok(Linear {
            in_features: Self::usize_of(in_f)?,
            out_features: Self::usize_of(out_f)?,
            weights: self.i8s(tag::LIN_W)?,
            bias: self.i32s(tag::LIN_B)?,
            requant: ChannelRequant {
                multipliers: self.i32s(tag::LIN_MUL)?,
                shifts: self.i8s(tag::LIN_SHIFT)?,
            },
            output_zero_point: zp,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    fn attention(&mut self) -> Result<Attention<'a>, Error> {
        let [heads, head_dim, sm, ss, om, os, zp] = self.scalars::<7>(tag::ATT_SCALARS)?;
        let (heads, head_dim) = (Self::usize_of(heads)?, Self::usize_of(head_dim)?);
        // Bound the width here: `Attention::width()` multiplies without a check.
        if heads
            .checked_mul(head_dim)
            .is_none_or(|w| w == 0 || w > crate::MAX_WIDTH)
        {
            return Err(crate::error::bad_blob("attention width out of range"));
        }
        let hi: &[u16; 256] = self
            .u16s(tag::EXP_HI)?
            .try_into()
            .map_err(|_| crate::error::bad_blob("exp table is not 256 entries"))?;
        let lo: &[u16; 256] = self
            .u16s(tag::EXP_LO)?
            .try_into()
            .map_err(|_| crate::error::bad_blob("exp table is not 256 entries"))?;
        Ok(Attention {
            heads,
            head_dim,
            score_to_index: Self::requant(sm, ss)?,
            exp: ExpTable::new(hi, lo)?,
            output: Self::requant(om, os)?,
            output_zero_point: zp,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    fn residual(&mut self) -> Result<ResidualAdd, Error> {
        let [am, ash, az, bm, bsh, bz, oz] = self.scalars::<7>(tag::RESIDUAL)?;
        Ok(ResidualAdd {
            a_scale: Self::requant(am, ash)?,
            a_zero_point: az,
            b_scale: Self::requant(bm, bsh)?,
            b_zero_point: bz,
            output_zero_point: oz,
        })
    }

    fn lut(&mut self) -> Result<Lut<'a>, Error> {
        let t: &[i8; 256] = self
            .i8s(tag::LUT)?
            .try_into()
            .map_err(|_| crate::error::bad_blob("lookup table is not 256 entries"))?;
        Ok(Lut::new(t))
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    fn mlp(&mut self) -> Result<Mlp<'a>, Error> {
        Ok(Mlp {
            fc1: self.linear()?,
            activation: self.lut()?,
            fc2: self.linear()?,
        })
    }

    /// The one place an [`RmsNorm`] is read (the writer is `Writer::rms_norm`).
    fn rms_norm(&mut self) -> Result<RmsNorm<'a>, Error> {
        let gamma = self.i32s(tag::RMS_GAMMA)?;
        let [eps_lo, eps_hi, input_zero_point, output_zero_point] =
            self.scalars::<4>(tag::RMS_SCALARS)?;
        Ok(RmsNorm {
            width: gamma.len(),
            gamma,
            epsilon: (eps_lo as u32 as u64) | ((eps_hi as u32 as u64) << 32),
            input_zero_point,
            output_zero_point,
        })
    }

    /// The model's RoPE table and pairing convention.
    fn rope_table(&mut self) -> Result<(RopeTable<'a>, RopeStyle), Error> {
        let [head_dim, positions, style] = self.scalars::<3>(tag::ROPE_SHAPE)?;
        let style = match style {
            0 => RopeStyle::Interleaved,
            1 => RopeStyle::HalfSplit,
            _ => return Err(crate::error::bad_blob("unknown rope pairing convention")),
        };
        let as_i16 = |v: &'a [u16]| -> Result<&'a [i16], Error> {
            bytemuck::try_cast_slice(v)
                .map_err(|_| crate::error::bad_blob("rope table cast failed"))
        };
        let cos = as_i16(self.u16s(tag::ROPE_COS)?)?;
        let sin = as_i16(self.u16s(tag::ROPE_SIN)?)?;
        Ok((
            RopeTable {
                head_dim: Self::usize_of(head_dim)?,
                positions: Self::usize_of(positions)?,
                cos,
                sin,
            },
            style,
        ))
    }

    fn llama_block(
        &mut self,
        table: RopeTable<'a>,
        style: RopeStyle,
    ) -> Result<LlamaBlock<'a>, Error> {
        let [marker, kv_heads] = self.scalars::<2>(tag::BLOCK)?;
        if marker != LLAMA_BLOCK_MARKER {
            return Err(crate::error::bad_blob("not a llama block"));
        }
        let rms1 = self.rms_norm()?;
        let qkv = self.linear()?;
        let [qm, qs, km, ks] = self.scalars::<4>(tag::ROPE_REQUANT)?;
        let rope = |m, s| -> Result<Rope<'a>, Error> {
            Ok(Rope {
                table,
                style,
                requant: Self::requant(m, s)?,
            })
        };
        let (rope_q, rope_k) = (rope(qm, qs)?, rope(km, ks)?);
        let attention = self.attention()?;
        let proj = self.linear()?;
        let add1 = self.residual()?;
        let rms2 = self.rms_norm()?;
        let w1 = self.linear()?;
        let w3 = self.linear()?;
        let silu: &[i32; 256] = self
            .i32s(tag::SILU)?
            .try_into()
            .map_err(|_| crate::error::bad_blob("silu table is not 256 entries"))?;
        let [up_zero_point, sm, ss, output_zero_point] = self.scalars::<4>(tag::SWIGLU_SCALARS)?;
        Ok(LlamaBlock {
            rms1,
            qkv,
            rope_q,
            rope_k,
            kv_heads: Self::usize_of(kv_heads)?,
            attention,
            proj,
            add1,
            rms2,
            w1,
            w3,
            swiglu: SwiGlu {
                silu,
                up_zero_point,
                requant: Self::requant(sm, ss)?,
                output_zero_point,
            },
            w2: self.linear()?,
            add2: self.residual()?,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    fn encoder_block(&mut self) -> Result<EncoderBlock<'a>, Error> {
        let [placement, _] = self.scalars::<2>(tag::BLOCK)?;
        let placement = match placement {
            0 => NormPlacement::Pre,
            1 => NormPlacement::Post,
            _ => return Err(crate::error::bad_blob("unknown norm placement")),
        };
        Ok(EncoderBlock {
            placement,
            ln1: self.layer_norm()?,
            qkv: self.linear()?,
            attention: self.attention()?,
            proj: self.linear()?,
            add1: self.residual()?,
            ln2: self.layer_norm()?,
            mlp: self.mlp()?,
            add2: self.residual()?,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    fn decoder_block(&mut self) -> Result<DecoderBlock<'a>, Error> {
        let [_, has_cross] = self.scalars::<2>(tag::BLOCK)?;
        let ln1 = self.layer_norm()?;
        let qkv = self.linear()?;
        let attention = self.attention()?;
        let proj = self.linear()?;
        let add1 = self.residual()?;
        let cross = match has_cross {
            0 => None,
            1 => Some(CrossAttention {
                ln: self.layer_norm()?,
                q: self.linear()?,
                kv: self.linear()?,
                attention: self.attention()?,
                proj: self.linear()?,
                add: self.residual()?,
            }),
            _ => return Err(crate::error::bad_blob("cross-attention flag not 0 or 1")),
        };
        Ok(DecoderBlock {
            ln1,
            qkv,
            attention,
            proj,
            add1,
            cross,
            ln2: self.layer_norm()?,
            mlp: self.mlp()?,
            add2: self.residual()?,
        })
    }
}

/// The ViT front end: patch embedding, class token, learned positions.
#[derive(Debug, Clone, Copy)]
pub struct VitEmbedding<'a> {
    /// Patch projection and image geometry.
    pub patch: PatchEmbedding<'a>,
    /// Class token, already in the patch embedding's quantization (`D` values).
    pub class_token: &'a [i8],
    /// Learned positions `[tokens][D]`.
    pub positions: &'a [i8],
    /// `embedding + position`.
    pub position_add: ResidualAdd,
}

/// The decoder front end: token embedding and positions.
#[derive(Debug, Clone, Copy)]
pub struct TokenEmbedding<'a> {
    /// `[vocab][D]` int8 table (also the tied LM head's weights).
    pub table: &'a [i8],
    /// `[max_positions][D]` position table.
    pub positions: &'a [i8],
    /// `embedding + position`.
    pub position_add: ResidualAdd,
}

/// Section indices where each part of the model starts.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    vit_embed: usize,
    enc_blocks: usize,
    enc_block_sections: usize,
    enc_final_ln: usize,
    classifier: usize,
    dec_embed: usize,
    dec_blocks: usize,
    dec_block_sections: usize,
    dec_final_ln: usize,
    head: usize,
    /// Section index of a Llama's RoPE table.
    rope: usize,
    /// Section index of the vocabulary's offsets, if the blob carries one.
    vocab: Option<usize>,
}

/// A parsed, validated model blob borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Blob<'a> {
    bytes: &'a [u8],
    header: Header,
    table: usize,
    count: usize,
    layout: Layout,
}

impl<'a> Blob<'a> {
    /// Validate `bytes` and every parameter struct it describes (see the module docs).
    ///
    /// Bytes past the header's `total_len` are ignored (flash padding).
    ///
    /// # Errors
    ///
    /// [`Error::BadBlob`] naming the first check that failed (magic, version, kind, length,
    /// checksum, header, a section's tag, type, alignment or bounds, the vocabulary); the
    /// errors of the kernel structs' `validate()`.
    pub fn parse(bytes: &'a [u8]) -> Result<Blob<'a>, Error> {
        Self::parse_as::<0>(bytes)
    }

    /// [`Blob::parse`] for a blob that must be of kind `K` (`ModelKind as u16`; 0: any kind,
    /// which is `parse`). A blob of another kind is rejected as soon as its kind is read; with
    /// the kind known to the compiler, the checks of the other kinds' parts are not linked
    /// (the device API's `load`: a ViT-only firmware carries no decoder validation).
    pub(crate) fn parse_as<const K: u16>(bytes: &'a [u8]) -> Result<Blob<'a>, Error> {
        if cfg!(target_endian = "big") {
            return Err(crate::error::bad_blob(
                "big-endian targets are not supported",
            ));
        }
        if bytes.len() < 4 || bytes[..4] != MAGIC {
            return Err(BlobError::BadMagic.into());
        }
        if bytes.len() < TABLE_COUNT_OFFSET + 4 {
            return Err(BlobError::Truncated {
                what: "blob truncated inside the header",
                needed: TABLE_COUNT_OFFSET + 4,
                available: bytes.len(),
            }
            .into());
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(BlobError::Version {
                supported: VERSION,
                found: version,
            }
            .into());
        }
        let kind = ModelKind::from_u16(u16::from_le_bytes([bytes[6], bytes[7]]))?;
        if K != 0 && kind as u16 != K {
            return Err(crate::error::bad_blob(
                "model kind differs from the one asked for",
            ));
        }
        let kind = const_kind::<K>(kind);
        let checksum = word(bytes, 8)?;
        let total = word(bytes, 12)? as usize;
        if total < TABLE_COUNT_OFFSET + 4 {
            return Err(BlobError::Mismatch {
                what: "total length smaller than the header",
                expected: TABLE_COUNT_OFFSET + 4,
                found: total,
            }
            .into());
        }
        if total > bytes.len() {
            return Err(BlobError::Truncated {
                what: "blob shorter than its header says (truncated)",
                needed: total,
                available: bytes.len(),
            }
            .into());
        }
        let bytes = &bytes[..total];
        let found = fnv1a32(&bytes[12..]);
        if found != checksum {
            return Err(BlobError::Checksum {
                expected: checksum,
                found,
            }
            .into());
        }
        let mut words = [0u32; HEADER_WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = word(bytes, PREAMBLE + 4 * i)?;
        }
        let header = Header::from_words(kind, &words)?;
        header.check(kind)?;
        let (r, b) = (header.required_buffers_as(kind)?, header.buffers);
        let pairs = [
            (r.x, b.x),
            (r.normed, b.normed),
            (r.wide, b.wide),
            (r.scores, b.scores),
            (r.patch, b.patch),
            (r.logits, b.logits),
            (r.kv, b.kv),
            (r.cross_kv, b.cross_kv),
        ];
        if let Some(&(expected, found)) = pairs.iter().find(|(e, f)| e != f) {
            return Err(BlobError::Mismatch {
                what: "buffer sizes disagree with the dimensions",
                expected,
                found,
            }
            .into());
        }
        let count = word(bytes, TABLE_COUNT_OFFSET)? as usize;
        if count > MAX_SECTIONS {
            return Err(BlobError::Mismatch {
                what: "too many sections",
                expected: MAX_SECTIONS,
                found: count,
            }
            .into());
        }
        let table = TABLE_COUNT_OFFSET + 4;
        if table + count * ENTRY_BYTES > bytes.len() {
            return Err(BlobError::Truncated {
                what: "section table extends past the end of the blob",
                needed: table + count * ENTRY_BYTES,
                available: bytes.len(),
            }
            .into());
        }
        let mut blob = Blob {
            bytes,
            header,
            table,
            count,
            layout: Layout::default(),
        };
        blob.layout = blob.walk::<K>()?;
        Ok(blob)
    }

    fn cursor(&self, at: usize) -> Cursor<'a> {
        Cursor {
            bytes: self.bytes,
            table: self.table,
            count: self.count,
            next: at,
        }
    }

    /// Walk every section once, validating each part, and record where the parts start.
    fn walk<const K: u16>(&self) -> Result<Layout, Error> {
        let h = &self.header;
        let kind = const_kind::<K>(h.kind);
        let mut l = Layout::default();
        let mut c = self.cursor(0);
        if kind.has_encoder() {
            let e = &h.encoder;
            l.vit_embed = c.next;
            let emb = read_vit_embedding(&mut c, e)?;
            emb.patch.validate()?;
            same("patch projection width", e.width, emb.patch.dim())?;
            same("class token length", e.width, emb.class_token.len())?;
            check(
                Some(emb.positions.len()) == e.tokens().checked_mul(e.width),
                "ViT position table size",
            )?;
            emb.position_add.validate()?;
            l.enc_blocks = c.next;
            for i in 0..e.layers {
                let b = c.encoder_block()?;
                b.validate()?;
                same("encoder block width", e.width, b.width())?;
                same("encoder block heads", e.heads, b.attention.heads)?;
                same("encoder block mlp width", e.mlp, b.mlp.fc1.out_features)?;
                check(
                    (b.placement == NormPlacement::Post) == e.post_norm,
                    "encoder norm placement",
                )?;
                if i == 0 {
                    l.enc_block_sections = c.next - l.enc_blocks;
                }
                check(
                    c.next - l.enc_blocks == (i + 1) * l.enc_block_sections,
                    "encoder blocks differ in layout",
                )?;
            }
            l.enc_final_ln = c.next;
            let ln = c.layer_norm()?;
            ln.validate()?;
            same("encoder final LayerNorm width", e.width, ln.width)?;
            if kind == ModelKind::VitClassifier {
                l.classifier = c.next;
                let cl = c.linear()?;
                cl.validate()?;
                same("classifier input width", e.width, cl.in_features)?;
                same("classifier classes", e.classes, cl.out_features)?;
                check(
                    cl.output_zero_point == h.logits_zero_point,
                    "classifier zero point",
                )?;
            }
        }
        if kind.has_decoder() {
            let d = &h.decoder;
            l.dec_embed = c.next;
            let emb = read_token_embedding(&mut c)?;
            check(
                Some(emb.table.len()) == d.vocab.checked_mul(d.width),
                "token embedding size",
            )?;
            check(
                Some(emb.positions.len()) == d.max_positions.checked_mul(d.width),
                "decoder position table size",
            )?;
            emb.position_add.validate()?;
            l.dec_blocks = c.next;
            for i in 0..d.layers {
                let b = c.decoder_block()?;
                b.validate()?;
                same("decoder block width", d.width, b.width())?;
                same("decoder block heads", d.heads, b.attention.heads)?;
                same("decoder block mlp width", d.mlp, b.mlp.fc1.out_features)?;
                match &b.cross {
                    Some(x) => {
                        check(
                            kind == ModelKind::EncoderDecoder,
                            "cross-attention in a decoder-only model",
                        )?;
                        check(
                            x.kv.in_features == h.encoder.width,
                            "cross-attention input width",
                        )?;
                    }
                    None => check(
                        kind == ModelKind::DecoderLm,
                        "encoder-decoder block without cross-attention",
                    )?,
                }
                if i == 0 {
                    l.dec_block_sections = c.next - l.dec_blocks;
                }
                check(
                    c.next - l.dec_blocks == (i + 1) * l.dec_block_sections,
                    "decoder blocks differ in layout",
                )?;
            }
            l.dec_final_ln = c.next;
            let ln = c.layer_norm()?;
            ln.validate()?;
            same("decoder final LayerNorm width", d.width, ln.width)?;
            self.walk_lm_head(&mut c, &mut l)?;
        }
        if kind == ModelKind::Llama {
            self.walk_llama(&mut c, &mut l)?;
        }
        if c.next < self.count && c.peek_tag()? == tag::VOCAB_OFFSETS {
            l.vocab = Some(c.next);
            let v = read_vocab(&mut c)?;
            let expected = if kind.has_decoder() || kind == ModelKind::Llama {
                h.decoder.vocab
            } else {
                h.encoder.classes
            };
            same(
                "vocabulary size differs from the model's",
                expected,
                v.len(),
            )?;
        }
        if c.next != self.count {
            return Err(BlobError::Mismatch {
                what: "more sections than the model needs",
                expected: c.next,
                found: self.count,
            }
            .into());
        }
        Ok(l)
    }

    /// The Llama part of [`Blob::walk`]: embedding, RoPE table, blocks, final RMSNorm,
    /// classifier, each validated against the header's dimensions.
    fn walk_llama(&self, c: &mut Cursor<'a>, l: &mut Layout) -> Result<(), Error> {
        let h = &self.header;
        let d = h.decoder.llama();
        l.dec_embed = c.next;
        let table = c.i8s(tag::TOKEN_EMBED)?;
        check(
            Some(table.len()) == d.vocab.checked_mul(d.width),
            "token embedding size",
        )?;
        l.rope = c.next;
        let (rope, style) = c.rope_table()?;
        same("rope table head width", d.head_dim(), rope.head_dim)?;
        same("rope table positions", d.max_positions, rope.positions)?;
        l.dec_blocks = c.next;
        for i in 0..d.layers {
            let b = c.llama_block(rope, style)?;
            b.validate()?;
            same("llama block width", d.width, b.width())?;
            same("llama block heads", d.heads, b.attention.heads)?;
            same("llama block kv heads", d.kv_heads, b.kv_heads)?;
            same("llama block hidden width", d.hidden, b.hidden())?;
            if i == 0 {
                l.dec_block_sections = c.next - l.dec_blocks;
            }
            check(
                c.next - l.dec_blocks == (i + 1) * l.dec_block_sections,
                "llama blocks differ in layout",
            )?;
        }
        l.dec_final_ln = c.next;
        let rms = c.rms_norm()?;
        rms.validate()?;
        same("llama final RMSNorm width", d.width, rms.width)?;
        self.walk_lm_head(c, l)
    }

    /// The LM head of a decoder (GPT-2-style or Llama): the last part `walk` validates.
    fn walk_lm_head(&self, c: &mut Cursor<'a>, l: &mut Layout) -> Result<(), Error> {
        let (d, h) = (&self.header.decoder, &self.header);
        l.head = c.next;
        let head = c.linear()?;
        head.validate()?;
        same("LM head input width", d.width, head.in_features)?;
        same("LM head vocabulary", d.vocab, head.out_features)?;
        check(
            head.output_zero_point == h.logits_zero_point,
            "LM head zero point",
        )
    }

    /// The RoPE table of a Llama blob.
    fn llama_rope(&self) -> Result<(RopeTable<'a>, RopeStyle), Error> {
        self.need(self.header.kind == ModelKind::Llama)?;
        self.cursor(self.layout.rope).rope_table()
    }

    /// Llama block `i`.
    pub fn llama_block(&self, i: usize) -> Result<LlamaBlock<'a>, Error> {
        self.need(self.header.kind == ModelKind::Llama && i < self.header.decoder.layers)?;
        let (table, style) = self.llama_rope()?;
        let at = self.layout.dec_blocks + i * self.layout.dec_block_sections;
        self.cursor(at).llama_block(table, style)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.header.kind
    }

    /// Buffer sizes a runner needs.
    pub fn buffers(&self) -> BufferSizes {
        self.header.buffers
    }

    /// Bytes the blob occupies (flash).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true for a parsed blob (kept for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn need(&self, ok: bool) -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(crate::error::bad_blob("the model has no such part"))
        }
    }

    /// The ViT front end.
    pub fn vit_embedding(&self) -> Result<VitEmbedding<'a>, Error> {
        self.need(self.header.kind.has_encoder())?;
        read_vit_embedding(
            &mut self.cursor(self.layout.vit_embed),
            &self.header.encoder,
        )
    }

    /// Encoder block `i`.
    pub fn encoder_block(&self, i: usize) -> Result<EncoderBlock<'a>, Error> {
        self.need(self.header.kind.has_encoder() && i < self.header.encoder.layers)?;
        let at = self.layout.enc_blocks + i * self.layout.enc_block_sections;
        self.cursor(at).encoder_block()
    }

    /// The encoder's final LayerNorm.
    pub fn encoder_final_norm(&self) -> Result<LayerNorm<'a>, Error> {
        self.need(self.header.kind.has_encoder())?;
        self.cursor(self.layout.enc_final_ln).layer_norm()
    }

    /// The ViT classifier head.
    pub fn classifier(&self) -> Result<Linear<'a>, Error> {
        self.need(self.header.kind == ModelKind::VitClassifier)?;
        self.cursor(self.layout.classifier).linear()
    }

    /// The decoder front end.
    pub fn token_embedding(&self) -> Result<TokenEmbedding<'a>, Error> {
        self.need(self.header.kind.has_decoder())?;
        read_token_embedding(&mut self.cursor(self.layout.dec_embed))
    }

    /// Decoder block `i`.
    pub fn decoder_block(&self, i: usize) -> Result<DecoderBlock<'a>, Error> {
        self.need(self.header.kind.has_decoder() && i < self.header.decoder.layers)?;
        let at = self.layout.dec_blocks + i * self.layout.dec_block_sections;
        self.cursor(at).decoder_block()
    }

    /// The decoder's final LayerNorm.
    pub fn decoder_final_norm(&self) -> Result<LayerNorm<'a>, Error> {
        self.need(self.header.kind.has_decoder())?;
        self.cursor(self.layout.dec_final_ln).layer_norm()
    }

    /// The LM head (`[vocab][D]`; for a tied head its weights are the token-embedding bytes).
    pub fn lm_head(&self) -> Result<Linear<'a>, Error> {
        self.need(self.header.kind.has_decoder())?;
        self.cursor(self.layout.head).linear()
    }

    /// The vocabulary (text of each token id, or of each class of a classifier), when the
    /// blob carries one (see the module docs).
    pub fn vocab(&self) -> Option<Vocab<'a>> {
        let at = self.layout.vocab?;
        read_vocab(&mut self.cursor(at)).ok()
    }
}

impl LlamaModel for Blob<'_> {
    fn llama_dims(&self) -> crate::llama::LlamaDims {
        self.header.decoder.llama()
    }
    fn llama_embedding(&self) -> Result<&[i8], Error> {
        self.need(self.header.kind == ModelKind::Llama)?;
        self.cursor(self.layout.dec_embed).i8s(tag::TOKEN_EMBED)
    }
    fn llama_block(&self, i: usize) -> Result<LlamaBlock<'_>, Error> {
        Blob::llama_block(self, i)
    }
    fn llama_final_norm(&self) -> Result<RmsNorm<'_>, Error> {
        self.need(self.header.kind == ModelKind::Llama)?;
        self.cursor(self.layout.dec_final_ln).rms_norm()
    }
    fn llama_head(&self) -> Result<Linear<'_>, Error> {
        self.need(self.header.kind == ModelKind::Llama)?;
        self.cursor(self.layout.head).linear()
    }
    fn llama_bos(&self) -> u32 {
        self.header.decoder.start_token
    }
    fn llama_eos(&self) -> u32 {
        self.header.decoder.eos_token
    }
}

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
fn read_vocab<'a>(c: &mut Cursor<'a>) -> Result<Vocab<'a>, Error> {
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

/// `K` itself when it names a kind ([`Blob::parse_as`] checked the blob's kind against it),
/// else the blob's `kind`: a constant for the compiler where `K` names a kind.
#[inline(always)]
fn const_kind<const K: u16>(kind: ModelKind) -> ModelKind {
    match K {
        1 => ModelKind::VitClassifier,
        2 => ModelKind::DecoderLm,
        3 => ModelKind::EncoderDecoder,
        4 => ModelKind::Llama,
        _ => kind,
    }
}

/// `core::str::from_utf8(b).is_ok()` in a loop of a few instructions per byte (core's
/// validation, inlined at every use, has a word-at-a-time ASCII fast path: code size).
/// Well-formed UTF-8 as the Unicode standard defines it: shortest form, no surrogates, at most
/// U+10FFFF.
fn utf8_ok(b: &[u8]) -> bool {
    let mut rest = b;
    while let Some((&lead, tail)) = rest.split_first() {
        let (more, min, bits) = match lead {
            0x00..=0x7f => (0, 0, lead),
            0xc2..=0xdf => (1, 0x80, lead & 0x1f),
            0xe0..=0xef => (2, 0x800, lead & 0x0f),
            0xf0..=0xf4 => (3, 0x1_0000, lead & 0x07),
            _ => return false,
        };
        let Some((cont, after)) = tail.split_at_checked(more) else {
            return false;
        };
        let mut c = bits as u32;
        for &x in cont {
            if x & 0xc0 != 0x80 {
                return false;
            }
            c = (c << 6) | (x & 0x3f) as u32;
        }
        if c < min || (0xd800..=0xdfff).contains(&c) || c > 0x10_ffff {
            return false;
        }
        rest = after;
    }
    true
}

fn check(ok: bool, what: &'static str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(crate::error::bad_blob(what))
    }
}

/// `found == expected`, else [`BlobError::Mismatch`] naming `what`.
fn same(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(BlobError::Mismatch {
            what,
            expected,
            found,
        }
        .into())
    }
}

#[inline(never)] // load-time reader: one copy, not one per caller (code size)
fn read_vit_embedding<'a>(c: &mut Cursor<'a>, e: &EncoderDims) -> Result<VitEmbedding<'a>, Error> {
    Ok(VitEmbedding {
        patch: PatchEmbedding {
            channels: e.channels,
            height: e.height,
            width: e.image_width,
            patch: e.patch,
            projection: c.linear()?,
        },
        class_token: c.i8s(tag::CLASS_TOKEN)?,
        positions: c.i8s(tag::POSITIONS)?,
        position_add: c.residual()?,
    })
}

#[inline(never)] // load-time reader: one copy, not one per caller (code size)
fn read_token_embedding<'a>(c: &mut Cursor<'a>) -> Result<TokenEmbedding<'a>, Error> {
    Ok(TokenEmbedding {
        table: c.i8s(tag::TOKEN_EMBED)?,
        positions: c.i8s(tag::POSITIONS)?,
        position_add: c.residual()?,
    })
}

#[cfg(feature = "std")]
pub use writer::*;

/// Host-side writer: owned `*Params` → blob bytes.
#[cfg(feature = "std")]
mod writer {
    use super::*;
    use crate::attention::AttentionParams;
    use crate::linear::LinearParams;
    use crate::norm::LayerNormParams;
    use crate::quantize::{
        CrossAttentionParams, DecoderBlockParams, EncoderBlockParams, MlpParams,
    };
    use std::vec;
    use std::vec::Vec;

    /// Owned int8 ViT encoder (with or without classifier).
    #[derive(Debug, Clone)]
    pub struct VitParams {
        /// Image channels.
        pub channels: usize,
        /// Image height.
        pub height: usize,
        /// Image width.
        pub width: usize,
        /// Patch side.
        pub patch: usize,
        /// Patch projection `[D][C·P·P]`.
        pub projection: LinearParams,
        /// Class token in the projection's output quantization.
        pub class_token: Vec<i8>,
        /// Learned positions `[tokens][D]`.
        pub positions: Vec<i8>,
        /// `embedding + position`.
        pub position_add: ResidualAdd,
        /// Encoder blocks.
        pub blocks: Vec<EncoderBlockParams>,
        /// Final LayerNorm.
        pub final_norm: LayerNormParams,
        /// Classifier on the class token (ViT classifier only).
        pub classifier: Option<LinearParams>,
    }

    /// Owned int8 decoder.
    #[derive(Debug, Clone)]
    pub struct DecoderParams {
        /// `[vocab][D]` token embedding.
        pub embedding: Vec<i8>,
        /// `[max_positions][D]` positions.
        pub positions: Vec<i8>,
        /// True when `positions` is the sinusoidal table.
        pub sinusoidal: bool,
        /// `embedding + position`.
        pub position_add: ResidualAdd,
        /// Decoder blocks.
        pub blocks: Vec<DecoderBlockParams>,
        /// Final LayerNorm.
        pub final_norm: LayerNormParams,
        /// LM head. When `tied`, its weights must equal `embedding` and are stored once.
        pub head: LinearParams,
        /// LM head tied to the embedding.
        pub tied: bool,
        /// Start token ([`NO_TOKEN`] if none).
        pub start_token: u32,
        /// End-of-sequence token ([`NO_TOKEN`] if none).
        pub eos_token: u32,
        /// Pad token ([`NO_TOKEN`] if none).
        pub pad_token: u32,
    }

    /// A whole owned int8 model plus the quantization of its input and logits.
    #[derive(Debug, Clone)]
    pub struct ModelParams {
        /// Encoder (ViT classifier, encoder–decoder).
        pub encoder: Option<VitParams>,
        /// Decoder (decoder LM, encoder–decoder).
        pub decoder: Option<DecoderParams>,
        /// Input image quantization (encoder models).
        pub input: crate::quant::QParams,
        /// Logits quantization.
        pub logits: crate::quant::QParams,
    }

    enum Data {
        Bytes(Vec<u8>),
        Alias(usize),
    }

    /// Collects sections, then lays out and checksums the blob.
    struct Writer {
        entries: Vec<(u16, Elem, usize, Data)>,
    }

    impl Writer {
        fn push(&mut self, tag: u16, elem: Elem, count: usize, bytes: Vec<u8>) -> usize {
            self.entries.push((tag, elem, count, Data::Bytes(bytes)));
            self.entries.len() - 1
        }
        fn i8s(&mut self, tag: u16, v: &[i8]) -> usize {
            self.push(tag, Elem::I8, v.len(), v.iter().map(|&x| x as u8).collect())
        }
        fn i32s(&mut self, tag: u16, v: &[i32]) -> usize {
            let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            self.push(tag, Elem::I32, v.len(), b)
        }
        fn u16s(&mut self, tag: u16, v: &[u16]) -> usize {
            let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            self.push(tag, Elem::U16, v.len(), b)
        }
        fn alias(&mut self, tag: u16, of: usize) {
            let (_, elem, count, _) = self.entries[of];
            self.entries.push((tag, elem, count, Data::Alias(of)));
        }

        fn layer_norm(&mut self, p: &LayerNormParams) {
            write_layer_norm(self, p)
        }

        /// The one place an RMSNorm is written (the reader is `Cursor::rms_norm`).
        fn rms_norm(&mut self, p: &crate::rmsnorm::RmsNormParams) {
            self.i32s(tag::RMS_GAMMA, &p.gamma);
            self.i32s(
                tag::RMS_SCALARS,
                &[
                    p.epsilon as u32 as i32,
                    (p.epsilon >> 32) as u32 as i32,
                    p.input_zero_point,
                    p.output_zero_point,
                ],
            );
        }

        /// Returns the index of the weight section.
        fn linear(&mut self, p: &LinearParams) -> usize {
            self.i32s(
                tag::LIN_SHAPE,
                &[
                    p.in_features as i32,
                    p.out_features as i32,
                    p.output_zero_point,
                ],
            );
            let w = self.i8s(tag::LIN_W, &p.weights);
            self.i32s(tag::LIN_B, &p.bias);
            self.i32s(tag::LIN_MUL, &p.multipliers);
            self.i8s(tag::LIN_SHIFT, &p.shifts);
            w
        }

        fn attention(&mut self, p: &AttentionParams) {
            self.i32s(
                tag::ATT_SCALARS,
                &[
                    p.heads as i32,
                    p.head_dim as i32,
                    p.score_to_index.multiplier,
                    p.score_to_index.shift as i32,
                    p.output.multiplier,
                    p.output.shift as i32,
                    p.output_zero_point,
                ],
            );
            self.u16s(tag::EXP_HI, &p.exp_hi);
            self.u16s(tag::EXP_LO, &p.exp_lo);
        }

        fn residual(&mut self, r: &ResidualAdd) {
            self.i32s(
                tag::RESIDUAL,
                &[
                    r.a_scale.multiplier,
                    r.a_scale.shift as i32,
                    r.a_zero_point,
                    r.b_scale.multiplier,
                    r.b_scale.shift as i32,
                    r.b_zero_point,
                    r.output_zero_point,
                ],
            );
        }

        fn mlp(&mut self, m: &MlpParams) {
            self.linear(&m.fc1);
            self.i8s(tag::LUT, &m.act);
            self.linear(&m.fc2);
        }

        fn cross(&mut self, c: &CrossAttentionParams) {
            self.layer_norm(&c.ln);
            self.linear(&c.q);
            self.linear(&c.kv);
            self.attention(&c.attention);
            self.linear(&c.proj);
            self.residual(&c.add);
        }

        fn finish(
            self,
            kind: ModelKind,
            header_words: [u32; HEADER_WORDS],
        ) -> Result<Vec<u8>, Error> {
            let table = TABLE_COUNT_OFFSET + 4;
            let mut pos = table + self.entries.len() * ENTRY_BYTES;
            let align = |p: usize| p.div_ceil(SECTION_ALIGN) * SECTION_ALIGN;
            let mut offsets = Vec::with_capacity(self.entries.len());
            for (_, _, _, d) in &self.entries {
                match d {
                    Data::Bytes(b) => {
                        pos = align(pos);
                        offsets.push(pos);
                        pos += b.len();
                    }
                    Data::Alias(i) => offsets.push(offsets[*i]),
                }
            }
            let total = align(pos);
            fits_u32(total)?;
            let mut out = vec![0u8; total];
            out[..4].copy_from_slice(&MAGIC);
            out[4..6].copy_from_slice(&VERSION.to_le_bytes());
            out[6..8].copy_from_slice(&(kind as u16).to_le_bytes());
            out[12..16].copy_from_slice(&(total as u32).to_le_bytes());
            for (i, w) in header_words.iter().enumerate() {
                out[PREAMBLE + 4 * i..][..4].copy_from_slice(&w.to_le_bytes());
            }
            out[TABLE_COUNT_OFFSET..][..4]
                .copy_from_slice(&(self.entries.len() as u32).to_le_bytes());
            for (i, (tag, elem, count, d)) in self.entries.iter().enumerate() {
                let e = table + i * ENTRY_BYTES;
                let te = *tag as u32 | ((*elem as u32) << 16);
                out[e..e + 4].copy_from_slice(&te.to_le_bytes());
                out[e + 4..e + 8].copy_from_slice(&(offsets[i] as u32).to_le_bytes());
                out[e + 8..e + 12].copy_from_slice(&(*count as u32).to_le_bytes());
                if let Data::Bytes(b) = d {
                    out[offsets[i]..offsets[i] + b.len()].copy_from_slice(b);
                }
            }
            let sum = fnv1a32(&out[12..]);
            out[8..12].copy_from_slice(&sum.to_le_bytes());
            Ok(out)
        }
    }

    /// The one place a [`LayerNormParams`] is written (the reader is `Cursor::layer_norm`).
    fn write_layer_norm(w: &mut Writer, p: &LayerNormParams) {
        w.i32s(tag::LN_GAMMA, &p.gamma);
        w.i32s(tag::LN_BETA, &p.beta);
        w.i32s(
            tag::LN_SCALARS,
            &[
                p.epsilon as u32 as i32,
                (p.epsilon >> 32) as u32 as i32,
                p.output_zero_point,
            ],
        );
    }

    fn fits_u32(v: usize) -> Result<(), Error> {
        if v > u32::MAX as usize {
            Err(crate::error::bad_blob("dimension does not fit 32 bits"))
        } else {
            Ok(())
        }
    }

    /// Serialize `model` into blob bytes (deterministic: same parameters, same bytes), then
    /// parse the result as a self-check.
    ///
    /// # Errors
    ///
    /// [`Error::BadBlob`] for an unsupported combination of parts or tables that do not match
    /// the dimensions; any error [`Blob::parse`] finds in the result.
    pub fn write(model: &ModelParams) -> Result<Vec<u8>, Error> {
        write_with_vocab(model, None)
    }

    /// [`write()`], plus the optional vocabulary sections: the text of each token id (decoders)
    /// or class (classifiers), `None` for an id without text. A blob without a vocabulary is
    /// byte for byte what [`write()`] gives.
    ///
    /// # Errors
    ///
    /// As [`write()`]; [`Error::BadBlob`] when the vocabulary's length differs from the model's
    /// vocabulary size (or class count).
    pub fn write_with_vocab(
        model: &ModelParams,
        vocab: Option<&[Option<&str>]>,
    ) -> Result<Vec<u8>, Error> {
        let kind = match (&model.encoder, &model.decoder) {
            (Some(e), None) if e.classifier.is_some() => ModelKind::VitClassifier,
            (None, Some(_)) => ModelKind::DecoderLm,
            (Some(e), Some(_)) if e.classifier.is_none() => ModelKind::EncoderDecoder,
            _ => {
                return Err(crate::error::bad_blob(
                    "unsupported combination of model parts",
                ))
            }
        };
        let mut enc_dims = EncoderDims::default();
        let mut dec_dims = DecoderDims::default();
        let mut w = Writer {
            entries: Vec::new(),
        };
        let mut logits_zp = model.logits.zero_point;
        if let Some(e) = &model.encoder {
            let b0 = e
                .blocks
                .first()
                .ok_or(crate::error::bad_blob("encoder without blocks"))?;
            enc_dims = EncoderDims {
                layers: e.blocks.len(),
                width: e.projection.out_features,
                heads: b0.attention.heads,
                mlp: b0.mlp.fc1.out_features,
                channels: e.channels,
                height: e.height,
                image_width: e.width,
                patch: e.patch,
                classes: e.classifier.as_ref().map_or(0, |c| c.out_features),
                post_norm: b0.placement == NormPlacement::Post,
            };
            w.linear(&e.projection);
            w.i8s(tag::CLASS_TOKEN, &e.class_token);
            w.i8s(tag::POSITIONS, &e.positions);
            w.residual(&e.position_add);
            for b in &e.blocks {
                w.i32s(
                    tag::BLOCK,
                    &[(b.placement == NormPlacement::Post) as i32, 0],
                );
                w.layer_norm(&b.ln1);
                w.linear(&b.qkv);
                w.attention(&b.attention);
                w.linear(&b.proj);
                w.residual(&b.add1);
                w.layer_norm(&b.ln2);
                w.mlp(&b.mlp);
                w.residual(&b.add2);
            }
            w.layer_norm(&e.final_norm);
            if let Some(c) = &e.classifier {
                logits_zp = c.output_zero_point;
                w.linear(c);
            }
        }
        if let Some(d) = &model.decoder {
            let b0 = d
                .blocks
                .first()
                .ok_or(crate::error::bad_blob("decoder without blocks"))?;
            let width = d.head.in_features;
            if width == 0 || d.embedding.len() % width != 0 || d.positions.len() % width != 0 {
                return Err(crate::error::bad_blob(
                    "decoder tables do not match the width",
                ));
            }
            dec_dims = DecoderDims {
                layers: d.blocks.len(),
                width,
                heads: b0.attention.heads,
                mlp: b0.mlp.fc1.out_features,
                vocab: d.embedding.len() / width,
                max_positions: d.positions.len() / width,
                sinusoidal: d.sinusoidal,
                tied_head: d.tied,
                start_token: d.start_token,
                eos_token: d.eos_token,
                pad_token: d.pad_token,
                kv_heads: 0,
            };
            let emb = w.i8s(tag::TOKEN_EMBED, &d.embedding);
            w.i8s(tag::POSITIONS, &d.positions);
            w.residual(&d.position_add);
            for b in &d.blocks {
                w.i32s(tag::BLOCK, &[0, b.cross.is_some() as i32]);
                w.layer_norm(&b.ln1);
                w.linear(&b.qkv);
                w.attention(&b.attention);
                w.linear(&b.proj);
                w.residual(&b.add1);
                if let Some(c) = &b.cross {
                    w.cross(c);
                }
                w.layer_norm(&b.ln2);
                w.mlp(&b.mlp);
                w.residual(&b.add2);
            }
            w.layer_norm(&d.final_norm);
            logits_zp = d.head.output_zero_point;
            if d.tied {
                if d.head.weights != d.embedding {
                    return Err(crate::error::bad_blob(
                        "tied LM head differs from the embedding",
                    ));
                }
                let h = &d.head;
                w.i32s(
                    tag::LIN_SHAPE,
                    &[
                        h.in_features as i32,
                        h.out_features as i32,
                        h.output_zero_point,
                    ],
                );
                w.alias(tag::LIN_W, emb);
                w.i32s(tag::LIN_B, &h.bias);
                w.i32s(tag::LIN_MUL, &h.multipliers);
                w.i8s(tag::LIN_SHIFT, &h.shifts);
            } else {
                w.linear(&d.head);
            }
        }
        let mut header = Header {
            kind,
            encoder: enc_dims,
            decoder: dec_dims,
            input_scale_bits: if model.encoder.is_some() {
                (model.input.scale as f32).to_bits()
            } else {
                0
            },
            input_zero_point: if model.encoder.is_some() {
                model.input.zero_point
            } else {
                0
            },
            logits_scale_bits: (model.logits.scale as f32).to_bits(),
            logits_zero_point: logits_zp,
            buffers: BufferSizes::default(),
        };
        header.buffers = header.required_buffers()?;
        finish_checked(w, header, vocab)
    }

    /// The vocabulary sections, the header's buffer sizes checked to fit 32 bits, the layout,
    /// and the self-check parse (shared by [`write_with_vocab`] and [`write_llama`]).
    fn finish_checked(
        mut w: Writer,
        header: Header,
        vocab: Option<&[Option<&str>]>,
    ) -> Result<Vec<u8>, Error> {
        let kind = header.kind;
        if let Some(v) = vocab {
            let mut offsets = Vec::with_capacity(v.len() + 1);
            let mut text = Vec::new();
            offsets.push(0i32);
            for e in v {
                text.extend(e.unwrap_or("").bytes().map(|b| b as i8));
                fits_u32(text.len())?;
                offsets.push(
                    i32::try_from(text.len())
                        .map_err(|_| crate::error::bad_blob("vocabulary text too long"))?,
                );
            }
            w.i32s(tag::VOCAB_OFFSETS, &offsets);
            w.i8s(tag::VOCAB_BYTES, &text);
        }
        let b = &header.buffers;
        for v in [
            b.x, b.normed, b.wide, b.scores, b.patch, b.logits, b.kv, b.cross_kv,
        ] {
            fits_u32(v)?;
        }
        let bytes = w.finish(kind, header.to_words())?;
        // Self-check: what we write must parse (the blob is copied to aligned storage first).
        let words: Vec<u32> = bytes
            .chunks(4)
            .map(|c| {
                let mut a = [0u8; 4];
                a[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(a)
            })
            .collect();
        Blob::parse(&bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()])?;
        Ok(bytes)
    }

    /// Serialize a Llama ([`crate::llama::LlamaParams`]) into blob bytes, with the optional
    /// vocabulary sections (the text of each token id, `None` for an id without text), then
    /// parse the result as a self-check. Deterministic: same parameters, same bytes.
    ///
    /// # Errors
    ///
    /// [`Error::BadBlob`] for a tied classifier whose weights differ from the embedding, a
    /// vocabulary of the wrong length; any error [`Blob::parse`] finds in the result.
    pub fn write_llama(
        model: &crate::llama::LlamaParams,
        vocab: Option<&[Option<&str>]>,
    ) -> Result<Vec<u8>, Error> {
        let d = model.dims;
        let mut w = Writer {
            entries: Vec::new(),
        };
        let emb = w.i8s(tag::TOKEN_EMBED, &model.embedding);
        let r = &model.rope;
        let style = match model.style {
            RopeStyle::Interleaved => 0,
            RopeStyle::HalfSplit => 1,
        };
        w.i32s(
            tag::ROPE_SHAPE,
            &[r.head_dim as i32, r.positions as i32, style],
        );
        let as_u16 = |v: &[i16]| v.iter().map(|&x| x as u16).collect::<Vec<u16>>();
        w.u16s(tag::ROPE_COS, &as_u16(&r.cos));
        w.u16s(tag::ROPE_SIN, &as_u16(&r.sin));
        for b in &model.blocks {
            w.i32s(tag::BLOCK, &[LLAMA_BLOCK_MARKER, b.kv_heads as i32]);
            w.rms_norm(&b.rms1);
            w.linear(&b.qkv);
            w.i32s(
                tag::ROPE_REQUANT,
                &[
                    b.rope_q.multiplier,
                    b.rope_q.shift as i32,
                    b.rope_k.multiplier,
                    b.rope_k.shift as i32,
                ],
            );
            w.attention(&b.attention);
            w.linear(&b.proj);
            w.residual(&b.add1);
            w.rms_norm(&b.rms2);
            w.linear(&b.w1);
            w.linear(&b.w3);
            w.i32s(tag::SILU, &b.swiglu.silu);
            w.i32s(
                tag::SWIGLU_SCALARS,
                &[
                    b.swiglu.up_zero_point,
                    b.swiglu.requant.multiplier,
                    b.swiglu.requant.shift as i32,
                    b.swiglu.output_zero_point,
                ],
            );
            w.linear(&b.w2);
            w.residual(&b.add2);
        }
        w.rms_norm(&model.final_norm);
        let h = &model.head;
        if model.tied {
            if h.weights != model.embedding {
                return Err(crate::error::bad_blob(
                    "tied LM head differs from the embedding",
                ));
            }
            w.i32s(
                tag::LIN_SHAPE,
                &[
                    h.in_features as i32,
                    h.out_features as i32,
                    h.output_zero_point,
                ],
            );
            w.alias(tag::LIN_W, emb);
            w.i32s(tag::LIN_B, &h.bias);
            w.i32s(tag::LIN_MUL, &h.multipliers);
            w.i8s(tag::LIN_SHIFT, &h.shifts);
        } else {
            w.linear(h);
        }
        let mut header = Header {
            kind: ModelKind::Llama,
            encoder: EncoderDims::default(),
            decoder: DecoderDims {
                layers: d.layers,
                width: d.width,
                heads: d.heads,
                mlp: d.hidden,
                vocab: d.vocab,
                max_positions: d.max_positions,
                sinusoidal: false,
                tied_head: model.tied,
                start_token: model.bos,
                eos_token: model.eos,
                pad_token: NO_TOKEN,
                kv_heads: d.kv_heads,
            },
            input_scale_bits: 0,
            input_zero_point: 0,
            logits_scale_bits: (model.logits.scale as f32).to_bits(),
            logits_zero_point: h.output_zero_point,
            buffers: BufferSizes::default(),
        };
        header.buffers = header.required_buffers()?;
        finish_checked(w, header, vocab)
    }

    impl Header {
        /// The input image scale (host only).
        pub fn input_scale(&self) -> f32 {
            f32::from_bits(self.input_scale_bits)
        }

        /// The logits scale (host only).
        pub fn logits_scale(&self) -> f32 {
            f32::from_bits(self.logits_scale_bits)
        }
    }
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
