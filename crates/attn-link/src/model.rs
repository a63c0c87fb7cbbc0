//! The device-side [`Handler`] for a core-attn model blob (feature `model`): answers
//! [`Request::Info`], [`Request::Classify`], [`Request::Generate`] and
//! [`Request::TeacherForce`] with core-attn's runners (`vit_classify`, `encode_for_decoder`,
//! `greedy`, `decoder_step`; for a Llama blob `llama_greedy` and `llama_step`), timed by a
//! user-supplied [`Clock`]. Every input is checked before anything runs; a bad one is an
//! error frame, never a panic.
//!
//! A Llama ([`kind_code`] 3) is served like the GPT-2 decoder: `Generate` answers the ids of
//! `core_attn::llama::llama_greedy` (prompt + new ids; an emitted eos is kept and ends the
//! generation, whatever the blob's stop rule: a host that stops *before* a llama2.c eos,
//! as `tools simulate` does, drops it), `TeacherForce` one `llama_step` row per id.

use core_attn::attention::KvCache;
use core_attn::blob::{Blob, ModelKind};
use core_attn::llama;
use core_attn::model::{self as runner, ModelBuffers};

use crate::msg::{unit_code, ErrorCode, Ids, Info, Request, Response};
use crate::server::{Fault, Handler, Reply};

/// A monotonic counter that times requests (SysTick instructions under QEMU, DWT cycles,
/// a µs timer).
pub trait Clock {
    /// Current count (callers subtract two readings).
    fn now(&mut self) -> u64;
    /// What one count is: `instructions`, `cycles` or `us`.
    fn unit(&self) -> &'static str;
}

/// Working memory of a [`ModelHandler`] (sizes from the blob's header, see
/// `Blob::buffers`).
pub struct Workspace<'a, 'b> {
    /// Runner buffers.
    pub buffers: ModelBuffers<'b>,
    /// One self-attention KV cache per decoder layer (empty for a ViT; a Llama's are
    /// `kv_heads · head_dim` wide).
    pub caches: &'a mut [KvCache<'b>],
    /// One cross-attention KV cache per decoder layer (encoder–decoder only).
    pub cross: &'a mut [KvCache<'b>],
    /// Room for a received prompt.
    pub prompt: &'a mut [u32],
    /// Room for prompt + generated ids.
    pub ids: &'a mut [u32],
}

/// Serves one model blob.
pub struct ModelHandler<'a, 'b, C: Clock> {
    blob: Blob<'b>,
    checksum: u32,
    name: &'a str,
    max_payload: u16,
    ws: Workspace<'a, 'b>,
    clock: C,
}

fn model(_: core_attn::Error) -> Fault {
    Fault::new(ErrorCode::Model, 0)
}

fn bad_input(detail: usize) -> Fault {
    Fault::new(ErrorCode::BadInput, detail as u32)
}

/// The blob's own checksum (bytes 8..12 of its header).
pub fn blob_checksum(bytes: &[u8]) -> u32 {
    bytes
        .get(8..12)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

/// Wire code of a model kind (core-attn's blob kind order, from 0): 0 ViT classifier, 1 decoder
/// LM, 2 encoder–decoder, 3 Llama.
pub fn kind_code(k: ModelKind) -> u8 {
    match k {
        ModelKind::VitClassifier => 0,
        ModelKind::DecoderLm => 1,
        ModelKind::EncoderDecoder => 2,
        ModelKind::Llama => 3,
    }
}

/// The kind generates tokens over per-layer KV caches: a GPT-2-style decoder, an
/// encoder–decoder or a Llama.
fn is_decoder(kind: ModelKind) -> bool {
    kind.has_decoder() || kind == ModelKind::Llama
}

impl<'a, 'b, C: Clock> ModelHandler<'a, 'b, C> {
    /// A handler for the blob `bytes` (parsed and checked here: a blob that fails
    /// `Blob::parse` or needs larger buffers than `ws` is refused). `max_payload` is what the
    /// server's frames carry at most (announced in [`Info`]).
    pub fn new(
        bytes: &'b [u8],
        name: &'a str,
        max_payload: usize,
        ws: Workspace<'a, 'b>,
        clock: C,
    ) -> Result<Self, core_attn::Error> {
        let blob = Blob::parse(bytes)?;
        ws.buffers.check(&blob.buffers())?;
        let d = blob.header().decoder;
        if is_decoder(blob.kind()) && ws.caches.len() != d.layers {
            return Err(core_attn::Error::BadDimension {
                what: "kv caches (one per decoder layer)",
                value: ws.caches.len(),
            });
        }
        if blob.kind() == ModelKind::EncoderDecoder && ws.cross.len() != d.layers {
            return Err(core_attn::Error::BadDimension {
                what: "cross kv caches (one per decoder layer)",
                value: ws.cross.len(),
            });
        }
        Ok(ModelHandler {
            checksum: blob_checksum(bytes),
            blob,
            name,
            max_payload: u16::try_from(max_payload).unwrap_or(u16::MAX),
            ws,
            clock,
        })
    }

    /// The clock.
    pub fn clock(&mut self) -> &mut C {
        &mut self.clock
    }

    fn image_len(&self) -> usize {
        let e = self.blob.header().encoder;
        e.channels * e.height * e.image_width
    }

    /// Checks the image a request carries (required iff the model has an encoder), and for
    /// an encoder–decoder encodes it into the cross caches. Returns the encode time.
    fn encode(&mut self, image: &[i8]) -> Result<u64, Fault> {
        match self.blob.kind() {
            ModelKind::EncoderDecoder => {
                if image.len() != self.image_len() {
                    return Err(bad_input(image.len()));
                }
                let t0 = self.clock.now();
                runner::encode_for_decoder(
                    &self.blob,
                    image,
                    self.ws.cross,
                    &mut self.ws.buffers,
                    &mut |_, _| {},
                )
                .map_err(model)?;
                Ok(self.clock.now().saturating_sub(t0))
            }
            _ if !image.is_empty() => Err(bad_input(image.len())),
            _ => Ok(0),
        }
    }

    fn check_ids(&self, ids: &Ids<'_>) -> Result<(), Fault> {
        let vocab = self.blob.header().decoder.vocab;
        match ids.iter().find(|&t| t as usize >= vocab) {
            Some(t) => Err(bad_input(t as usize)),
            None => Ok(()),
        }
    }

    fn classify(&mut self, image: &[i8], reply: &mut dyn Reply) -> Result<(), Fault> {
        if self.blob.kind() != ModelKind::VitClassifier {
            return Err(Fault::new(ErrorCode::WrongKind, 0));
        }
        if image.len() != self.image_len() {
            return Err(bad_input(image.len()));
        }
        let t0 = self.clock.now();
        let logits = runner::vit_classify(&self.blob, image, &mut self.ws.buffers, &mut |_, _| {})
            .map_err(model)?;
        let time = self.clock.now().saturating_sub(t0);
        reply.send(&Response::Logits { time, logits })
    }

    fn generate(
        &mut self,
        max_new: u16,
        prompt: &Ids<'_>,
        image: &[i8],
        reply: &mut dyn Reply,
    ) -> Result<(), Fault> {
        if !is_decoder(self.blob.kind()) {
            return Err(Fault::new(ErrorCode::WrongKind, 0));
        }
        let d = self.blob.header().decoder;
        let max_new = max_new as usize;
        let n = prompt.len();
        if n == 0 || max_new == 0 {
            return Err(bad_input(0));
        }
        self.check_ids(prompt)?;
        // The last generated token is never fed: prompt + max_new - 1 positions.
        if n + max_new - 1 > d.max_positions {
            return Err(bad_input(n + max_new));
        }
        if n + max_new > self.ws.ids.len() || n > self.ws.prompt.len() {
            return Err(bad_input(n + max_new));
        }
        for (slot, t) in self.ws.prompt.iter_mut().zip(prompt.iter()) {
            *slot = t;
        }
        let encode = self.encode(image)?;
        let cross = (self.blob.kind() == ModelKind::EncoderDecoder).then_some(&*self.ws.cross);
        let clock = &mut self.clock;
        let start = clock.now();
        let mut last = start;
        let mut tokens = 0u32;
        let prompt = self.ws.prompt.get(..n).unwrap_or(&[]);
        let mut on_logits = |_: usize, _: &[i8]| {
            last = clock.now();
            tokens = tokens.wrapping_add(1);
        };
        let len = if self.blob.kind() == ModelKind::Llama {
            llama::llama_greedy(
                &self.blob,
                prompt,
                max_new,
                self.ws.ids,
                self.ws.caches,
                &mut self.ws.buffers,
                &mut on_logits,
            )
        } else {
            runner::greedy(
                &self.blob,
                prompt,
                max_new,
                self.ws.ids,
                self.ws.caches,
                cross,
                &mut self.ws.buffers,
                &mut on_logits,
            )
        }
        .map_err(model)?;
        reply.send(&Response::Ids {
            encode,
            decode: last.saturating_sub(start),
            tokens,
            ids: Ids::Words(self.ws.ids.get(..len).unwrap_or(&[])),
        })
    }

    fn teacher_force(
        &mut self,
        ids: &Ids<'_>,
        image: &[i8],
        reply: &mut dyn Reply,
    ) -> Result<(), Fault> {
        if !is_decoder(self.blob.kind()) {
            return Err(Fault::new(ErrorCode::WrongKind, 0));
        }
        let d = self.blob.header().decoder;
        if ids.is_empty() || ids.len() > d.max_positions {
            return Err(bad_input(ids.len()));
        }
        self.check_ids(ids)?;
        let t0 = self.clock.now();
        self.encode(image)?;
        for c in self.ws.caches.iter_mut() {
            c.clear();
        }
        let mut rows = 0u32;
        for (pos, t) in ids.iter().enumerate() {
            let logits = if self.blob.kind() == ModelKind::Llama {
                llama::llama_step(
                    &self.blob,
                    t,
                    self.ws.caches,
                    &mut self.ws.buffers,
                    &mut |_, _| {},
                )
            } else {
                runner::decoder_step(
                    &self.blob,
                    t,
                    self.ws.caches,
                    (self.blob.kind() == ModelKind::EncoderDecoder).then_some(&*self.ws.cross),
                    &mut self.ws.buffers,
                    &mut |_, _| {},
                )
            }
            .map_err(model)?;
            reply.send(&Response::Row {
                position: pos as u16,
                logits,
            })?;
            rows += 1;
        }
        let time = self.clock.now().saturating_sub(t0);
        reply.send(&Response::Done { time, rows })
    }
}

impl<C: Clock> Handler for ModelHandler<'_, '_, C> {
    fn handle(&mut self, req: &Request<'_>, reply: &mut dyn Reply) -> Result<(), Fault> {
        match *req {
            Request::Info => {
                let max_ids = self.ws.ids.len().min(self.ws.prompt.len() + 1);
                reply.send(&Response::Info(Info {
                    kind: kind_code(self.blob.kind()),
                    unit: unit_code(self.clock.unit()),
                    max_payload: self.max_payload,
                    blob_len: self.blob.len() as u32,
                    checksum: self.checksum,
                    max_ids: u16::try_from(max_ids).unwrap_or(u16::MAX),
                    name: self.name,
                }))
            }
            Request::Classify { image } => self.classify(image, reply),
            Request::Generate {
                max_new,
                prompt,
                image,
            } => self.generate(max_new, &prompt, image, reply),
            Request::TeacherForce { ids, image } => self.teacher_force(&ids, image, reply),
        }
    }
}
