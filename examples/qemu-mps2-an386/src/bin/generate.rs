//! Generate text with the shipped character LM (greedy) and print it, piece by piece, with the
//! vocabulary carried by the blob.
#![no_std]
#![no_main]
use core_attn::device::Sampler;
use qemu_example::print;
use static_cell::ConstStaticCell;

core_attn::include_model!(LM: Lm = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/char-lm.tatn"));
// 75 KB of buffers and KV cache: a static cell puts them in .bss, not on the stack.
static MEMORY: ConstStaticCell<LM::Memory> = ConstStaticCell::new(LM::Memory::new());
const PROMPT: &str = "And God said, Let there be ";
qemu_example::entry!(run);

fn run() -> Result<(), core_attn::Error> {
    let mut lm = LM::load(MEMORY.take())?;
    let vocab = lm.vocab().expect("the blob carries its vocabulary");
    let mut prompt = [0u32; 64];
    let n = vocab.encode(PROMPT, &mut prompt)?;
    print!("{PROMPT}");
    lm.generate(&prompt[..n], 60, &mut Sampler::Greedy, |id| {
        print!("{}", vocab.text(id).unwrap_or("\u{fffd}"))
    })?;
    print!("\n");
    Ok(())
}
