//! core-attn on an STM32F411 "Black Pill" (Cortex-M4F at 100 MHz from the 25 MHz HSE): every
//! embedded model on its inputs, result lines and DWT cycles per inference / token over defmt
//! (RTT), then an f32 kernel baseline ([`baseline`]). `cargo run --release` flashes it with
//! probe-rs. Ends in `bkpt` (probe-rs exits 0) on success, a defmt panic otherwise.
#![no_std]
#![no_main]

use defmt_rtt as _;
use panic_probe as _;

use board_common::dwt::DwtCycles;
use board_common::rtt::DefmtLines;
use stm32f4xx_hal::{pac, prelude::*};

#[cfg(feature = "f32-baseline")]
mod baseline;

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

#[cortex_m_rt::entry]
fn main() -> ! {
    static mut ARENA: Arena = Arena::new();
    #[cfg(feature = "f32-baseline")]
    static mut F32: baseline::Buffers = baseline::Buffers::new();
    let (Some(dp), Some(mut cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        defmt::panic!("peripherals already taken")
    };
    let rcc = dp.RCC.constrain();
    let clocks = rcc.cfgr.use_hse(25.MHz()).sysclk(100.MHz()).freeze();
    defmt::info!("stm32f411: sysclk {=u32} Hz", clocks.sysclk().raw());
    let mut clock = DwtCycles::new(&mut cp.DCB, cp.DWT);
    let mut out = DefmtLines::new();
    if !ARENA.run(MODELS, &mut out, &mut clock) {
        defmt::panic!("model run failed")
    }
    #[cfg(feature = "f32-baseline")]
    baseline::run(MODELS, F32, &mut out, &mut clock);
    defmt::info!("all models ok");
    loop {
        cortex_m::asm::bkpt();
    }
}
