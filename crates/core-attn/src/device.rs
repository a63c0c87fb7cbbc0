//! The device runtime: a converted model in your own firmware in a few lines.
//!
//! [`include_model!`](crate::include_model) embeds a `.tatn` blob 16-byte aligned and reads its
//! header **at compile time** (a `const fn`, no build script): the working memory
//! ([`Memory`]) is a type whose array sizes come from the blob itself, so a model always gets
//! exactly the RAM it needs, a model that does not fit the chip fails to link, and a blob whose
//! header is invalid fails the build with a message naming the problem:
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
use crate::blob::{Blob, BufferSizes, ModelKind, Vocab, HEADER_WORDS, MAGIC, NO_TOKEN};
use crate::model::{self as runner, ModelBuffers};
use crate::Error;

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
    /// the header's buffer sizes agree with them; the checksum and the sections are checked by
    /// [`Blob::parse`] when the model is loaded.
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
            layers: if kind.has_decoder() {
                h.decoder.layers
            } else {
                0
            },
            image: if kind == ModelKind::DecoderLm {
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

/// A `u8` pixel → int8 model input table (see [`ModelInfo::pixel_map`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelMap {
    /// `table[p]` is the model input for pixel value `p`.
    pub table: [i8; 256],
}

impl PixelMap {
    /// Map `pixels` into `out` (same length).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] when the lengths differ.
    pub fn quantize(&self, pixels: &[u8], out: &mut [i8]) -> Result<(), Error> {
        crate::error::check_len("image pixels", out.len(), pixels.len())?;
        for (o, &p) in out.iter_mut().zip(pixels) {
            *o = self.table[p as usize];
        }
        Ok(())
    }
}

/// Integer dequantization of int8 values with an `f32` scale from the header:
/// `(q − zero_point) · scale` in Q16.16 fixed point (`65536` is `1.0`), without floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dequant {
    /// 24-bit mantissa of the scale (with the implicit bit).
    mantissa: u32,
    /// `scale · 2^16 = mantissa · 2^shift`.
    shift: i32,
    /// Zero point.
    zero_point: i32,
}

impl Dequant {
    /// From the `f32` bits of a (positive, finite) scale and a zero point; a scale that is
    /// not a positive finite number dequantizes everything to 0.
    pub const fn new(scale_bits: u32, zero_point: i32) -> Dequant {
        let exp = ((scale_bits >> 23) & 0xff) as i32;
        let negative = scale_bits >> 31 != 0;
        if negative || exp == 0xff || exp == 0 {
            // Negative, infinite, NaN, zero or subnormal (too small to matter): 0.
            return Dequant {
                mantissa: 0,
                shift: 0,
                zero_point,
            };
        }
        Dequant {
            mantissa: (scale_bits & 0x7f_ffff) | 0x80_0000,
            // value = mantissa · 2^(exp − 150); · 2^16.
            shift: exp - 150 + 16,
            zero_point,
        }
    }

    /// `(q − zero_point) · scale` in Q16.16, rounded, saturated to `i32`.
    pub fn q16(&self, q: i8) -> i32 {
        let d = (q as i64 - self.zero_point as i64) * self.mantissa as i64;
        let v = if self.shift >= 0 {
            d.checked_shl(self.shift as u32).unwrap_or(0)
        } else {
            let s = (-self.shift) as u32;
            if s >= 63 {
                0
            } else {
                (d + (1i64 << (s - 1))) >> s
            }
        };
        v.clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
}

/// How [`Lm::generate`] picks the next token from the logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Sampler {
    /// The first largest logit (the same ids as [`crate::model::greedy`]).
    Greedy,
    /// Sample from `softmax(logits / temperature)`, integer only: weights `2^(−Δ·log2 e / T)`
    /// in Q16 for a logit `Δ` below the maximum, drawn with a xorshift32 generator.
    Temperature {
        /// Temperature in Q16.16 (`65536` is `1.0`); 0 behaves as greedy.
        temperature_q16: u32,
        /// Generator state (never 0; advanced by every draw).
        state: u32,
    },
}

impl Sampler {
    /// Temperature sampling with `temperature` in thousandths (`800` is 0.8), seeded with
    /// `seed` (the same seed gives the same tokens).
    pub const fn temperature(temperature_milli: u32, seed: u32) -> Sampler {
        Sampler::Temperature {
            temperature_q16: ((temperature_milli as u64 * 65536 + 500) / 1000) as u32,
            state: if seed == 0 { 0x9e37_79b9 } else { seed },
        }
    }

    /// Pick a token from `logits` (dequantized with `dq`).
    pub fn pick(&mut self, logits: &[i8], dq: &Dequant) -> u32 {
        let (t, state) = match self {
            Sampler::Temperature {
                temperature_q16,
                state,
            } if *temperature_q16 > 0 => (*temperature_q16, state),
            _ => return runner::argmax_i8(logits) as u32,
        };
        let best = runner::argmax_i8(logits);
        let Some(&top) = logits.get(best) else {
            return 0;
        };
        let top_q16 = dq.q16(top) as i64;
        // log2(e) in Q16.
        const LOG2E_Q16: i64 = 94_548;
        let weight = |q: i8| -> u64 {
            let delta = top_q16 - dq.q16(q) as i64; // ≥ 0, Q16
                                                    // e = Δ · log2(e) / T, Q16.
            let e = delta.saturating_mul(LOG2E_Q16) / (t as i64);
            exp2_neg_q16(e)
        };
        let total: u64 = logits.iter().map(|&q| weight(q)).sum();
        // xorshift32
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *state = x;
        // A uniform draw in 0..total (`total` < 2^16 · vocabulary, so the product fits u128).
        let mut r = ((x as u128 * total as u128) >> 32) as u64;
        for (i, &q) in logits.iter().enumerate() {
            let w = weight(q);
            if r < w {
                return i as u32;
            }
            r -= w;
        }
        best as u32
    }
}

/// `2^(−e)` for `e ≥ 0` in Q16, as Q16 (`65536` is 1): table of `2^(−i/16)` and linear
/// interpolation.
fn exp2_neg_q16(e: i64) -> u64 {
    const T: [u64; 17] = [
        65536, 62757, 60097, 57549, 55109, 52773, 50535, 48393, 46341, 44376, 42495, 40693, 38968,
        37316, 35734, 34219, 32768,
    ];
    let e = e.max(0) as u64;
    let int = e >> 16;
    if int >= 17 {
        return 0;
    }
    let frac = e & 0xffff; // Q16
    let i = (frac >> 12) as usize; // 0..16
    let f = frac & 0xfff; // Q12 between table entries
    let (a, b) = (T[i & 15], T[(i & 15) + 1]);
    let v = a - (((a - b) * f) >> 12);
    v >> int
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
fn open<'m, const K: u16>(blob: &'m [u8], info: &ModelInfo) -> Result<Blob<'m>, Error> {
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

fn caches<'m, const L: usize>(
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

/// A ViT image classifier over its [`Memory`].
#[derive(Debug)]
pub struct Vit<'m> {
    blob: Blob<'m>,
    buffers: ModelBuffers<'m>,
    image: &'m mut [i8],
}

impl<'m> Vit<'m> {
    /// Parse `blob` (described by `info`, see [`ModelInfo::of`]) and borrow `memory`.
    ///
    /// # Errors
    ///
    /// Anything [`Blob::parse`] rejects; [`Error::BadBlob`] when the blob is not a ViT
    /// classifier or `info` does not describe it; [`Error::BufferTooSmall`] when `memory` is
    /// smaller than `info` asks for.
    pub fn new<const I8: usize, const I32: usize>(
        blob: &'m [u8],
        info: &ModelInfo,
        memory: &'m mut Memory<I8, I32>,
    ) -> Result<Self, Error> {
        let blob = open::<{ ModelKind::VitClassifier as u16 }>(blob, info)?;
        let p = memory.split(info)?;
        Ok(Vit {
            blob,
            buffers: p.buffers,
            image: p.image,
        })
    }

    /// The parsed blob.
    pub fn blob(&self) -> &Blob<'m> {
        &self.blob
    }

    /// Classify an int8 image (`[C][H][W]`, already quantized); returns the class (first
    /// largest logit). The logits stay readable through [`Vit::logits`].
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] when `image` is not `C·H·W` long; errors of the kernels.
    pub fn classify(&mut self, image: &[i8]) -> Result<usize, Error> {
        let logits = runner::vit_classify(&self.blob, image, &mut self.buffers, &mut |_, _| {})?;
        Ok(runner::argmax_i8(logits))
    }

    /// Classify a `u8` image (`[C][H][W]`) through `pixels` (see [`ModelInfo::pixel_map`]).
    ///
    /// # Errors
    ///
    /// As [`Vit::classify`].
    pub fn classify_u8(&mut self, image: &[u8], pixels: &PixelMap) -> Result<usize, Error> {
        pixels.quantize(image, self.image)?;
        let logits =
            runner::vit_classify(&self.blob, self.image, &mut self.buffers, &mut |_, _| {})?;
        Ok(runner::argmax_i8(logits))
    }

    /// Classify an `f32` image (the model's normalized input) quantized with the header's
    /// input scale and zero point. Targets without an FPU get the u8 path
    /// ([`Vit::classify_u8`]) instead.
    ///
    /// # Errors
    ///
    /// As [`Vit::classify`].
    #[cfg(any(not(target_os = "none"), target_abi = "eabihf"))]
    pub fn classify_f32(&mut self, image: &[f32]) -> Result<usize, Error> {
        let h = self.blob.header();
        quantize_f32(image, h.input_scale_bits, h.input_zero_point, self.image)?;
        let logits =
            runner::vit_classify(&self.blob, self.image, &mut self.buffers, &mut |_, _| {})?;
        Ok(runner::argmax_i8(logits))
    }

    /// The int8 logits of the last classification (one per class).
    pub fn logits(&self) -> &[i8] {
        let n = self.blob.header().encoder.classes;
        self.buffers.logits.get(..n).unwrap_or(&[])
    }

    /// Integer dequantization of the logits ([`Dequant::q16`]).
    pub fn dequant(&self) -> Dequant {
        let h = self.blob.header();
        Dequant::new(h.logits_scale_bits, h.logits_zero_point)
    }
}

/// Quantize a normalized `f32` image with scale bits and zero point (FPU targets and host).
#[cfg(any(not(target_os = "none"), target_abi = "eabihf"))]
fn quantize_f32(image: &[f32], scale_bits: u32, zp: i32, out: &mut [i8]) -> Result<(), Error> {
    crate::error::check_len("image values", out.len(), image.len())?;
    let inv = 1.0 / f32::from_bits(scale_bits);
    for (o, &v) in out.iter_mut().zip(image) {
        let r = v * inv;
        // Round half away from zero without libm (`as` saturates, NaN → 0).
        let r = if r >= 0.0 { r + 0.5 } else { r - 0.5 };
        *o = (r as i32).saturating_add(zp).clamp(-128, 127) as i8;
    }
    Ok(())
}

/// A decoder-only language model with its `L` per-layer KV caches.
#[derive(Debug)]
pub struct Lm<'m, const L: usize> {
    blob: Blob<'m>,
    buffers: ModelBuffers<'m>,
    caches: [KvCache<'m>; L],
}

impl<'m, const L: usize> Lm<'m, L> {
    /// Parse `blob` (described by `info`) and borrow `memory`; `L` must be its layer count.
    ///
    /// # Errors
    ///
    /// As [`Vit::new`], for a decoder LM; [`Error::ShapeMismatch`] when `L` differs from the
    /// decoder's layers.
    pub fn new<const I8: usize, const I32: usize>(
        blob: &'m [u8],
        info: &ModelInfo,
        memory: &'m mut Memory<I8, I32>,
    ) -> Result<Self, Error> {
        let blob = open::<{ ModelKind::DecoderLm as u16 }>(blob, info)?;
        let d = blob.header().decoder;
        let p = memory.split(info)?;
        Ok(Lm {
            blob,
            buffers: p.buffers,
            caches: caches::<L>(p.kv, d.layers, d.max_positions, d.width)?,
        })
    }

    /// The parsed blob.
    pub fn blob(&self) -> &Blob<'m> {
        &self.blob
    }

    /// The vocabulary carried by the blob, if any.
    pub fn vocab(&self) -> Option<Vocab<'m>> {
        self.blob.vocab()
    }

    /// Integer dequantization of the logits ([`Dequant::q16`]).
    pub fn dequant(&self) -> Dequant {
        let h = self.blob.header();
        Dequant::new(h.logits_scale_bits, h.logits_zero_point)
    }

    /// Tokens in the KV cache (the position of the next token).
    pub fn position(&self) -> usize {
        self.caches.first().map_or(0, |c| c.len())
    }

    /// Forget the sequence (clear every cache).
    pub fn reset(&mut self) {
        for c in &mut self.caches {
            c.clear();
        }
    }

    /// Feed one token at [`Lm::position`]; returns the int8 logits of the next one.
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] for an id outside the vocabulary, [`Error::CacheFull`] past
    /// the model's positions.
    pub fn step(&mut self, token: u32) -> Result<&[i8], Error> {
        let capacity = self.blob.header().decoder.max_positions;
        if self.position() >= capacity {
            return Err(Error::CacheFull { capacity });
        }
        runner::decoder_step(
            &self.blob,
            token,
            &mut self.caches,
            None,
            &mut self.buffers,
            &mut |_, _| {},
        )
    }

    /// Start a new sequence with `prompt`; returns the logits after its last token.
    ///
    /// # Errors
    ///
    /// [`Error::BadDimension`] for an empty prompt; as [`Lm::step`].
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<&[i8], Error> {
        let Some((&last, init)) = prompt.split_last() else {
            return Err(Error::BadDimension {
                what: "prompt length",
                value: 0,
            });
        };
        self.reset();
        for &t in init {
            self.step(t)?;
        }
        self.step(last)
    }

    /// Prefill `prompt`, then generate up to `max_new` tokens with `sampler`, handing each
    /// to `on_token` as it is produced; stops after the model's eos token (which is handed
    /// over too). Returns the number of generated tokens. With [`Sampler::Greedy`] the ids
    /// are those of [`crate::model::greedy`].
    ///
    /// # Errors
    ///
    /// As [`Lm::prefill`]; [`Error::CacheFull`] when prompt + generated tokens exceed the
    /// model's positions.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_new: usize,
        sampler: &mut Sampler,
        mut on_token: impl FnMut(u32),
    ) -> Result<usize, Error> {
        let dq = self.dequant();
        let eos = self.blob.header().decoder.eos_token;
        let mut next = sampler.pick(self.prefill(prompt)?, &dq);
        let mut n = 0;
        while n < max_new {
            on_token(next);
            n += 1;
            if (eos != NO_TOKEN && next == eos) || n == max_new {
                break;
            }
            next = sampler.pick(self.step(next)?, &dq);
        }
        Ok(n)
    }
}

/// An encoder–decoder (image → token ids) with its self- and cross-attention caches.
#[derive(Debug)]
pub struct Reader<'m, const L: usize> {
    blob: Blob<'m>,
    buffers: ModelBuffers<'m>,
    image: &'m mut [i8],
    caches: [KvCache<'m>; L],
    cross: [KvCache<'m>; L],
}

impl<'m, const L: usize> Reader<'m, L> {
    /// Parse `blob` (described by `info`) and borrow `memory`; `L` must be its decoder layers.
    ///
    /// # Errors
    ///
    /// As [`Lm::new`], for an encoder–decoder.
    pub fn new<const I8: usize, const I32: usize>(
        blob: &'m [u8],
        info: &ModelInfo,
        memory: &'m mut Memory<I8, I32>,
    ) -> Result<Self, Error> {
        let blob = open::<{ ModelKind::EncoderDecoder as u16 }>(blob, info)?;
        let h = *blob.header();
        let d = h.decoder;
        let p = memory.split(info)?;
        Ok(Reader {
            blob,
            buffers: p.buffers,
            image: p.image,
            caches: caches::<L>(p.kv, d.layers, d.max_positions, d.width)?,
            cross: caches::<L>(p.cross, d.layers, h.encoder.tokens(), d.width)?,
        })
    }

    /// The parsed blob.
    pub fn blob(&self) -> &Blob<'m> {
        &self.blob
    }

    /// The vocabulary carried by the blob, if any.
    pub fn vocab(&self) -> Option<Vocab<'m>> {
        self.blob.vocab()
    }

    /// Read an int8 image (`[C][H][W]`): encode it, then decode greedily from the start token
    /// up to `max_new` tokens (stopping after eos), handing each id to `on_token`. Returns
    /// the number of ids produced; they are those of [`crate::model::greedy`] after
    /// [`crate::model::encode_for_decoder`].
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for an image of the wrong size; [`Error::CacheFull`] when
    /// `max_new` exceeds the positions; errors of the kernels.
    pub fn read(
        &mut self,
        image: &[i8],
        max_new: usize,
        on_token: impl FnMut(u32),
    ) -> Result<usize, Error> {
        runner::encode_for_decoder(
            &self.blob,
            image,
            &mut self.cross,
            &mut self.buffers,
            &mut |_, _| {},
        )?;
        self.decode(max_new, on_token)
    }

    /// [`Reader::read`] for a `u8` image through `pixels`.
    ///
    /// # Errors
    ///
    /// As [`Reader::read`].
    pub fn read_u8(
        &mut self,
        image: &[u8],
        pixels: &PixelMap,
        max_new: usize,
        on_token: impl FnMut(u32),
    ) -> Result<usize, Error> {
        pixels.quantize(image, self.image)?;
        runner::encode_for_decoder(
            &self.blob,
            self.image,
            &mut self.cross,
            &mut self.buffers,
            &mut |_, _| {},
        )?;
        self.decode(max_new, on_token)
    }

    /// Encode an int8 image (`[C][H][W]`) into the cross-attention caches and start a new
    /// token sequence; then [`Reader::step`] from the start token decodes it one token at a
    /// time (what [`Reader::read`] does in one call), e.g. to time the encoder apart or to see
    /// every step's logits.
    ///
    /// # Errors
    ///
    /// As [`Reader::read`].
    pub fn encode(&mut self, image: &[i8]) -> Result<(), Error> {
        runner::encode_for_decoder(
            &self.blob,
            image,
            &mut self.cross,
            &mut self.buffers,
            &mut |_, _| {},
        )?;
        for c in &mut self.caches {
            c.clear();
        }
        Ok(())
    }

    /// Tokens in the self-attention cache since [`Reader::encode`].
    pub fn position(&self) -> usize {
        self.caches.first().map_or(0, |c| c.len())
    }

    /// Feed one token at [`Reader::position`] (the first: the header's start token) against
    /// the image of the last [`Reader::encode`]; returns the int8 logits of the next one.
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] for an id outside the vocabulary, [`Error::CacheFull`] past
    /// the model's positions.
    pub fn step(&mut self, token: u32) -> Result<&[i8], Error> {
        let capacity = self.blob.header().decoder.max_positions;
        if self.position() >= capacity {
            return Err(Error::CacheFull { capacity });
        }
        runner::decoder_step(
            &self.blob,
            token,
            &mut self.caches,
            Some(&self.cross),
            &mut self.buffers,
            &mut |_, _| {},
        )
    }

    fn decode(&mut self, max_new: usize, mut on_token: impl FnMut(u32)) -> Result<usize, Error> {
        let d = self.blob.header().decoder;
        for c in &mut self.caches {
            c.clear();
        }
        let mut token = d.start_token;
        let mut n = 0;
        while n < max_new {
            if self.caches.first().map_or(0, |c| c.len()) >= d.max_positions {
                return Err(Error::CacheFull {
                    capacity: d.max_positions,
                });
            }
            let logits = runner::decoder_step(
                &self.blob,
                token,
                &mut self.caches,
                Some(&self.cross),
                &mut self.buffers,
                &mut |_, _| {},
            )?;
            token = runner::argmax_i8(logits) as u32;
            on_token(token);
            n += 1;
            if d.eos_token != NO_TOKEN && token == d.eos_token {
                break;
            }
        }
        Ok(n)
    }
}

/// A Llama-family decoder ([`crate::llama`], blob kind 4) with its `L` per-layer KV caches
/// (`n_kv_heads · head_dim` wide).
#[derive(Debug)]
pub struct Llama<'m, const L: usize> {
    blob: Blob<'m>,
    buffers: ModelBuffers<'m>,
    caches: [KvCache<'m>; L],
}

impl<'m, const L: usize> Llama<'m, L> {
    /// Parse `blob` (described by `info`) and borrow `memory`; `L` must be its layer count.
    ///
    /// # Errors
    ///
    /// As [`Vit::new`], for a Llama; [`Error::ShapeMismatch`] when `L` differs from its layers.
    pub fn new<const I8: usize, const I32: usize>(
        blob: &'m [u8],
        info: &ModelInfo,
        memory: &'m mut Memory<I8, I32>,
    ) -> Result<Self, Error> {
        let blob = open::<{ ModelKind::Llama as u16 }>(blob, info)?;
        let d = blob.header().decoder.llama();
        let p = memory.split(info)?;
        Ok(Llama {
            blob,
            buffers: p.buffers,
            caches: caches::<L>(p.kv, d.layers, d.max_positions, d.kv_width())?,
        })
    }

    /// The parsed blob.
    pub fn blob(&self) -> &Blob<'m> {
        &self.blob
    }

    /// The vocabulary (token pieces) carried by the blob, if any.
    pub fn vocab(&self) -> Option<Vocab<'m>> {
        self.blob.vocab()
    }

    /// Integer dequantization of the logits ([`Dequant::q16`]).
    pub fn dequant(&self) -> Dequant {
        let h = self.blob.header();
        Dequant::new(h.logits_scale_bits, h.logits_zero_point)
    }

    /// Tokens in the KV cache (the position of the next token).
    pub fn position(&self) -> usize {
        self.caches.first().map_or(0, |c| c.len())
    }

    /// Forget the sequence (clear every cache).
    pub fn reset(&mut self) {
        for c in &mut self.caches {
            c.clear();
        }
    }

    /// Feed one token at [`Llama::position`]; returns the int8 logits of the next one.
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] for an id outside the vocabulary, [`Error::CacheFull`] past
    /// the model's positions.
    pub fn step(&mut self, token: u32) -> Result<&[i8], Error> {
        let capacity = self.blob.header().decoder.max_positions;
        if self.position() >= capacity {
            return Err(Error::CacheFull { capacity });
        }
        crate::llama::llama_step(
            &self.blob,
            token,
            &mut self.caches,
            &mut self.buffers,
            &mut |_, _| {},
        )
    }

    /// Start a new sequence with `prompt`; returns the logits after its last token.
    ///
    /// # Errors
    ///
    /// [`Error::BadDimension`] for an empty prompt; as [`Llama::step`].
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<&[i8], Error> {
        let Some((&last, init)) = prompt.split_last() else {
            return Err(Error::BadDimension {
                what: "prompt length",
                value: 0,
            });
        };
        self.reset();
        for &t in init {
            self.step(t)?;
        }
        self.step(last)
    }

    /// Prefill `prompt`, then generate up to `max_new` tokens with `sampler`, handing each
    /// to `on_token`. The blob's stop rule: an eos equal to its BOS (llama2.c) stops *before*
    /// it (not handed over, as `run.c`); any other eos (Hugging Face) stops after it (handed
    /// over). Returns the number of tokens handed over. With [`Sampler::Greedy`] the ids are
    /// those of `tools simulate` on the blob.
    ///
    /// # Errors
    ///
    /// As [`Llama::prefill`]; [`Error::CacheFull`] when prompt + generated tokens exceed the
    /// model's positions.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_new: usize,
        sampler: &mut Sampler,
        mut on_token: impl FnMut(u32),
    ) -> Result<usize, Error> {
        let dq = self.dequant();
        let d = self.blob.header().decoder;
        let stop_before = d.eos_token != NO_TOKEN && d.eos_token == d.start_token;
        let mut next = sampler.pick(self.prefill(prompt)?, &dq);
        let mut n = 0;
        while n < max_new {
            if stop_before && next == d.eos_token {
                break;
            }
            on_token(next);
            n += 1;
            if (d.eos_token != NO_TOKEN && next == d.eos_token) || n == max_new {
                break;
            }
            next = sampler.pick(self.step(next)?, &dq);
        }
        Ok(n)
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
/// - `load(&mut memory) -> Result<Model, Error>` (parses and checks the whole blob);
/// - `pixel_map(mean, std)`: a `const fn` for [`PixelMap`](crate::device::PixelMap)
///   (image models).
///
/// The path is resolved like `include_bytes!`'s (relative to the file that invokes the macro;
/// `concat!(env!("CARGO_MANIFEST_DIR"), "/model.tatn")` works from anywhere).
#[macro_export]
macro_rules! include_model {
    ($name:ident : Vit = $path:expr) => {
        $crate::include_model!(@module $name, $path, 1, $crate::device::Vit<'m>);
    };
    ($name:ident : Lm = $path:expr) => {
        $crate::include_model!(@module $name, $path, 2,
            $crate::device::Lm<'m, { INFO.layers }>);
    };
    ($name:ident : Reader = $path:expr) => {
        $crate::include_model!(@module $name, $path, 3,
            $crate::device::Reader<'m, { INFO.layers }>);
    };
    ($name:ident : Llama = $path:expr) => {
        $crate::include_model!(@module $name, $path, 4,
            $crate::device::Llama<'m, { INFO.layers }>);
    };
    (@module $name:ident, $path:expr, $kind:expr, $model:ty) => {
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
            /// Parse the blob and borrow `memory`.
            pub fn load(memory: &mut Memory) -> Result<Model<'_>, $crate::Error> {
                <Model<'_>>::new(&BLOB.0, &INFO, memory)
            }
            /// The `u8 → i8` input table for `(p/255 − mean) / std` (use in a `const`).
            pub const fn pixel_map(mean: f32, std: f32) -> $crate::device::PixelMap {
                INFO.pixel_map(mean, std)
            }
        }
    };
}
