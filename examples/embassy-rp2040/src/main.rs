//! tiny-attn on a Raspberry Pi Pico (RP2040, Cortex-M0+ at 125 MHz) with embassy: classifies a
//! few MNIST test digits with the shipped int8 ViT (`models/vit-mnist.tatn`, embedded in flash)
//! and logs, over defmt (RTT), the digit found, the true label and the time of each inference
//! (µs from embassy-time: the RP2040's 1 MHz timer). `cargo run --release` flashes it with
//! probe-rs.
//!
//! The model part is what the core-attn README shows: `include_model!`, a `PixelMap`, the
//! memory, `load` and `classify_u8`; the rest is board glue (clocks, timing, logging).
#![no_std]
#![no_main]

use defmt::info;
use embassy_executor::Spawner;
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

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    // Default clocks: 125 MHz system clock from the Pico's 12 MHz crystal.
    let _p = embassy_rp::init(Default::default());
    info!("rp2040: {=u32} Hz", embassy_rp::clocks::clk_sys_freq());

    let mut vit = match MNIST::load(MEMORY.take()) {
        Ok(v) => v,
        Err(e) => defmt::panic!("model refused: {}", e),
    };

    let mut correct = 0;
    for (i, (image, &label)) in digits::DIGITS.iter().zip(&digits::LABELS).enumerate() {
        let t0 = Instant::now();
        let digit = match vit.classify_u8(image, &PIXELS) {
            Ok(d) => d,
            Err(e) => defmt::panic!("image {}: {}", i, e),
        };
        let us = t0.elapsed().as_micros();
        correct += usize::from(digit == label as usize);
        info!(
            "image {=usize}: digit {=usize}, label {=u32}, {=u64} us",
            i, digit, label, us
        );
    }
    info!("{=usize}/{=usize} correct", correct, digits::DIGITS.len());
}
