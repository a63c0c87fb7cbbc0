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
        if kind == ModelKind::Llama {
            let ov = crate::error::bad_blob("dimensions overflow");
            return self.decoder.llama().buffers().map_err(|_| ov);
        }
        self.required_buffers_const(kind)
    }

    /// [`Header::required_buffers_as`] for the kinds 1–3, as a `const fn` (shared by the
    /// compile-time check of an embedded blob and [`Blob::parse`]).
    pub(super) const fn required_buffers_const(
        &self,
        kind: ModelKind,
    ) -> Result<BufferSizes, Error> {
        const fn m(a: usize, b: usize) -> Result<usize, Error> {
            match a.checked_mul(b) {
                Some(v) => Ok(v),
                None => Err(crate::error::bad_blob("dimensions overflow")),
            }
        }
        const fn max(a: usize, b: usize) -> usize {
            if a > b {
                a
            } else {
                b
            }
        }
        let e = &self.encoder;
        let d = &self.decoder;
        let mut s = BufferSizes::ZERO;
        if kind.has_encoder() {
            let t = e.tokens();
            s.x = tri!(m(t, e.width));
            s.normed = s.x;
            s.wide = tri!(m(t, max(tri!(m(3, e.width)), e.mlp)));
            s.scores = t;
            s.patch = tri!(m(e.channels, tri!(m(e.patch, e.patch))));
            s.logits = e.classes;
        }
        if kind.has_decoder() {
            s.x = max(s.x, d.width);
            s.normed = max(s.normed, d.width);
            s.wide = max(s.wide, max(tri!(m(3, d.width)), d.mlp));
            s.scores = max(s.scores, d.max_positions);
            s.logits = max(s.logits, d.vocab);
            s.kv = tri!(m(tri!(m(2, d.layers)), tri!(m(d.max_positions, d.width))));
            if matches!(kind, ModelKind::EncoderDecoder) {
                let t = e.tokens();
                s.wide = max(s.wide, tri!(m(t, tri!(m(2, d.width)))));
                s.scores = max(s.scores, t);
                s.cross_kv = tri!(m(tri!(m(2, d.layers)), tri!(m(t, d.width))));
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

    /// The header of kind `kind` from its words (a `const fn`: the compile-time check of an
    /// embedded blob and [`Blob::parse`] share it).
    pub(super) const fn from_words(
        kind: ModelKind,
        w: &[u32; HEADER_WORDS],
    ) -> Result<Self, Error> {
        const fn u(w: &[u32; HEADER_WORDS], i: usize) -> usize {
            w[i] as usize
        }
        const fn flag(w: &[u32; HEADER_WORDS], i: usize) -> Result<bool, Error> {
            match w[i] {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(crate::error::bad_blob("header flag not 0 or 1")),
            }
        }
        // Word 33 is a Llama's kv_heads; reserved (zero) for the other kinds.
        let mut i = if matches!(kind, ModelKind::Llama) {
            34
        } else {
            33
        };
        while i < HEADER_WORDS {
            if w[i] != 0 {
                return Err(crate::error::bad_blob("reserved header words not zero"));
            }
            i += 1;
        }
        let post_norm = tri!(flag(w, 9));
        let sinusoidal = tri!(flag(w, 16));
        let tied_head = tri!(flag(w, 17));
        Ok(Header {
            kind,
            encoder: EncoderDims {
                layers: u(w, 0),
                width: u(w, 1),
                heads: u(w, 2),
                mlp: u(w, 3),
                channels: u(w, 4),
                height: u(w, 5),
                image_width: u(w, 6),
                patch: u(w, 7),
                classes: u(w, 8),
                post_norm,
            },
            decoder: DecoderDims {
                layers: u(w, 10),
                width: u(w, 11),
                heads: u(w, 12),
                mlp: u(w, 13),
                vocab: u(w, 14),
                max_positions: u(w, 15),
                sinusoidal,
                tied_head,
                start_token: w[18],
                eos_token: w[19],
                pad_token: w[20],
                kv_heads: u(w, 33),
            },
            input_scale_bits: w[21],
            input_zero_point: w[22] as i32,
            logits_scale_bits: w[23],
            logits_zero_point: w[24] as i32,
            buffers: BufferSizes {
                x: u(w, 25),
                normed: u(w, 26),
                wide: u(w, 27),
                scores: u(w, 28),
                patch: u(w, 29),
                logits: u(w, 30),
                kv: u(w, 31),
                cross_kv: u(w, 32),
            },
        })
    }

    /// Check the dimensions are usable (non-zero where needed, heads divide widths, ids in
    /// range, zero points int8): the Llama part.
    ///
    /// `kind` is `self.kind` ([`Blob::parse_as`] passes it as a constant where it can: the
    /// other kinds' checks are not linked).
    ///
    /// Split in two: [`Header::check_const`] (zero points, encoder, decoder) then, for a
    /// Llama, this (for a Llama `check_const` checks only the zero points: the order of the
    /// checks is zero points, encoder, Llama, decoder).
    pub(super) fn check_llama(&self, kind: ModelKind) -> Result<(), Error> {
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
        Ok(())
    }

    /// The checks of [`Header::check`] for the ViT encoder and the GPT-2 decoder (all of them
    /// for kinds 1–3; the zero points alone for a Llama), as a `const fn` (the compile-time
    /// check of an embedded blob and [`Blob::parse`] share it).
    pub(super) const fn check_const(&self, kind: ModelKind) -> Result<(), Error> {
        const fn zp(z: i32) -> bool {
            -128 <= z && z <= 127
        }
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
            if matches!(kind, ModelKind::VitClassifier) != (e.classes > 0) {
                return Err(crate::error::bad_blob(
                    "class count does not match the model kind",
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
            let ids = [d.start_token, d.eos_token, d.pad_token];
            let mut i = 0;
            while i < ids.len() {
                if ids[i] != NO_TOKEN && ids[i] as usize >= d.vocab {
                    return Err(crate::error::bad_blob(
                        "special token id outside the vocabulary",
                    ));
                }
                i += 1;
            }
            if matches!(kind, ModelKind::EncoderDecoder) && d.start_token == NO_TOKEN {
                return Err(crate::error::bad_blob(
                    "encoder-decoder without a start token",
                ));
            }
        }
        Ok(())
    }
}
