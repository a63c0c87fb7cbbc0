//! tiny-attn on an STM32F411 "Black Pill" with embassy: classifies a few MNIST test digits with
//! the shipped int8 ViT (`models/vit-mnist.tatn`, embedded in flash) and logs, over defmt (RTT),
//! the digit found, the true label and the time of each inference (µs from embassy-time, core
//! cycles from the DWT counter). `cargo run --release` flashes it with probe-rs.
//!
//! The model part is what the core-attn README shows: `include_model!`, a `PixelMap`, the
//! memory, `load` and `classify_u8`; the rest is board glue (clocks, timing, logging).
#![no_std]
#![no_main]

use cortex_m::peripheral::DWT;
use defmt::info;
use embassy_executor::Spawner;
use embassy_stm32::time::Hertz;
use embassy_stm32::Config;
use embassy_time::Instant;
use static_cell::ConstStaticCell;
use {defmt_rtt as _, panic_probe as _};

/// The test digits (`u8` pixels, as a camera gives them) and their labels: `build.rs`.
mod digits {
    include!(concat!(env!("OUT_DIR"), "/digits.rs"));
}

// The model: its memory is sized from the blob's header at compile time.
core_attn::include_model!(MNIST: Vit = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/vit-mnist.tatn"));
// The model takes (v/255 - 0.5)/0.5: the u8 -> int8 table is computed by the compiler.
const PIXELS: core_attn::device::PixelMap = MNIST::pixel_map(0.5, 0.5);
// The model's working memory, in .bss (a model too large for the RAM fails to link); taken
// once, without a copy.
static MEMORY: ConstStaticCell<MNIST::Memory> = ConstStaticCell::new(MNIST::Memory::new());

/// 100 MHz from the Black Pill's 25 MHz crystal: 25 MHz / 25 · 200 / 2.
fn clocks() -> Config {
    use embassy_stm32::rcc::{
        AHBPrescaler, APBPrescaler, Hse, HseMode, Pll, PllMul, PllPDiv, PllPreDiv, PllSource,
        Sysclk,
    };
    let mut config = Config::default();
    config.rcc.hse = Some(Hse {
        freq: Hertz(25_000_000),
        mode: HseMode::Oscillator,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV25,
        mul: PllMul::MUL200,
        divp: Some(PllPDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.sys = Sysclk::PLL1_P;
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV2; // APB1 at most 50 MHz
    config.rcc.apb2_pre = APBPrescaler::DIV1;
    config
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_stm32::init(clocks());
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        defmt::panic!("core peripherals already taken")
    };
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();
    info!(
        "stm32f411: {=u32} Hz",
        embassy_stm32::rcc::clocks(&p.RCC)
            .sys
            .to_hertz()
            .map_or(0, |h| h.0)
    );

    let mut vit = match MNIST::load(MEMORY.take()) {
        Ok(v) => v,
        Err(e) => defmt::panic!("model refused: {}", e),
    };

    let mut correct = 0;
    for (i, (image, &label)) in digits::DIGITS.iter().zip(&digits::LABELS).enumerate() {
        let (t0, c0) = (Instant::now(), DWT::cycle_count());
        let digit = match vit.classify_u8(image, &PIXELS) {
            Ok(d) => d,
            Err(e) => defmt::panic!("image {}: {}", i, e),
        };
        let cycles = DWT::cycle_count().wrapping_sub(c0);
        let us = t0.elapsed().as_micros();
        correct += usize::from(digit == label as usize);
        info!(
            "image {=usize}: digit {=usize}, label {=u32}, {=u64} us, {=u32} cycles",
            i, digit, label, us, cycles
        );
    }
    info!("{=usize}/{=usize} correct", correct, digits::DIGITS.len());
}
