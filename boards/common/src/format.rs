//! The stable result-line format, shared by the firmware and the host reference.
//!
//! ```text
//! model NAME kind KIND flash BYTES ram BYTES
//! result NAME image I top1 K logits L0,L1,...      (ViT classifier: int8 logits)
//! result NAME prompt I logits_fnv1a H ids T0,T1,... (decoder LM: prompt + generated ids)
//! result NAME image I logits_fnv1a H ids T0,T1,...  (encoder-decoder: start id + generated)
//! perf ...                                         (timing; board-specific, never compared)
//! ```
//! Only `result` lines are compared between host and device.
//!
//! `H` (8 lowercase hex digits) is the FNV-1a 32-bit hash ([`core_attn::blob::fnv1a32`]) of
//! the int8 logits of **every decoder step**, in order, each step's full vocabulary row as
//! bytes — the prompt positions included (a prompt of `P` tokens and `N` generated ids: `P +
//! N − 1` steps; the last generated id is never fed back). Ids alone would let a logits
//! difference that never flips an argmax pass; the hash does not ([`LogitsFnv`]).

use core::fmt::{self, Write};

use core_attn::blob::{Blob, ModelKind};

/// Short name of a model kind.
pub fn kind_name(k: ModelKind) -> &'static str {
    match k {
        ModelKind::VitClassifier => "vit-classifier",
        ModelKind::DecoderLm => "decoder-lm",
        ModelKind::EncoderDecoder => "encoder-decoder",
        ModelKind::Llama => "llama",
    }
}

fn list<T: fmt::Display>(w: &mut dyn Write, v: &[T]) -> fmt::Result {
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            w.write_char(',')?;
        }
        write!(w, "{x}")?;
    }
    Ok(())
}

/// `model NAME kind KIND flash BYTES ram BYTES` (RAM: the runner buffers it needs).
pub fn model_line(w: &mut dyn Write, name: &str, blob: &Blob<'_>) -> fmt::Result {
    writeln!(
        w,
        "model {name} kind {} flash {} ram {}",
        kind_name(blob.kind()),
        blob.len(),
        blob.buffers().total_bytes()
    )
}

/// `result NAME image I top1 K logits ...` and a newline.
pub fn vit_line(
    w: &mut dyn Write,
    name: &str,
    image: usize,
    top1: usize,
    logits: &[i8],
) -> fmt::Result {
    write!(w, "result {name} image {image} top1 {top1} logits ")?;
    list(w, logits)?;
    w.write_char('\n')
}

/// `result NAME WHAT I logits_fnv1a H ids ...` and a newline (`WHAT` is `prompt` or
/// `image`; `logits_fnv1a` is [`LogitsFnv::value`] over every decoder step).
pub fn ids_line(
    w: &mut dyn Write,
    name: &str,
    what: &str,
    index: usize,
    logits_fnv1a: u32,
    ids: &[u32],
) -> fmt::Result {
    write!(
        w,
        "result {name} {what} {index} logits_fnv1a {logits_fnv1a:08x} ids "
    )?;
    list(w, ids)?;
    w.write_char('\n')
}

/// FNV-1a (32-bit) of a stream of int8 logit rows, fed one decoder step at a time: after
/// `update(a); update(b)` the value is [`core_attn::blob::fnv1a32`] of `a ++ b` (as bytes).
/// No allocation: the firmware hashes each step's logits as they are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogitsFnv(u32);

impl Default for LogitsFnv {
    fn default() -> Self {
        Self::new()
    }
}

impl LogitsFnv {
    /// The FNV-1a offset basis (the hash of nothing).
    pub const fn new() -> Self {
        LogitsFnv(0x811c_9dc5)
    }

    /// Feed one step's logits.
    pub fn update(&mut self, logits: &[i8]) {
        for &q in logits {
            self.0 = (self.0 ^ u32::from(q as u8)).wrapping_mul(0x0100_0193);
        }
    }

    /// The hash so far.
    pub const fn value(&self) -> u32 {
        self.0
    }
}
