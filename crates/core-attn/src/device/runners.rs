//! The runners over a [`Memory`](super::Memory): [`Vit`], [`Lm`], [`Reader`], [`Llama`].

use super::*;

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

    /// The ViT embedded by [`include_model!`](crate::include_model): `blob` (the bytes in
    /// flash) must be the bytes `checked` was computed from at compile time, which
    /// [`Embedded::open`] confirms with their fingerprint instead of running the whole
    /// validation again (the compiler ran it); then borrow `memory`.
    ///
    /// # Errors
    ///
    /// [`Embedded::open`]'s ([`BlobError::Checksum`](crate::BlobError::Checksum) when a byte
    /// of `blob` differs); [`Error::BufferTooSmall`] when `memory` is smaller than `info`
    /// asks for.
    pub fn embedded<const I8: usize, const I32: usize>(
        blob: &'m [u8],
        checked: &Embedded,
        info: &ModelInfo,
        memory: &'m mut Memory<I8, I32>,
    ) -> Result<Self, Error> {
        let blob = checked.open(blob)?;
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
pub(super) fn quantize_f32(
    image: &[f32],
    scale_bits: u32,
    zp: i32,
    out: &mut [i8],
) -> Result<(), Error> {
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
        prefill(self, prompt)
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
        on_token: impl FnMut(u32),
    ) -> Result<usize, Error> {
        generate(self, prompt, max_new, sampler, on_token)
    }
}

impl<const L: usize> Decode for Lm<'_, L> {
    fn reset(&mut self) {
        Lm::reset(self)
    }
    fn step(&mut self, token: u32) -> Result<&[i8], Error> {
        Lm::step(self, token)
    }
    fn dequant(&self) -> Dequant {
        Lm::dequant(self)
    }
    fn eos(&self) -> u32 {
        self.blob.header().decoder.eos_token
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
        prefill(self, prompt)
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
        on_token: impl FnMut(u32),
    ) -> Result<usize, Error> {
        generate(self, prompt, max_new, sampler, on_token)
    }
}

impl<const L: usize> Decode for Llama<'_, L> {
    fn reset(&mut self) {
        Llama::reset(self)
    }
    fn step(&mut self, token: u32) -> Result<&[i8], Error> {
        Llama::step(self, token)
    }
    fn dequant(&self) -> Dequant {
        Llama::dequant(self)
    }
    fn eos(&self) -> u32 {
        self.blob.header().decoder.eos_token
    }
    fn stops_before_eos(&self) -> bool {
        let d = self.blob.header().decoder;
        d.eos_token != NO_TOKEN && d.eos_token == d.start_token
    }
}

/// What [`Lm`] and [`Llama`] share: a sequence over per-layer KV caches, fed one token at a
/// time. Their `prefill` and `generate` are written once over it ([`prefill`], [`generate`];
/// `Lm`'s [`Decode::stops_before_eos`] is a constant `false`). `generate` is
/// `#[inline(always)]`: the size-first build (opt-level "s") of the generate example is then
/// the same instructions as with the two copies (without it: 4 bytes more); at opt-level 3
/// its register allocation moves 8 bytes (without the attribute: identical).
trait Decode {
    /// Forget the sequence.
    fn reset(&mut self);
    /// Feed one token; the logits of the next one.
    fn step(&mut self, token: u32) -> Result<&[i8], Error>;
    /// Dequantization of the logits.
    fn dequant(&self) -> Dequant;
    /// The blob's eos id ([`NO_TOKEN`] if none).
    fn eos(&self) -> u32;
    /// Generation stops *before* an eos (not handed over: a llama2.c blob, whose eos is its
    /// BOS) instead of after it.
    fn stops_before_eos(&self) -> bool {
        false
    }
}

/// [`Lm::prefill`] / [`Llama::prefill`]: a new sequence with `prompt`; the logits after its
/// last token.
fn prefill<'s, M: Decode>(model: &'s mut M, prompt: &[u32]) -> Result<&'s [i8], Error> {
    let Some((&last, init)) = prompt.split_last() else {
        return Err(Error::BadDimension {
            what: "prompt length",
            value: 0,
        });
    };
    model.reset();
    for &t in init {
        model.step(t)?;
    }
    model.step(last)
}

/// [`Lm::generate`] / [`Llama::generate`]: prefill, then up to `max_new` tokens from
/// `sampler`, each handed to `on_token`; stops after the eos (handed over), or before it
/// where [`Decode::stops_before_eos`]. Returns the number of tokens handed over.
#[inline(always)]
fn generate<M: Decode>(
    model: &mut M,
    prompt: &[u32],
    max_new: usize,
    sampler: &mut Sampler,
    mut on_token: impl FnMut(u32),
) -> Result<usize, Error> {
    let dq = model.dequant();
    let eos = model.eos();
    let stop_before = model.stops_before_eos();
    let mut next = sampler.pick(prefill(model, prompt)?, &dq);
    let mut n = 0;
    while n < max_new {
        if stop_before && next == eos {
            break;
        }
        on_token(next);
        n += 1;
        if (eos != NO_TOKEN && next == eos) || n == max_new {
            break;
        }
        next = sampler.pick(model.step(next)?, &dq);
    }
    Ok(n)
}
