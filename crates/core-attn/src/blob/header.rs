//! The header: its fields, its words, its checks.

use super::*;

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
    pub(super) fn required_buffers_as(&self, kind: ModelKind) -> Result<BufferSizes, Error> {
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
    pub(super) fn to_words(self) -> [u32; HEADER_WORDS] {
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

    pub(super) fn from_words(kind: ModelKind, w: &[u32; HEADER_WORDS]) -> Result<Self, Error> {
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
    pub(super) fn check(&self, kind: ModelKind) -> Result<(), Error> {
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
