//! tiny-attn on a Raspberry Pi Pico (RP2040, Cortex-M0+ at 125 MHz) with embassy: classifies a
//! few MNIST test digits with the shipped int8 ViT (`models/vit-mnist.tatn`, embedded in flash)
//! and logs, over defmt (RTT), the digit found, the true label and the time of each inference
//! (µs from embassy-time: the RP2040's 1 MHz timer). `cargo run --release` flashes it with
//! probe-rs.
//!
//! Two parts: the board glue (clocks, timing, images, logging) and, in the marked `model`
//! module, the only code that touches core-attn.
#![no_std]
#![no_main]

use defmt::info;
use embassy_executor::Spawner;
use embassy_time::Instant;
use {defmt_rtt as _, panic_probe as _};

/// The test images and labels: `build.rs` quantizes them with the model's input parameters.
mod images {
    include!(concat!(env!("OUT_DIR"), "/images.rs"));
}

// ======================= model: the only code that uses core-attn =======================
mod model {
    use core_attn::blob::Blob;
    use core_attn::model::{argmax_i8, vit_classify, ModelBuffers};
    use core_attn::Error;

    // X, NORMED, WIDE, SCORES, PATCH, LOGITS: element counts from the blob header (build.rs).
    include!(concat!(env!("OUT_DIR"), "/model_sizes.rs"));

    /// 16-byte alignment for the blob: its tables are read in place, straight from flash.
    #[repr(C, align(16))]
    struct Align16<B: ?Sized>(B);

    /// The packed model (`TATN_MODEL` in `.cargo/config.toml`).
    static BLOB: &Align16<[u8]> = &Align16(*include_bytes!(env!("TATN_MODEL_FILE")));

    /// The runner's working memory (in `.bss`, sized for this model).
    pub struct Vit {
        blob: Blob<'static>,
        x: [i8; X],
        normed: [i8; NORMED],
        wide: [i8; WIDE],
        scores: [i32; SCORES],
        patch: [i8; PATCH],
        logits: [i8; LOGITS],
    }

    impl Vit {
        /// Validate the blob (checksum, bounds, every kernel's parameters).
        pub fn load() -> Result<Self, Error> {
            Ok(Vit {
                blob: Blob::parse(&BLOB.0)?,
                x: [0; X],
                normed: [0; NORMED],
                wide: [0; WIDE],
                scores: [0; SCORES],
                patch: [0; PATCH],
                logits: [0; LOGITS],
            })
        }

        /// The most likely class of one int8 image.
        pub fn classify(&mut self, image: &[i8]) -> Result<usize, Error> {
            let mut bufs = ModelBuffers {
                x: &mut self.x,
                normed: &mut self.normed,
                wide: &mut self.wide,
                scores: &mut self.scores,
                patch: &mut self.patch,
                logits: &mut self.logits,
            };
            let logits = vit_classify(&self.blob, image, &mut bufs, &mut |_, _| {})?;
            Ok(argmax_i8(logits))
        }
    }
}
// ===================================== end of model =====================================

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    // Default clocks: 125 MHz system clock from the Pico's 12 MHz crystal.
    let _p = embassy_rp::init(Default::default());
    info!("rp2040: {=u32} Hz", embassy_rp::clocks::clk_sys_freq());

    let Some(vit) = cortex_m::singleton!(: Option<model::Vit> = None) else {
        defmt::panic!("model buffers already taken")
    };
    let vit = match model::Vit::load() {
        Ok(v) => vit.insert(v),
        Err(e) => defmt::panic!("model refused: {}", e),
    };

    let mut correct = 0;
    for (i, (image, &label)) in images::IMAGES.iter().zip(&images::LABELS).enumerate() {
        let t0 = Instant::now();
        let digit = match vit.classify(image) {
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
    info!("{=usize}/{=usize} correct", correct, images::IMAGES.len());
}
