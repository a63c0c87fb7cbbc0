//! Serve mode of the Raspberry Pi Pico: the first embedded model (`TATN_MODEL=model.tatn`)
//! answers `attn-link` requests (model info, run one input, generate N tokens) on UART0 at
//! 115200 baud 8N1 — TX on GP0 (pin 1), RX on GP1 (pin 2) — timed in µs by the 1 MHz timer.
//! Boot messages, line errors and a refused model go to defmt (RTT). `cargo run --release
//! --bin serve` flashes it with probe-rs; `tools device --port /dev/ttyUSB0 --baud 115200
//! MODEL info` talks to it.
#![no_std]
#![no_main]

use defmt_rtt as _;
use panic_probe as _;

use attn_link::Server;
use board_common::link::{ServeFailure, FRAME, MAX_IDS};
use core::convert::Infallible;
use rp_pico::hal::clocks::Clock as _;
use rp_pico::hal::fugit::RateExtU32;
use rp_pico::hal::gpio::bank0::{Gpio0, Gpio1};
use rp_pico::hal::gpio::{FunctionUart, Pin, PullNone, PullUp};
use rp_pico::hal::uart::{DataBits, Enabled, StopBits, UartConfig, UartPeripheral};
use rp_pico::hal::{self, pac, Timer};

#[path = "../micros.rs"]
mod micros;
use micros::Micros;

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// Baud rate of the link (`tools device --baud`).
const BAUD: u32 = 115_200;

/// UART0 on GP0 (TX) and GP1 (RX, pulled up so that an unconnected line idles high).
type Uart0 = UartPeripheral<
    Enabled,
    pac::UART0,
    (
        Pin<Gpio0, FunctionUart, PullNone>,
        Pin<Gpio1, FunctionUart, PullUp>,
    ),
>;

/// The HAL's UART as an `embedded_io` port that never fails. The HAL's own
/// `embedded_io::Read` returns a line error (overrun, break, parity, framing) as an error,
/// which would end the server: this adapter logs it, passes on the bytes received before the
/// bad one and keeps reading; the frame's CRC then fails and the server answers an error frame
/// and keeps serving.
struct Port {
    uart: Uart0,
    line_errors: u32,
}

impl embedded_io::ErrorType for Port {
    type Error = Infallible;
}

impl embedded_io::Read for Port {
    /// Block until at least one byte arrives, then take what the FIFO holds (up to `buf`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.uart.read_raw(buf) {
                Ok(n) => return Ok(n),
                Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(e)) => {
                    self.line_errors = self.line_errors.wrapping_add(1);
                    defmt::warn!(
                        "serve: UART0 line error {} (#{=u32})",
                        defmt::Debug2Format(&e.err_type),
                        self.line_errors
                    );
                    let kept = e.discarded.len();
                    if kept > 0 {
                        return Ok(kept);
                    }
                }
            }
        }
    }
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.uart.write_full_blocking(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        // Waits for the transmit FIFO to drain; the HAL's flush cannot fail.
        let _ = embedded_io::Write::flush(&mut self.uart);
        Ok(())
    }
}

#[rp_pico::entry]
fn main() -> ! {
    // `#[entry]` turns these leading `static mut`s into `&'static mut` (no `unsafe`).
    static mut ARENA: Arena = Arena::new();
    static mut PROMPT: [u32; MAX_IDS] = [0; MAX_IDS];
    static mut IDS: [u32; MAX_IDS] = [0; MAX_IDS];
    let Some(mut p) = pac::Peripherals::take() else {
        defmt::panic!("peripherals already taken")
    };
    let Some(m) = MODELS.first() else {
        defmt::panic!("no model embedded")
    };
    let mut watchdog = hal::Watchdog::new(p.WATCHDOG);
    let Ok(clocks) = hal::clocks::init_clocks_and_plls(
        rp_pico::XOSC_CRYSTAL_FREQ,
        p.XOSC,
        p.CLOCKS,
        p.PLL_SYS,
        p.PLL_USB,
        &mut p.RESETS,
        &mut watchdog,
    ) else {
        defmt::panic!("clock setup failed")
    };
    let mut clock = Micros(Timer::new(p.TIMER, &mut p.RESETS, &clocks));
    let sio = hal::Sio::new(p.SIO);
    let pins = rp_pico::Pins::new(p.IO_BANK0, p.PADS_BANK0, sio.gpio_bank0, &mut p.RESETS);
    let uart_pins = (
        pins.gpio0.reconfigure::<FunctionUart, PullNone>(),
        pins.gpio1.reconfigure::<FunctionUart, PullUp>(),
    );
    let config = UartConfig::new(BAUD.Hz(), DataBits::Eight, None, StopBits::One);
    let Ok(uart) = UartPeripheral::new(p.UART0, uart_pins, &mut p.RESETS)
        .enable(config, clocks.peripheral_clock.freq())
    else {
        defmt::panic!("UART0 cannot run at {=u32} baud", BAUD)
    };
    let mut server: Server<Port, FRAME> = Server::new(Port {
        uart,
        line_errors: 0,
    });
    defmt::info!(
        "serve: {=str} on rp2040 UART0 (GP0 TX, GP1 RX) at {=u32} baud (attn-link v{=u8})",
        m.name,
        BAUD,
        attn_link::frame::VERSION
    );
    match ARENA.serve(m, &mut server, &mut clock, PROMPT, IDS) {
        Err(ServeFailure::Model(f)) => defmt::error!(
            "model {=str}: {}; refusing to serve",
            m.name,
            defmt::Display2Format(&f)
        ),
        // The port is infallible and a UART never ends: unreachable in practice.
        Err(ServeFailure::Port(_)) | Ok(()) => defmt::error!("serve: the serial port ended"),
    }
    loop {
        cortex_m::asm::bkpt();
    }
}
