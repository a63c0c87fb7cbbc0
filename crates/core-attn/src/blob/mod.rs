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
//!
//! The code is split by part: the header fields and checks (`header.rs`), the
//! section cursor and the per-part readers (`reader.rs`), the parse and walk of a whole blob
//! with its accessors (`parse.rs`), the optional vocabulary (`vocab.rs`) and the host-side
//! writer (`writer.rs`, `std`).

//! The host-side writer (`write`, `std` feature) lives at the end of this file, next to the
//! reader.

use crate::activation::Lut;
use crate::attention::Attention;
use crate::block::{CrossAttention, DecoderBlock, EncoderBlock, Mlp, NormPlacement};
use crate::embed::PatchEmbedding;
use crate::linear::Linear;
use crate::llama::{LlamaBlock, LlamaModel};
use crate::norm::LayerNorm;
use crate::requant::{ChannelRequant, Requant};
use crate::residual::ResidualAdd;
use crate::rmsnorm::RmsNorm;
use crate::rope::{Rope, RopeStyle, RopeTable};
use crate::softmax::ExpTable;

/// `?` for a `const fn` (the trait behind `?` is not usable in const contexts).
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err(e),
        }
    };
}

mod embedded;
mod header;
mod parse;
mod parts;
mod reader;
mod vocab;
#[cfg(feature = "std")]
mod writer;

pub use embedded::Embedded;
pub use header::Header;
pub use parse::Blob;
pub use reader::{TokenEmbedding, VitEmbedding};
pub use vocab::Vocab;
#[cfg(feature = "std")]
pub use writer::*;

use parts::Parts;
use reader::{check, read_token_embedding, read_vit_embedding, same, tag, word, Cursor};
use vocab::read_vocab;

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
pub const fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
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
    const fn from_u16(v: u16) -> Result<Self, Error> {
        match v {
            1 => Ok(ModelKind::VitClassifier),
            2 => Ok(ModelKind::DecoderLm),
            3 => Ok(ModelKind::EncoderDecoder),
            4 => Ok(ModelKind::Llama),
            found => Err(Error::BadBlob(BlobError::UnknownKind { found })),
        }
    }

    /// True when the model has a ViT encoder.
    pub const fn has_encoder(self) -> bool {
        matches!(self, ModelKind::VitClassifier | ModelKind::EncoderDecoder)
    }

    /// True when the model has a GPT-2-layout decoder ([`Blob::decoder_block`]; a Llama's
    /// blocks are [`Blob::llama_block`]).
    pub const fn has_decoder(self) -> bool {
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
    /// Every size zero (`Default::default()` in a `const`).
    pub(crate) const ZERO: BufferSizes = BufferSizes {
        x: 0,
        normed: 0,
        wide: 0,
        scores: 0,
        patch: 0,
        logits: 0,
        kv: 0,
        cross_kv: 0,
    };

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
    pub const fn tokens(&self) -> usize {
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
