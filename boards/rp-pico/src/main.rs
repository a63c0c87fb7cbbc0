//! core-attn on a Raspberry Pi Pico (RP2040 Cortex-M0+, 125 MHz): every embedded model on its
//! inputs; result lines and µs per inference / token over defmt (RTT). `cargo run --release`
//! flashes it with probe-rs. Ends in `bkpt` (probe-rs exits 0) on success, a defmt panic
//! otherwise.
#![no_std]
#![no_main]

use defmt_rtt as _;
use panic_probe as _;

use board_common::rtt::DefmtLines;
use rp_pico::hal::{self, pac, Timer};

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

mod micros;
use micros::Micros;

#[rp_pico::entry]
fn main() -> ! {
    static mut ARENA: Arena = Arena::new();
    let Some(mut p) = pac::Peripherals::take() else {
        defmt::panic!("peripherals already taken")
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
    defmt::info!("rp2040: models {=usize}", MODELS.len());
    if ARENA.run(MODELS, &mut DefmtLines::new(), &mut clock) {
        defmt::info!("all models ok");
        loop {
            cortex_m::asm::bkpt();
        }
    }
    defmt::panic!("model run failed")
}
