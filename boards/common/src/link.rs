//! Serve an embedded model over a serial link (feature `link`): the firmware side of
//! `tools device` (protocol: the `attn-link` crate). The same code runs over any
//! `embedded_io::{Read, Write}` port — the QEMU boards' CMSDK UART ([`crate::uart`]), an
//! STM32 USART or RP2040 UART from their HALs.

use attn_link::model::{ModelHandler, Workspace};
use attn_link::server::ServeError;
use attn_link::Server;
use core_attn::attention::KvCache;
use core_attn::blob::ModelKind;
use embedded_io::{Read, Write};

use crate::{check, Arena, ArenaSizes, Clock, Embedded, Failure};

/// Frames of up to 4 KiB of payload (a 28×112 image fits): two buffers of this size.
pub const FRAME: usize = attn_link::MAX_FRAME;

/// Prompt and generated-ids capacity of the serve firmware (the GPT-2-family models' positions
/// + 1; [`attn_link::Info`] announces it, and a longer request is refused with `BadInput`).
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

type Caches<'a, const L: usize> = heapless::Vec<KvCache<'a>, L>;

/// The KV caches of `layers` decoder layers in `arena`, as the attn-link workspace takes them.
fn kv_slots<const L: usize>(
    arena: &mut [i8],
    layers: usize,
    capacity: usize,
    width: usize,
) -> Result<Caches<'_, L>, Failure> {
    let mut v = Caches::<L>::new();
    for c in core_attn::model::kv_caches(arena, layers, capacity, width)? {
        v.push(c?).map_err(|_| Failure::TooManyLayers {
            needs: layers,
            have: L,
        })?;
    }
    Ok(v)
}

impl<S: ArenaSizes, const I8: usize, const I32: usize, const IDS: usize, const LAYERS: usize>
    Arena<S, I8, I32, IDS, LAYERS>
{
    /// Serve model `m` over `io` until the port ends (a UART never does): check it fits
    /// (as [`Arena::run`] does), then answer requests with `server`, timing them with `clock`.
    /// The arena's [`core_attn::device::Memory`] is handed to attn-link's `ModelHandler`
    /// split by [`core_attn::device::Memory::parts`]; `prompt` and `ids` hold received
    /// prompts and generated ids.
    pub fn serve<IO: Read + Write>(
        &mut self,
        m: &Embedded,
        server: &mut Server<IO, FRAME>,
        clock: &mut dyn Clock,
        prompt: &mut [u32],
        ids: &mut [u32],
    ) -> Result<(), ServeFailure<IO::Error>> {
        let blob = check(m, &Self::SIZES, LAYERS, IDS).map_err(ServeFailure::Model)?;
        let info = crate::harness_info(&blob);
        let h = *blob.header();
        let d = h.decoder;
        // A Llama's caches are `kv_heads · head_dim` wide (grouped-query attention).
        let kv_width = if blob.kind() == ModelKind::Llama {
            d.llama().kv_width()
        } else {
            d.width
        };
        let parts = self
            .memory
            .parts(&info)
            .map_err(|e| ServeFailure::Model(Failure::Model(e)))?;
        let mut caches: Caches<'_, LAYERS> = if info.layers > 0 {
            kv_slots::<LAYERS>(parts.kv, info.layers, d.max_positions, kv_width)
                .map_err(ServeFailure::Model)?
        } else {
            Caches::new()
        };
        let mut cross: Caches<'_, LAYERS> = if blob.kind() == ModelKind::EncoderDecoder {
            kv_slots::<LAYERS>(parts.cross, d.layers, h.encoder.tokens(), d.width)
                .map_err(ServeFailure::Model)?
        } else {
            Caches::new()
        };
        let ws = Workspace {
            buffers: parts.buffers,
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

/// The whole serve-mode firmware of a QEMU MPS2/MPS3 board whose UART0 is a CMSDK UART:
/// `serve_firmware!("mps2-an505", CORE_HZ, AN505_UART0, APB_HZ)` after `include!`-ing the
/// board's `model_consts.rs` defines the `#[entry]` that serves the first embedded model on the
/// UART at `base` (clocked at `apb_hz`) at 115200 baud, timed by SysTick at `core_hz`, with
/// boot messages (and a refused model) on semihosting. The two-argument form
/// `serve_firmware!("mps2-an386", CORE_HZ)` is UART0 of the MPS2 boards
/// ([`crate::uart::MPS2_UART0`], APB clock = core clock: mps2-an386, mps2-an500).
#[cfg(all(feature = "qemu", feature = "uart"))]
#[macro_export]
macro_rules! serve_firmware {
    ($board:literal, $core_hz:expr) => {
        $crate::serve_firmware!($board, $core_hz, $crate::uart::MPS2_UART0, $core_hz);
    };
    ($board:literal, $core_hz:expr, $uart_base:expr, $apb_hz:expr) => {
        #[cortex_m_rt::entry]
        fn main() -> ! {
            // `#[entry]` turns these leading `static mut`s into `&'static mut` (no `unsafe`).
            static mut ARENA: Arena = Arena::new();
            static mut PROMPT: [u32; $crate::link::MAX_IDS] = [0; $crate::link::MAX_IDS];
            static mut IDS: [u32; $crate::link::MAX_IDS] = [0; $crate::link::MAX_IDS];
            use core::fmt::Write as _;
            use $crate::link::{ServeFailure, FRAME};
            use $crate::qemu::{self, Semihosting, SysTickClock};
            use $crate::uart::CmsdkUart;
            let mut out = Semihosting::stdout();
            let (Some(cp), Some(m)) = (cortex_m::Peripherals::take(), MODELS.first()) else {
                qemu::exit(false)
            };
            let mut clock = SysTickClock::new(cp.SYST, $core_hz);
            // SAFETY: UART0 of the board (the address the board passes), used by nothing else
            // in this firmware.
            let uart = unsafe { CmsdkUart::new($uart_base, $apb_hz, 115_200) };
            let mut server: attn_link::Server<CmsdkUart, FRAME> = attn_link::Server::new(uart);
            if let Some(o) = out.as_mut() {
                let _ = writeln!(
                    o,
                    "serve: {} on {} UART0 (attn-link v{})",
                    m.name,
                    $board,
                    attn_link::frame::VERSION
                );
            }
            let r = ARENA.serve(m, &mut server, &mut clock, PROMPT, IDS);
            if let (Err(e), Some(o)) = (&r, out.as_mut()) {
                let _ = match e {
                    ServeFailure::Model(f) => {
                        writeln!(o, "error: model {}: {f}; refusing to serve", m.name)
                    }
                    ServeFailure::Port(_) => writeln!(o, "error: serial port failed"),
                };
            }
            qemu::exit(r.is_ok())
        }
    };
}
