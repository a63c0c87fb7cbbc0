//! The stable result-line format, shared by the firmware and the host reference.
//!
//! ```text
//! model NAME kind KIND flash BYTES ram BYTES
//! result NAME image I top1 K logits L0,L1,...      (ViT classifier: int8 logits)
//! result NAME prompt I ids T0,T1,...               (decoder LM: prompt + generated ids)
//! result NAME image I ids T0,T1,...                (encoder-decoder: start id + generated)
//! perf ...                                         (timing; board-specific, never compared)
//! ```
//! Only `result` lines are compared between host and device.

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

/// `result NAME WHAT I ids ...` and a newline (`WHAT` is `prompt` or `image`).
pub fn ids_line(
    w: &mut dyn Write,
    name: &str,
    what: &str,
    index: usize,
    ids: &[u32],
) -> fmt::Result {
    write!(w, "result {name} {what} {index} ids ")?;
    list(w, ids)?;
    w.write_char('\n')
}
