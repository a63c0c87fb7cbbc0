//! Classify the embedded MNIST test digits with the shipped ViT and print each digit found.
#![no_std]
#![no_main]
use qemu_example::{print_line, DIGITS};

core_attn::include_model!(MNIST: Vit = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/vit-mnist.tatn"));
// The model takes (v/255 - 0.5)/0.5: the u8 -> int8 table is computed by the compiler.
const PIXELS: core_attn::device::PixelMap = MNIST::pixel_map(0.5, 0.5);
qemu_example::entry!(run);

fn run() -> Result<(), core_attn::Error> {
    let mut memory = MNIST::Memory::new(); // 5.6 KB on the stack
    let mut vit = MNIST::load(&mut memory)?;
    for image in &DIGITS {
        print_line("digit ", vit.classify_u8(image, &PIXELS)?);
    }
    Ok(())
}
