//! The device runtime: a converted model in your own firmware in a few lines.
//!
//! [`include_model!`](crate::include_model) embeds a `.tatn` blob 16-byte aligned and reads its
//! header **at compile time** (a `const fn`, no build script): the working memory
//! ([`Memory`]) is a type whose array sizes come from the blob itself, so a model always gets
//! exactly the RAM it needs, a model that does not fit the chip fails to link, and a blob whose
//! header is invalid (for a ViT: any part of the blob, [`crate::blob::Embedded`]) fails the
//! build with a message naming the problem:
//!
//! ```text
//! error[E0080]: evaluation panicked: model blob: bad magic (not a TATN model blob)
//! ```
//!
//! One type per model kind holds the parsed blob, the buffers and the KV caches:
//!
//! | kind | type | what you call |
//! | --- | --- | --- |
//! | ViT classifier | [`Vit`] | [`Vit::classify_u8`], [`Vit::classify`] (int8 image), [`Vit::logits`] |
//! | decoder LM | [`Lm`] | [`Lm::generate`] (greedy or [`Sampler::temperature`]), [`Lm::prefill`], [`Lm::step`] |
//! | encoder–decoder | [`Reader`] | [`Reader::read_u8`], [`Reader::read`] (image → token ids), [`Reader::encode`] + [`Reader::step`] |
//! | Llama ([`crate::llama`]) | [`Llama`] | [`Llama::generate`], [`Llama::prefill`], [`Llama::step`] |
//!
//! Inputs and outputs without floats: a [`PixelMap`] is a 256-entry `u8 → i8` table computed
//! by the compiler (in a `const`) from the blob's input scale and zero point and your
//! normalization; [`Dequant`] turns int8 logits into Q16.16 fixed point with integer
//! arithmetic; [`Sampler`] samples with an integer-only temperature and a seeded xorshift
//! generator. Firmware that holds several models in one [`Memory`] reads each one's
//! [`ModelInfo`] at run time with [`ModelInfo::of_blob`]; [`Memory::parts`] hands the raw
//! buffers to code that drives [`crate::model`]'s runners itself (a serial-link server). When
//! the blob carries a vocabulary ([`crate::blob::Vocab`]), [`Lm::vocab`] turns
//! ids into text and text into ids on the device.
//!
//! # Where the memory lives
//!
//! [`Memory::new`] is a `const fn` of zeros. On the host a local is fine; on a device put the
//! memory in a `static` cell so that the buffers land in `.bss` (and a model that does not fit
//! the RAM fails to link), e.g. `static_cell::ConstStaticCell::new(MODEL::Memory::new()).take()`.
//! A local of an embassy `async fn main` is in the task's static storage only when it is held
//! across an `.await`, and `cortex_m::singleton!` builds the value on the stack before moving it
//! (a 75 KB LM memory overflowed the stack that way).
//!
//! # Read an image to tokens
//!
//! (Classifying and generating text: the crate-level docs.) The digit reader shipped in
//! `models/` reads a strip of handwritten digits; its blob carries its vocabulary:
//!
//! ```
//! core_attn::include_model!(DIGITS: Reader = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/digit-reader.tatn"));
//! const PIXELS: core_attn::device::PixelMap = DIGITS::pixel_map(0.5, 0.5);
//!
//! fn main() -> Result<(), core_attn::Error> {
//! #   if cfg!(miri) { return Ok(()); }
//!     let mut memory = Box::new(DIGITS::Memory::new());
//!     let mut reader = DIGITS::load(&mut memory)?;
//!     let vocab = reader.vocab().expect("the blob carries its vocabulary");
//!     let strip = [0u8; 28 * 112]; // [C][H][W]: one row of up to four digits
//!     let mut text = String::new();
//!     let n = reader.read_u8(&strip, &PIXELS, 5, |id| text.push_str(vocab.text(id).unwrap_or("?")))?;
//!     assert!(n >= 1 && n <= 5);
//!     Ok(())
//! }
//! ```
//!
//! Step by step, with the logits in fixed point:
//!
//! ```
//! core_attn::include_model!(LM: Lm = concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards/common/models/gpt2-tiny.tatn"));
//!
//! let mut memory = LM::Memory::new();
//! let mut lm = LM::load(&mut memory)?;
//! let dq = lm.dequant();
//! let logits = lm.prefill(&[1, 2, 3])?;
//! let best = core_attn::model::argmax_i8(logits);
//! let best_q16 = dq.q16(logits[best]); // the largest logit, 65536 = 1.0
//! assert!(logits.iter().all(|&q| dq.q16(q) <= best_q16));
//! lm.step(best as u32)?;
//! assert_eq!(lm.position(), 4);
//! # Ok::<(), core_attn::Error>(())
//! ```
//!
//! A file that is not a model blob does not build:
//!
//! ```compile_fail,E0080
//! core_attn::include_model!(BAD: Vit = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
//! ```
//!
//! Nor does a blob of another kind than the one asked for:
//!
//! ```compile_fail,E0080
//! core_attn::include_model!(BAD: Lm = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/vit-mnist.tatn"));
//! ```
//!
//! The doctests and `tests/runtime.rs` read the blobs shipped in the repository (`models/`,
//! `boards/common/models/`), which are not part of the published package.

use crate::attention::KvCache;
use crate::blob::{Blob, BufferSizes, Embedded, ModelKind, Vocab, HEADER_WORDS, MAGIC, NO_TOKEN};
use crate::model::{self as runner, ModelBuffers};
use crate::Error;

mod io;
mod runners;

pub use io::{Dequant, PixelMap, Sampler};
pub use runners::{Llama, Lm, Reader, Vit};

/// 16-byte aligned storage: `Align16(*include_bytes!(..))` keeps a blob's `i32`/`u16`
/// sections readable zero-copy ([`include_model!`](crate::include_model) does this for you).
#[repr(C, align(16))]
#[derive(Debug)]
pub struct Align16<B: ?Sized>(pub B);

/// What the compiler reads from a blob's header ([`ModelInfo::of`]): its kind and the sizes
/// of every buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInfo {
    /// Model kind (`ModelKind as u16`: 1 ViT classifier, 2 decoder LM, 3 encoder–decoder,
    /// 4 Llama).
    pub kind: u16,
    /// Buffer sizes from the header (checked against the dimensions).
    pub buffers: BufferSizes,
    /// Decoder layers (KV-cache slots); 0 for a classifier.
    pub layers: usize,
    /// Input image length `C·H·W`; 0 for a decoder LM.
    pub image: usize,
    /// `f32` bits of the input scale.
    pub input_scale_bits: u32,
    /// Input zero point.
    pub input_zero_point: i32,
}

const fn word(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ])
}

/// Header word `i` as `usize`.
const fn hw(bytes: &[u8], i: usize) -> usize {
    word(bytes, 16 + 4 * i) as usize
}

const fn mul(a: usize, b: usize) -> usize {
    match a.checked_mul(b) {
        Some(v) => v,
        None => panic!("model blob: dimensions overflow"),
    }
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

impl ModelInfo {
    /// Read and check a blob's header at compile time.
    ///
    /// Meant for a `const` (as [`include_model!`](crate::include_model) uses it): every
    /// problem is a panic, i.e. a build error naming it (`model blob: …`). It checks magic,
    /// format version, kind, length, flags, the dimensions a buffer size depends on and that
    /// the header's buffer sizes agree with them. The checksum and the sections are checked
    /// for a ViT by the compiler too ([`Embedded::vit`], which `include_model!` runs), for
    /// the other kinds by [`Blob::parse`] when the model is loaded.
    ///
    /// # Panics
    ///
    /// On an invalid header (at compile time when used in a `const`).
    pub const fn of(bytes: &[u8]) -> ModelInfo {
        let table = 16 + 4 * HEADER_WORDS;
        if bytes.len() < table + 4 {
            panic!("model blob: truncated inside the header (not a TATN model blob?)");
        }
        if bytes[0] != MAGIC[0]
            || bytes[1] != MAGIC[1]
            || bytes[2] != MAGIC[2]
            || bytes[3] != MAGIC[3]
        {
            panic!("model blob: bad magic (not a TATN model blob)");
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version == 0 || version > crate::blob::VERSION {
            panic!("model blob: format version not supported by this core-attn");
        }
        let kind = u16::from_le_bytes([bytes[6], bytes[7]]);
        if kind < 1 || kind > 4 {
            panic!("model blob: unknown model kind");
        }
        let total = word(bytes, 12) as usize;
        if total > bytes.len() || total < table + 4 {
            panic!("model blob: total length disagrees with the file (truncated?)");
        }
        let mut i = 0;
        while i < HEADER_WORDS {
            let flag = i == 9 || i == 16 || i == 17;
            if flag && hw(bytes, i) > 1 {
                panic!("model blob: header flag not 0 or 1");
            }
            // Word 33 is a Llama's kv_heads (kind 4); reserved for the other kinds.
            if i >= 33 && !(kind == 4 && i == 33) && hw(bytes, i) != 0 {
                panic!("model blob: reserved header words not zero");
            }
            i += 1;
        }
        let has_encoder = kind == 1 || kind == 3;
        let has_decoder = kind == 2 || kind == 3;
        let (e_width, e_mlp, channels, height, image_width, patch, classes) = (
            hw(bytes, 1),
            hw(bytes, 3),
            hw(bytes, 4),
            hw(bytes, 5),
            hw(bytes, 6),
            hw(bytes, 7),
            hw(bytes, 8),
        );
        let (d_layers, d_width, d_mlp, vocab, positions) = (
            hw(bytes, 10),
            hw(bytes, 11),
            hw(bytes, 13),
            hw(bytes, 14),
            hw(bytes, 15),
        );
        let mut s = BufferSizes {
            x: 0,
            normed: 0,
            wide: 0,
            scores: 0,
            patch: 0,
            logits: 0,
            kv: 0,
            cross_kv: 0,
        };
        let mut tokens = 0;
        let mut image = 0;
        if has_encoder {
            if patch == 0 || e_width == 0 || height % patch != 0 || image_width % patch != 0 {
                panic!("model blob: bad image geometry or encoder width");
            }
            tokens = mul(height / patch, image_width / patch) + 1;
            s.x = mul(tokens, e_width);
            s.normed = s.x;
            s.wide = mul(tokens, max(mul(3, e_width), e_mlp));
            s.scores = tokens;
            s.patch = mul(channels, mul(patch, patch));
            s.logits = classes;
            image = mul(channels, mul(height, image_width));
            if (kind == 1) != (classes > 0) {
                panic!("model blob: class count does not match the model kind");
            }
        }
        if has_decoder {
            if d_layers == 0 || d_width == 0 || vocab == 0 || positions == 0 {
                panic!("model blob: decoder dimension is zero");
            }
            s.x = max(s.x, d_width);
            s.normed = max(s.normed, d_width);
            s.wide = max(s.wide, max(mul(3, d_width), d_mlp));
            s.scores = max(s.scores, positions);
            s.logits = max(s.logits, vocab);
            s.kv = mul(mul(2, d_layers), mul(positions, d_width));
            if kind == 3 {
                s.wide = max(s.wide, mul(tokens, mul(2, d_width)));
                s.scores = max(s.scores, tokens);
                s.cross_kv = mul(mul(2, d_layers), mul(tokens, d_width));
            }
        }
        if kind == 4 {
            let (heads, kv_heads) = (hw(bytes, 12), hw(bytes, 33));
            if d_layers == 0 || d_width == 0 || vocab == 0 || positions == 0 || d_mlp == 0 {
                panic!("model blob: llama dimension is zero");
            }
            if heads == 0 || d_width % heads != 0 {
                panic!("model blob: llama heads do not divide the width");
            }
            if kv_heads == 0 || heads % kv_heads != 0 {
                panic!("model blob: llama kv heads do not divide the query heads");
            }
            let kv_width = mul(kv_heads, d_width / heads);
            s.x = d_width;
            s.normed = d_width;
            s.wide = max(d_width + mul(2, kv_width), mul(2, d_mlp));
            s.scores = positions;
            s.logits = vocab;
            s.kv = mul(mul(2, d_layers), mul(positions, kv_width));
        }
        if s.x != hw(bytes, 25)
            || s.normed != hw(bytes, 26)
            || s.wide != hw(bytes, 27)
            || s.scores != hw(bytes, 28)
            || s.patch != hw(bytes, 29)
            || s.logits != hw(bytes, 30)
            || s.kv != hw(bytes, 31)
            || s.cross_kv != hw(bytes, 32)
        {
            panic!("model blob: buffer sizes disagree with the dimensions");
        }
        ModelInfo {
            kind,
            buffers: s,
            layers: if has_decoder || kind == 4 {
                d_layers
            } else {
                0
            },
            image,
            input_scale_bits: hw(bytes, 21) as u32,
            input_zero_point: hw(bytes, 22) as u32 as i32,
        }
    }

    /// The [`ModelInfo`] of a blob already parsed at run time ([`Blob::parse`]): what
    /// [`ModelInfo::of`] reads at compile time, for firmware that holds several models and
    /// runs them one after another in one [`Memory`] large enough for each (the QEMU boards).
    pub fn of_blob(blob: &Blob<'_>) -> ModelInfo {
        let h = blob.header();
        let kind = blob.kind();
        let e = h.encoder;
        ModelInfo {
            kind: kind as u16,
            buffers: blob.buffers(),
            layers: if kind.has_decoder() || kind == ModelKind::Llama {
                h.decoder.layers
            } else {
                0
            },
            image: if !kind.has_encoder() {
                0
            } else {
                e.channels
                    .saturating_mul(e.height)
                    .saturating_mul(e.image_width)
            },
            input_scale_bits: h.input_scale_bits,
            input_zero_point: h.input_zero_point,
        }
    }

    /// Bytes of int8 working memory: every `i8` buffer, the KV caches and the quantized image.
    pub const fn i8_bytes(&self) -> usize {
        let b = &self.buffers;
        b.x + b.normed + b.wide + b.patch + b.logits + b.kv + b.cross_kv + self.image
    }

    /// Entries of `i32` scratch (attention scores).
    pub const fn i32_entries(&self) -> usize {
        self.buffers.scores
    }

    /// Fail the build unless `checked` (the whole blob checked by the compiler) has the
    /// header `self` was read from ([`include_model!`](crate::include_model) reads both from
    /// the same bytes: this holds by construction).
    ///
    /// # Panics
    ///
    /// When they disagree (at compile time when used in a `const`).
    pub const fn expect_checked(&self, checked: &Embedded) {
        let (a, b) = (&self.buffers, &checked.header().buffers);
        if self.kind != checked.header().kind as u16
            || a.x != b.x
            || a.normed != b.normed
            || a.wide != b.wide
            || a.scores != b.scores
            || a.patch != b.patch
            || a.logits != b.logits
            || a.kv != b.kv
            || a.cross_kv != b.cross_kv
        {
            panic!("model blob: buffer sizes disagree with the compiled memory");
        }
    }

    /// Fail the build unless the blob is of `kind` (`ModelKind as u16`).
    ///
    /// # Panics
    ///
    /// When the kinds differ (at compile time when used in a `const`).
    pub const fn expect_kind(&self, kind: u16) {
        if self.kind != kind {
            match kind {
                1 => panic!("model blob: not a ViT classifier (use Lm or Reader)"),
                2 => panic!("model blob: not a decoder LM (use Vit or Reader)"),
                3 => panic!("model blob: not an encoder-decoder (use Vit, Lm or Llama)"),
                _ => panic!("model blob: not a Llama (use Vit, Lm or Reader)"),
            }
        }
    }

    /// The `u8 → i8` input table for pixels normalized as `(p/255 − mean) / std` (the usual
    /// `transforms.Normalize` convention), quantized with the blob's input scale and zero point.
    /// Use it in a `const`: the float arithmetic then runs in the compiler, never on the
    /// device.
    pub const fn pixel_map(&self, mean: f32, std: f32) -> PixelMap {
        let scale = f32::from_bits(self.input_scale_bits);
        let mut table = [0i8; 256];
        let mut p = 0;
        while p < 256 {
            let real = ((p as f32) / 255.0 - mean) / std;
            let r = real / scale;
            // Round half away from zero (`as` saturates).
            let q = if r >= 0.0 {
                (r + 0.5) as i32
            } else {
                (r - 0.5) as i32
            };
            let q = q.saturating_add(self.input_zero_point);
            table[p] = if q > 127 {
                127
            } else if q < -128 {
                -128
            } else {
                q as i8
            };
            p += 1;
        }
        PixelMap { table }
    }
}

/// Working memory for one model: `I8` bytes of int8 buffers and KV caches, `I32` attention
/// scores. [`include_model!`](crate::include_model) names the exact type for a blob
/// (`MODEL::Memory`); the sizes come from the header at compile time.
#[derive(Debug)]
pub struct Memory<const I8: usize, const I32: usize> {
    bytes: [i8; I8],
    scores: [i32; I32],
}

impl<const I8: usize, const I32: usize> Default for Memory<I8, I32> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const I8: usize, const I32: usize> Memory<I8, I32> {
    /// All zeros (a `static` of it lands in `.bss`).
    pub const fn new() -> Self {
        Memory {
            bytes: [0; I8],
            scores: [0; I32],
        }
    }

    /// The raw parts for `info` — runner buffers, image buffer, self- and cross-attention KV
    /// arenas — for code that drives [`crate::model`]'s runners itself (a serial-link server
    /// such as `attn-link`'s `ModelHandler`). The model types above do this for you.
    ///
    /// # Errors
    ///
    /// [`Error::BufferTooSmall`] when the memory is smaller than `info` asks for.
    pub fn parts(&mut self, info: &ModelInfo) -> Result<Parts<'_>, Error> {
        self.split(info)
    }

    /// Split into the runner buffers, the image buffer and the two KV arenas for `info`.
    fn split(&mut self, info: &ModelInfo) -> Result<Parts<'_>, Error> {
        let b = &info.buffers;
        let mut rest: &mut [i8] = &mut self.bytes;
        let mut take = |n: usize, what: &'static str| -> Result<&mut [i8], Error> {
            let available = rest.len();
            if n > available {
                return Err(Error::BufferTooSmall {
                    what,
                    needed: n,
                    available,
                });
            }
            let (head, tail) = core::mem::take(&mut rest).split_at_mut_checked(n).ok_or(
                Error::BufferTooSmall {
                    what,
                    needed: n,
                    available,
                },
            )?;
            rest = tail;
            Ok(head)
        };
        let x = take(b.x, "x buffer")?;
        let normed = take(b.normed, "normed buffer")?;
        let wide = take(b.wide, "wide buffer")?;
        let patch = take(b.patch, "patch buffer")?;
        let logits = take(b.logits, "logits buffer")?;
        let kv = take(b.kv, "kv cache arena")?;
        let cross = take(b.cross_kv, "cross kv cache arena")?;
        let image = take(info.image, "image buffer")?;
        let scores = crate::error::prefix(&mut self.scores, b.scores, "scores buffer")?;
        Ok(Parts {
            buffers: ModelBuffers {
                x,
                normed,
                wide,
                scores,
                patch,
                logits,
            },
            image,
            kv,
            cross,
        })
    }
}

/// A [`Memory`] split for one model ([`Memory::parts`]).
#[derive(Debug)]
pub struct Parts<'m> {
    /// The runner buffers.
    pub buffers: ModelBuffers<'m>,
    /// Room for the quantized input image (`C·H·W`; empty for a decoder LM).
    pub image: &'m mut [i8],
    /// The self-attention KV-cache arena ([`crate::model::kv_caches`]).
    pub kv: &'m mut [i8],
    /// The cross-attention KV-cache arena (encoder–decoder).
    pub cross: &'m mut [i8],
}

/// Parse `blob` as a model of kind `K` (`ModelKind as u16`), check that `info` describes it.
pub(super) fn open<'m, const K: u16>(blob: &'m [u8], info: &ModelInfo) -> Result<Blob<'m>, Error> {
    let parsed = Blob::parse_as::<K>(blob)?;
    if parsed.kind() as u16 != K || info.kind != K {
        return Err(crate::error::bad_blob(
            "model kind differs from the one asked for",
        ));
    }
    if parsed.buffers() != info.buffers {
        return Err(crate::error::bad_blob(
            "buffer sizes disagree with the compiled memory",
        ));
    }
    Ok(parsed)
}

pub(super) fn caches<'m, const L: usize>(
    arena: &'m mut [i8],
    layers: usize,
    capacity: usize,
    width: usize,
) -> Result<[KvCache<'m>; L], Error> {
    crate::error::check_len("KV-cache slots (decoder layers)", layers, L)?;
    let mut it = runner::kv_caches(arena, layers, capacity, width)?;
    let mut err = None;
    let caches = core::array::from_fn(|_| match it.next() {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            err = Some(e);
            KvCache::empty()
        }
        None => {
            err = Some(Error::BadDimension {
                what: "kv cache slots",
                value: L,
            });
            KvCache::empty()
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(caches),
    }
}

/// Embed a `.tatn` blob and size its memory at compile time.
///
/// `include_model!(NAME: Kind = "path/to/model.tatn")`, `Kind` one of `Vit`, `Lm`, `Reader`,
/// `Llama`,
/// defines a module `NAME` with:
///
/// - `BLOB`: the bytes, 16-byte aligned in flash (`&NAME::BLOB.0`);
/// - `INFO`: the [`ModelInfo`](crate::device::ModelInfo) read from the header by the compiler
///   (an invalid header, or a blob of another kind, fails the build);
/// - `Memory`: the exact [`Memory`](crate::device::Memory) type for it;
/// - `Model<'m>`: the runtime type ([`Vit`](crate::device::Vit),
///   [`Lm`](crate::device::Lm) or [`Reader`](crate::device::Reader) with its layer count);
/// - `load(&mut memory) -> Result<Model, Error>`: a ViT's whole blob is checked by the
///   compiler (`CHECKED`, a [`blob::Embedded`](crate::blob::Embedded): a bad blob fails the
///   build) and `load` only confirms the flash holds those bytes (an FNV-1a 32 of the whole
///   blob); for the other kinds `load` parses and checks the whole blob;
/// - `pixel_map(mean, std)`: a `const fn` for [`PixelMap`](crate::device::PixelMap)
///   (image models).
///
/// The path is resolved like `include_bytes!`'s (relative to the file that invokes the macro;
/// `concat!(env!("CARGO_MANIFEST_DIR"), "/model.tatn")` works from anywhere).
#[macro_export]
macro_rules! include_model {
    ($name:ident : Vit = $path:expr) => {
        $crate::include_model!(@module $name, $path, 1, $crate::device::Vit<'m>, embedded);
    };
    ($name:ident : Lm = $path:expr) => {
        $crate::include_model!(@module $name, $path, 2,
            $crate::device::Lm<'m, { INFO.layers }>, parse);
    };
    ($name:ident : Reader = $path:expr) => {
        $crate::include_model!(@module $name, $path, 3,
            $crate::device::Reader<'m, { INFO.layers }>, parse);
    };
    ($name:ident : Llama = $path:expr) => {
        $crate::include_model!(@module $name, $path, 4,
            $crate::device::Llama<'m, { INFO.layers }>, parse);
    };
    (@load parse) => {
        /// Parse and check the whole blob, and borrow `memory`.
        pub fn load(memory: &mut Memory) -> Result<Model<'_>, $crate::Error> {
            <Model<'_>>::new(&BLOB.0, &INFO, memory)
        }
    };
    (@load embedded) => {
        /// The whole blob checked by the compiler (a bad blob fails the build).
        pub const CHECKED: $crate::blob::Embedded = $crate::blob::Embedded::vit(BYTES);
        const _: () = INFO.expect_checked(&CHECKED);
        /// Confirm the flash holds the bytes the compiler checked, and borrow `memory`.
        pub fn load(memory: &mut Memory) -> Result<Model<'_>, $crate::Error> {
            <Model<'_>>::embedded(&BLOB.0, &CHECKED, &INFO, memory)
        }
    };
    (@module $name:ident, $path:expr, $kind:expr, $model:ty, $load:ident) => {
        #[allow(non_snake_case, dead_code, missing_docs)]
        pub mod $name {
            const BYTES: &[u8] = include_bytes!($path);
            /// The blob, 16-byte aligned.
            pub static BLOB: $crate::device::Align16<[u8; BYTES.len()]> =
                $crate::device::Align16(*include_bytes!($path));
            /// The header, read by the compiler.
            pub const INFO: $crate::device::ModelInfo = $crate::device::ModelInfo::of(BYTES);
            const _: () = INFO.expect_kind($kind);
            /// Working memory of exactly the size the blob needs.
            pub type Memory =
                $crate::device::Memory<{ INFO.i8_bytes() }, { INFO.i32_entries() }>;
            /// The runtime type.
            pub type Model<'m> = $model;
            $crate::include_model!(@load $load);
            /// The `u8 → i8` input table for `(p/255 − mean) / std` (use in a `const`).
            pub const fn pixel_map(mean: f32, std: f32) -> $crate::device::PixelMap {
                INFO.pixel_map(mean, std)
            }
        }
    };
}
