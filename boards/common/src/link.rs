//! Serve an embedded model over a serial link (feature `link`): the firmware side of
//! `tools device` (protocol: the `attn-link` crate). The same code runs over any
//! `embedded_io::{Read, Write}` port — the QEMU boards' CMSDK UART ([`crate::uart`]), an
//! STM32 USART or RP2040 UART from their HALs.

use attn_link::model::{ModelHandler, Workspace};
use attn_link::server::ServeError;
use attn_link::Server;
use core_attn::blob::ModelKind;
use core_attn::model::ModelBuffers;
use embedded_io::{Read, Write};

use crate::{check, kv_slots, Arena, Caches, Clock, Embedded, Failure};

/// Frames of up to 4 KiB of payload (a 28×112 image fits): two buffers of this size.
pub const FRAME: usize = attn_link::MAX_FRAME;

/// Prompt and generated-ids capacity of the serve firmware (a model's positions + 1 at most).
pub const MAX_IDS: usize = 257;

/// [`Clock`] as the link's clock.
struct LinkClock<'c>(&'c mut dyn Clock);

impl attn_link::model::Clock for LinkClock<'_> {
    fn now(&mut self) -> u64 {
        self.0.now()
    }
    fn unit(&self) -> &'static str {
        self.0.unit()
    }
}

/// Why serving stopped.
#[derive(Debug)]
pub enum ServeFailure<E> {
    /// The model was refused (see [`Failure`]).
    Model(Failure),
    /// The port failed.
    Port(ServeError<E>),
}

impl<
        const X: usize,
        const NORMED: usize,
        const WIDE: usize,
        const SCORES: usize,
        const PATCH: usize,
        const LOGITS: usize,
        const KV: usize,
        const CROSS: usize,
        const IDS: usize,
        const LAYERS: usize,
    > Arena<X, NORMED, WIDE, SCORES, PATCH, LOGITS, KV, CROSS, IDS, LAYERS>
{
    /// Serve model `m` over `io` until the port ends (a UART never does): check it fits
    /// (as [`Arena::run`] does), then answer requests with `server`, timing them with `clock`.
    /// `prompt` and `ids` hold received prompts and generated ids.
    pub fn serve<IO: Read + Write>(
        &mut self,
        m: &Embedded,
        server: &mut Server<IO, FRAME>,
        clock: &mut dyn Clock,
        prompt: &mut [u32],
        ids: &mut [u32],
    ) -> Result<(), ServeFailure<IO::Error>> {
        let blob = check(m, &Self::SIZES, LAYERS, IDS).map_err(ServeFailure::Model)?;
        let h = *blob.header();
        let d = h.decoder;
        let has_decoder = blob.kind().has_decoder();
        let mut caches: Caches<'_, LAYERS> = if has_decoder {
            kv_slots::<LAYERS>(&mut self.kv, d.layers, d.max_positions, d.width)
                .map_err(ServeFailure::Model)?
        } else {
            Caches::new()
        };
        let mut cross: Caches<'_, LAYERS> = if blob.kind() == ModelKind::EncoderDecoder {
            kv_slots::<LAYERS>(&mut self.cross, d.layers, h.encoder.tokens(), d.width)
                .map_err(ServeFailure::Model)?
        } else {
            Caches::new()
        };
        let ws = Workspace {
            buffers: ModelBuffers {
                x: &mut self.x,
                normed: &mut self.normed,
                wide: &mut self.wide,
                scores: &mut self.scores,
                patch: &mut self.patch,
                logits: &mut self.logits,
            },
            caches: &mut caches,
            cross: &mut cross,
            prompt,
            ids,
        };
        let mut handler = ModelHandler::new(
            m.blob,
            m.name,
            FRAME - attn_link::frame::OVERHEAD,
            ws,
            LinkClock(clock),
        )
        .map_err(|e| ServeFailure::Model(Failure::Model(e)))?;
        server.run(&mut handler).map_err(ServeFailure::Port)
    }
}
