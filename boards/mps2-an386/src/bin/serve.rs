//! Serve mode of the emulated Cortex-M4 (QEMU `mps2-an386`): the first embedded model
//! (`TATN_MODEL=path/to/model.tatn`) answers `attn-link` requests on UART0 — model info, run
//! one input, generate N tokens — timed in instructions (SysTick under `-icount shift=0`).
//! `tools device --qemu mps2-an386 MODEL ...` builds this binary, starts QEMU with UART0 on a
//! socket and talks to it. Boot messages (and a refused model) go to semihosting.
#![no_std]
#![no_main]

use core::fmt::Write;

use attn_link::Server;
use board_common::link::{FRAME, MAX_IDS};
use board_common::qemu::{self, Semihosting, SysTickClock};
use board_common::uart::{CmsdkUart, MPS2_UART0};

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// Core and APB clock of the machine.
const CORE_HZ: u32 = 25_000_000;
const BAUD: u32 = 115_200;

#[cortex_m_rt::entry]
fn main() -> ! {
    static mut ARENA: Arena = Arena::new();
    static mut PROMPT: [u32; MAX_IDS] = [0; MAX_IDS];
    static mut IDS: [u32; MAX_IDS] = [0; MAX_IDS];
    let mut out = Semihosting::stdout();
    let (Some(cp), Some(m)) = (cortex_m::Peripherals::take(), MODELS.first()) else {
        qemu::exit(false)
    };
    let mut clock = SysTickClock::new(cp.SYST, CORE_HZ);
    // SAFETY: UART0 of mps2-an386, used by nothing else in this firmware.
    let uart = unsafe { CmsdkUart::new(MPS2_UART0, CORE_HZ, BAUD) };
    let mut server: Server<CmsdkUart, FRAME> = Server::new(uart);
    if let Some(o) = out.as_mut() {
        let _ = writeln!(
            o,
            "serve: {} on UART0 (attn-link v{})",
            m.name,
            attn_link::frame::VERSION
        );
    }
    let r = ARENA.serve(m, &mut server, &mut clock, PROMPT, IDS);
    if let (Err(e), Some(o)) = (&r, out.as_mut()) {
        match e {
            board_common::link::ServeFailure::Model(f) => {
                let _ = writeln!(o, "error: model {}: {f}; refusing to serve", m.name);
            }
            board_common::link::ServeFailure::Port(_) => {
                let _ = writeln!(o, "error: serial port failed");
            }
        }
    }
    qemu::exit(r.is_ok())
}
