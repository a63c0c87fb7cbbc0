//! core-attn on an emulated Cortex-M4 (QEMU `mps2-an386`).
//!
//! Runs the integer self-check of every kernel and block and prints one line per case over
//! semihosting, in the same format the host prints (`attn_selftest::format_line`), then the
//! instructions executed (SysTick under `-icount shift=0`). Exits 0 only on success.
#![no_std]
#![no_main]

use core::fmt::Write;
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};

struct Line<'a>(&'a mut hio::HostStream);

impl Write for Line<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write_all(s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().unwrap();
    let mut out = hio::hstdout().unwrap();
    let ok = run(&mut cp.SYST, &mut out).is_ok();
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

fn run(syst: &mut SYST, out: &mut hio::HostStream) -> Result<(), ()> {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00ff_ffff);
    syst.clear_current();
    syst.enable_counter();
    let params = attn_selftest::Params::new(attn_selftest::SEED);
    let mut failed = false;
    let start = SYST::get_current();
    let result = attn_selftest::run(&params, attn_selftest::SEED, &mut |name, data| {
        let mut w = Line(out);
        failed |= attn_selftest::format_line(&mut w, name, data).is_err();
        failed |= w.write_str("\n").is_err();
    });
    let ticks = start.wrapping_sub(SYST::get_current()) & 0x00ff_ffff;
    let mut w = Line(out);
    match result {
        Ok(()) if !failed => {
            let _ = writeln!(w, "selftest done systick={ticks}");
            Ok(())
        }
        Ok(()) => Err(()),
        Err(e) => {
            let _ = writeln!(w, "selftest error: {e}");
            Err(())
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        let _ = writeln!(Line(&mut out), "panic: {info}");
    }
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
