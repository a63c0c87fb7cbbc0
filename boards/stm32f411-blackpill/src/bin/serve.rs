//! Serve mode of the STM32F411 Black Pill: the first embedded model (`TATN_MODEL=model.tatn`)
//! answers `attn-link` requests (model info, run one input, generate N tokens) on USART1 at
//! 115200 baud 8N1 — TX on PA9, RX on PA10 — timed in DWT cycles at 100 MHz. Boot messages,
//! line errors and a refused model go to defmt (RTT). `cargo run --release --bin serve`
//! flashes it with probe-rs; `tools device --port /dev/ttyUSB0 --baud 115200 MODEL info`
//! talks to it.
#![no_std]
#![no_main]

use defmt_rtt as _;
use panic_probe as _;

use attn_link::Server;
use board_common::dwt::DwtCycles;
use board_common::link::{ServeFailure, FRAME, MAX_IDS};
use core::convert::Infallible;
use embedded_hal_nb::serial::{Read as NbRead, Write as NbWrite};
use stm32f4xx_hal::nb;
use stm32f4xx_hal::pac::{self, USART1};
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::serial::{Config, Serial};

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// Baud rate of the link (`tools device --baud`).
const BAUD: u32 = 115_200;

/// The HAL's USART as a blocking `embedded_io` port. The HAL's own `embedded_io::Write`
/// returns `Ok(0)` when the transmitter is busy (which `write_all` treats as a bug) and it has
/// no `embedded_io::Read`: this adapter blocks on both sides. A line error (overrun, framing,
/// noise, parity) drops that byte and is logged; the frame's CRC then fails and the server
/// answers an error frame and keeps serving, so the port itself never fails.
struct Port {
    usart: Serial<USART1>,
    line_errors: u32,
}

impl embedded_io::ErrorType for Port {
    type Error = Infallible;
}

impl embedded_io::Read for Port {
    /// Block until one byte arrives, then take what else is already received.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            loop {
                match NbRead::read(&mut self.usart) {
                    Ok(b) => {
                        *slot = b;
                        n += 1;
                        break;
                    }
                    Err(nb::Error::WouldBlock) if n > 0 => return Ok(n),
                    Err(nb::Error::WouldBlock) => {}
                    Err(nb::Error::Other(e)) => {
                        self.line_errors = self.line_errors.wrapping_add(1);
                        defmt::warn!(
                            "serve: USART1 line error {} (#{=u32})",
                            defmt::Debug2Format(&e),
                            self.line_errors
                        );
                    }
                }
            }
        }
        Ok(n)
    }
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            // Block until the data register is free (this USART reports no transmit errors).
            let _ = nb::block!(NbWrite::write(&mut self.usart, b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        let _ = nb::block!(NbWrite::flush(&mut self.usart));
        Ok(())
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    // `#[entry]` turns these leading `static mut`s into `&'static mut` (no `unsafe`).
    static mut ARENA: Arena = Arena::new();
    static mut PROMPT: [u32; MAX_IDS] = [0; MAX_IDS];
    static mut IDS: [u32; MAX_IDS] = [0; MAX_IDS];
    let (Some(dp), Some(mut cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        defmt::panic!("peripherals already taken")
    };
    let Some(m) = MODELS.first() else {
        defmt::panic!("no model embedded")
    };
    let rcc = dp.RCC.constrain();
    let clocks = rcc.cfgr.use_hse(25.MHz()).sysclk(100.MHz()).freeze();
    let mut clock = DwtCycles::new(&mut cp.DCB, cp.DWT);
    let gpioa = dp.GPIOA.split();
    let config = Config::default().baudrate(BAUD.bps());
    let Ok(usart) = dp.USART1.serial((gpioa.pa9, gpioa.pa10), config, &clocks) else {
        defmt::panic!("USART1 cannot run at {=u32} baud", BAUD)
    };
    let mut server: Server<Port, FRAME> = Server::new(Port {
        usart,
        line_errors: 0,
    });
    defmt::info!(
        "serve: {=str} on stm32f411 USART1 (PA9 TX, PA10 RX) at {=u32} baud, sysclk {=u32} Hz (attn-link v{=u8})",
        m.name,
        BAUD,
        clocks.sysclk().raw(),
        attn_link::frame::VERSION
    );
    match ARENA.serve(m, &mut server, &mut clock, PROMPT, IDS) {
        Err(ServeFailure::Model(f)) => {
            defmt::error!(
                "model {=str}: {}; refusing to serve",
                m.name,
                defmt::Display2Format(&f)
            )
        }
        // The port is infallible and a UART never ends: unreachable in practice.
        Err(ServeFailure::Port(_)) | Ok(()) => defmt::error!("serve: the serial port ended"),
    }
    loop {
        cortex_m::asm::bkpt();
    }
}
