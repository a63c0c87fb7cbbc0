//! Whole-model runners over a parsed [`Blob`]: ViT classifier, decoder-only LM with greedy
//! decoding over per-layer KV caches, and encoder–decoder (encoder once, cross K/V caches filled
//! once, then greedy decoding).
//!
//! Nothing allocates: the caller hands in [`ModelBuffers`] sized from the blob's header
//! ([`Blob::buffers`]) and the KV caches (built from one arena with [`kv_caches`]).
//!
//! - The encoder runs all `T = patches + 1` tokens at once; its output (after the final
//!   LayerNorm) is left in `buffers.normed[..T·D]`.
//! - The decoder runs one token per step (prompt tokens included), so its activation buffers are
//!   one row wide; every step appends that token's keys/values to each layer's cache.
//! - LM head: the blob's head is a [`crate::linear::Linear`]. For a tied head (GPT-2) its
//!   weights are the token-embedding bytes themselves (one table in flash) with a zero bias; the
//!   converter quantizes the final LayerNorm's output symmetrically so that the zero bias is
//!   exact. An untied head is a separately quantized `Linear`.
//! - Logits are int8 with the scale and zero point in the header
//!   ([`crate::blob::Header::logits_scale_bits`]); greedy decoding takes the first maximum.
//!
//! Every runner takes an `observe(layer, activations)` callback that sees the residual stream
//! after each block (`usize::MAX` marks the final LayerNorm output), so the host can report
//! per-layer SQNR; pass `&mut |_, _| {}` to ignore it.

use crate::attention::KvCache;
use crate::blob::{Blob, BufferSizes, ModelKind, NO_TOKEN};
use crate::block::BlockScratch;
use crate::embed::embed_tokens;
use crate::linear::Activation;
use crate::position::add_learned;
use crate::Error;

/// Marks the final LayerNorm's output in `observe` callbacks.
pub const FINAL_NORM: usize = usize::MAX;

/// Caller-provided working memory for a runner (sizes from [`Blob::buffers`]).
#[derive(Debug)]
pub struct ModelBuffers<'b> {
    /// Residual stream.
    pub x: &'b mut [i8],
    /// Block scratch; holds the final LayerNorm output afterwards.
    pub normed: &'b mut [i8],
    /// Block scratch (QKV, MLP hidden, cross K/V projection).
    pub wide: &'b mut [i8],
    /// Attention scores.
    pub scores: &'b mut [i32],
    /// One flattened image patch.
    pub patch: &'b mut [i8],
    /// Logits.
    pub logits: &'b mut [i8],
}

fn too_small(what: &'static str, needed: usize, available: usize) -> Result<(), Error> {
    if available < needed {
        Err(Error::BufferTooSmall {
            what,
            needed,
            available,
        })
    } else {
        Ok(())
    }
}

impl<'b> ModelBuffers<'b> {
    /// Check every buffer is at least the size `sizes` asks for.
    pub fn check(&self, sizes: &BufferSizes) -> Result<(), Error> {
        too_small("x buffer", sizes.x, self.x.len())?;
        too_small("normed buffer", sizes.normed, self.normed.len())?;
        too_small("wide buffer", sizes.wide, self.wide.len())?;
        too_small("scores buffer", sizes.scores, self.scores.len())?;
        too_small("patch buffer", sizes.patch, self.patch.len())?;
        too_small("logits buffer", sizes.logits, self.logits.len())
    }
}

/// Split `arena` into one [`KvCache`] per layer, each holding `capacity` rows of `width` keys
/// and values (`2 · layers · capacity · width` bytes are used).
pub fn kv_caches<'b>(
    arena: &'b mut [i8],
    layers: usize,
    capacity: usize,
    width: usize,
) -> Result<impl Iterator<Item = Result<KvCache<'b>, Error>>, Error> {
    let per = capacity
        .checked_mul(width)
        .and_then(|n| n.checked_mul(2))
        .ok_or(Error::BadDimension {
            what: "kv cache size",
            value: capacity,
        })?;
    let need = per.checked_mul(layers).ok_or(Error::BadDimension {
        what: "kv cache size",
        value: layers,
    })?;
    too_small("kv cache arena", need, arena.len())?;
    if per == 0 {
        return Err(Error::BadDimension {
            what: "kv cache capacity",
            value: 0,
        });
    }
    Ok(arena[..need].chunks_exact_mut(per).map(move |c| {
        let (k, v) = c.split_at_mut(per / 2);
        KvCache::new(k, v, width)
    }))
}

/// Run the ViT encoder on an int8 image (`[C][H][W]`, quantized with the header's input scale
/// and zero point). The output after the final LayerNorm is in `buffers.normed[..T·D]`;
/// returns `T·D`.
pub fn vit_encode(
    blob: &Blob<'_>,
    image: &[i8],
    buffers: &mut ModelBuffers<'_>,
    observe: &mut dyn FnMut(usize, &[i8]),
) -> Result<usize, Error> {
    buffers.check(&blob.buffers())?;
    let e = blob.header().encoder;
    let n = e.tokens() * e.width;
    let emb = blob.vit_embedding()?;
    let x = crate::error::prefix(buffers.x, n, "x buffer")?;
    // The block scratch is free until the first block: when it holds every patch, the patch
    // embedding runs batched (im2col in `wide`, one projection over all patches); else one
    // patch at a time in the one-patch buffer. No extra memory either way.
    let scratch: &mut [i8] = if buffers.wide.len() >= emb.patch.batched_scratch_len() {
        buffers.wide
    } else {
        crate::error::prefix(buffers.patch, emb.patch.patch_len(), "patch buffer")?
    };
    emb.patch
        .run_with_class_token(image, emb.class_token, scratch, x)?;
    add_learned(x, e.width, 0, emb.positions, &emb.position_add)?;
    let mut scratch = BlockScratch {
        normed: buffers.normed,
        wide: buffers.wide,
        scores: buffers.scores,
    };
    for i in 0..e.layers {
        blob.encoder_block(i)?.run(x, &mut scratch)?;
        observe(i, x);
    }
    let normed = crate::error::prefix(scratch.normed, n, "normed buffer")?;
    blob.encoder_final_norm()?.run(x, normed)?;
    observe(FINAL_NORM, normed);
    Ok(n)
}

/// Classify an int8 image: returns the int8 logits (`classes` values, dequantize with the
/// header's logits scale and zero point).
pub fn vit_classify<'r>(
    blob: &Blob<'_>,
    image: &[i8],
    buffers: &'r mut ModelBuffers<'_>,
    observe: &mut dyn FnMut(usize, &[i8]),
) -> Result<&'r [i8], Error> {
    if blob.kind() != ModelKind::VitClassifier {
        return Err(crate::error::bad_blob("not a ViT classifier"));
    }
    vit_encode(blob, image, buffers, observe)?;
    let e = blob.header().encoder;
    let logits = crate::error::prefix(buffers.logits, e.classes, "logits buffer")?;
    let class_token = crate::error::prefix(buffers.normed, e.width, "normed buffer")?;
    blob.classifier()?
        .run(class_token, logits, Activation::Identity)?;
    Ok(logits)
}

/// Encoder–decoder: encode the image and fill every decoder layer's cross-attention cache
/// (`cross.len()` must be the decoder's layer count).
pub fn encode_for_decoder(
    blob: &Blob<'_>,
    image: &[i8],
    cross: &mut [KvCache<'_>],
    buffers: &mut ModelBuffers<'_>,
    observe: &mut dyn FnMut(usize, &[i8]),
) -> Result<(), Error> {
    if blob.kind() != ModelKind::EncoderDecoder {
        return Err(crate::error::bad_blob("not an encoder-decoder"));
    }
    let d = blob.header().decoder;
    crate::error::check_len("cross caches", d.layers, cross.len())?;
    let n = vit_encode(blob, image, buffers, observe)?;
    for (i, cache) in cross.iter_mut().enumerate() {
        let c = blob.decoder_block(i)?.cross.ok_or(crate::error::bad_blob(
            "decoder block without cross-attention",
        ))?;
        let encoded = crate::error::prefix(buffers.normed, n, "normed buffer")?;
        c.fill_cache(encoded, buffers.wide, cache)?;
    }
    Ok(())
}

/// Feed one token at position `caches[0].len()` through the decoder; returns the int8 logits of
/// the next token. `cross` is required (and only allowed) for encoder–decoder blobs.
pub fn decoder_step<'r>(
    blob: &Blob<'_>,
    token: u32,
    caches: &mut [KvCache<'_>],
    cross: Option<&[KvCache<'_>]>,
    buffers: &'r mut ModelBuffers<'_>,
    observe: &mut dyn FnMut(usize, &[i8]),
) -> Result<&'r [i8], Error> {
    buffers.check(&blob.buffers())?;
    let d = blob.header().decoder;
    if !blob.kind().has_decoder() {
        return Err(crate::error::bad_blob("model has no decoder"));
    }
    crate::error::check_len("kv caches", d.layers, caches.len())?;
    if let Some(c) = cross {
        crate::error::check_len("cross caches", d.layers, c.len())?;
    }
    if cross.is_some() != (blob.kind() == ModelKind::EncoderDecoder) {
        return Err(Error::BadDimension {
            what: "cross-attention caches (given iff encoder-decoder)",
            value: cross.map_or(0, |c| c.len()),
        });
    }
    let position = caches.first().map_or(0, |c| c.len());
    let emb = blob.token_embedding()?;
    let w = d.width;
    let x = crate::error::prefix(buffers.x, w, "x buffer")?;
    embed_tokens(&[token], emb.table, w, x)?;
    add_learned(x, w, position, emb.positions, &emb.position_add)?;
    let mut scratch = BlockScratch {
        normed: buffers.normed,
        wide: buffers.wide,
        scores: buffers.scores,
    };
    for (i, cache) in caches.iter_mut().enumerate() {
        // `cross` holds one cache per layer (checked above).
        let cc = cross.and_then(|c| c.get(i));
        blob.decoder_block(i)?.run(x, cache, cc, &mut scratch)?;
        observe(i, x);
    }
    let normed = crate::error::prefix(scratch.normed, w, "normed buffer")?;
    blob.decoder_final_norm()?.run(x, normed)?;
    observe(FINAL_NORM, normed);
    let logits = crate::error::prefix(buffers.logits, d.vocab, "logits buffer")?;
    blob.lm_head()?.run(normed, logits, Activation::Identity)?;
    Ok(logits)
}

/// Index of the first largest value.
pub fn argmax_i8(v: &[i8]) -> usize {
    let Some((&first, rest)) = v.split_first() else {
        return 0;
    };
    let (mut best, mut best_value) = (0, first);
    for (i, &x) in rest.iter().enumerate() {
        if x > best_value {
            best = i + 1;
            best_value = x;
        }
    }
    best
}

/// Greedy decoding: clear the caches, feed `prompt` token by token, then append the argmax
/// token until `max_new` tokens were generated or the model's eos token was emitted (it is
/// kept). Writes prompt + generated ids to `out` and returns how many were written.
/// `on_logits(position, logits)` sees the logits computed after feeding position `position`.
#[allow(clippy::too_many_arguments)]
pub fn greedy(
    blob: &Blob<'_>,
    prompt: &[u32],
    max_new: usize,
    out: &mut [u32],
    caches: &mut [KvCache<'_>],
    cross: Option<&[KvCache<'_>]>,
    buffers: &mut ModelBuffers<'_>,
    on_logits: &mut dyn FnMut(usize, &[i8]),
) -> Result<usize, Error> {
    if prompt.is_empty() {
        return Err(Error::BadDimension {
            what: "prompt length",
            value: 0,
        });
    }
    let eos = blob.header().decoder.eos_token;
    greedy_ids(
        prompt,
        max_new,
        out,
        eos,
        caches,
        |position, token, caches| {
            let logits = decoder_step(blob, token, caches, cross, buffers, &mut |_, _| {})?;
            on_logits(position, logits);
            Ok(argmax_i8(logits) as u32)
        },
    )
}

/// The greedy loop of [`greedy`] and [`crate::llama::llama_greedy`] (the prompt is not empty):
/// clear `caches`, feed the prompt, then append `step`'s argmax until `max_new` ids or `eos`.
/// `step(position, token, caches)` feeds `token` at `position` and returns the argmax of the
/// logits it computed.
pub(crate) fn greedy_ids<'c>(
    prompt: &[u32],
    max_new: usize,
    out: &mut [u32],
    eos: u32,
    caches: &mut [KvCache<'c>],
    mut step: impl FnMut(usize, u32, &mut [KvCache<'c>]) -> Result<u32, Error>,
) -> Result<usize, Error> {
    let total = prompt.len().saturating_add(max_new);
    let out = crate::error::prefix(out, total, "generated ids buffer")?;
    for c in caches.iter_mut() {
        c.clear();
    }
    // `total ≥ prompt.len()`: the prompt fits.
    crate::error::prefix(out, prompt.len(), "generated ids buffer")?.copy_from_slice(prompt);
    let mut len = prompt.len();
    let mut fed = 0;
    loop {
        // Feed every token not yet in the cache; only the last one's logits matter
        // (`fed < len ≤ total = out.len()`).
        let mut next = 0u32;
        while let Some(&token) = out.get(fed).filter(|_| fed < len) {
            next = step(fed, token, caches)?;
            fed += 1;
        }
        // `len < total = out.len()` here, else this returns.
        let Some(slot) = out.get_mut(len) else {
            return Ok(len);
        };
        *slot = next;
        len += 1;
        if eos != NO_TOKEN && next == eos || len == total {
            return Ok(len);
        }
    }
}

/// Host-side helpers (`std` feature): owned buffers sized from a blob.
#[cfg(feature = "std")]
pub mod host {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Owned storage for every buffer a blob needs.
    #[derive(Debug, Clone)]
    pub struct OwnedBuffers {
        /// See [`ModelBuffers::x`].
        pub x: Vec<i8>,
        /// See [`ModelBuffers::normed`].
        pub normed: Vec<i8>,
        /// See [`ModelBuffers::wide`].
        pub wide: Vec<i8>,
        /// See [`ModelBuffers::scores`].
        pub scores: Vec<i32>,
        /// See [`ModelBuffers::patch`].
        pub patch: Vec<i8>,
        /// See [`ModelBuffers::logits`].
        pub logits: Vec<i8>,
        /// Self-attention KV arena.
        pub kv: Vec<i8>,
        /// Cross-attention KV arena.
        pub cross_kv: Vec<i8>,
    }

    impl OwnedBuffers {
        /// Buffers of exactly the sizes in `s`.
        pub fn new(s: &BufferSizes) -> Self {
            OwnedBuffers {
                x: vec![0; s.x],
                normed: vec![0; s.normed],
                wide: vec![0; s.wide],
                scores: vec![0; s.scores],
                patch: vec![0; s.patch],
                logits: vec![0; s.logits],
                kv: vec![0; s.kv],
                cross_kv: vec![0; s.cross_kv],
            }
        }

        /// Borrow the runner buffers and the (self, cross) KV caches of `blob`'s decoder.
        #[allow(clippy::type_complexity)]
        pub fn split<'s>(
            &'s mut self,
            blob: &Blob<'_>,
        ) -> Result<(ModelBuffers<'s>, Vec<KvCache<'s>>, Vec<KvCache<'s>>), Error> {
            let d = blob.header().decoder;
            let e = blob.header().encoder;
            let caches = if blob.kind().has_decoder() {
                kv_caches(&mut self.kv, d.layers, d.max_positions, d.width)?
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            let cross = if blob.kind() == ModelKind::EncoderDecoder {
                kv_caches(&mut self.cross_kv, d.layers, e.tokens(), d.width)?
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            Ok((
                ModelBuffers {
                    x: &mut self.x,
                    normed: &mut self.normed,
                    wide: &mut self.wide,
                    scores: &mut self.scores,
                    patch: &mut self.patch,
                    logits: &mut self.logits,
                },
                caches,
                cross,
            ))
        }
    }
}
