//! The stable result-line format, shared by the firmware and the host reference.
//!
//! ```text
//! model NAME kind KIND flash BYTES ram BYTES
//! result NAME image I top1 K logits L0,L1,...      (ViT classifier: int8 logits)
//! result NAME prompt I logits_fnv1a H ids T0,T1,... (decoder LM: prompt + generated ids)
//! result NAME image I logits_fnv1a H ids T0,T1,...  (encoder-decoder: start id + generated)
//! result NAME prompt I logits_fnv1a H ids T0,... text "..." (Llama: prompt + generated ids,
//!                                                   and their text when the blob has a vocabulary)
//! perf ...                                         (timing; board-specific, never compared)
//! ```
//! Only `result` lines are compared between host and device.
//!
//! `H` (8 lowercase hex digits) is the FNV-1a 32-bit hash ([`core_attn::blob::fnv1a32`]) of
//! the int8 logits of **every decoder step**, in order, each step's full vocabulary row as
//! bytes — the prompt positions included (a prompt of `P` tokens and `N` generated ids: `P +
//! N − 1` steps; the last generated id is never fed back). Ids alone would let a logits
//! difference that never flips an argmax pass; the hash does not ([`LogitsFnv`]).
//!
//! A Llama's `text` is what llama2.c's `run.c` prints for the ids ([`LlamaText`]: its
//! `decode` + `safe_printf`, the prompt's pieces included, a final eos that the blob's stop
//! rule stops *before* left out), as bytes in a quoted, escaped string ([`write_escaped`]):
//! printable ASCII other than `"` and `\` as is, `\n`, `\t`, `\r`, `\"`, `\\`, every other byte
//! `\xHH`; so a result line is one ASCII line whatever the pieces hold.

use core::fmt::{self, Write};

use core_attn::blob::{Blob, ModelKind, Vocab, NO_TOKEN};

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
    ids_text_line(w, name, what, index, logits_fnv1a, ids, None)
}

/// [`ids_line`], then ` text "..."` (the ids as [`LlamaText`] reads them, [`write_escaped`])
/// when `text` is given (a Llama with a vocabulary), before the newline.
pub fn ids_text_line(
    w: &mut dyn Write,
    name: &str,
    what: &str,
    index: usize,
    logits_fnv1a: u32,
    ids: &[u32],
    text: Option<&LlamaText<'_>>,
) -> fmt::Result {
    write!(
        w,
        "result {name} {what} {index} logits_fnv1a {logits_fnv1a:08x} ids "
    )?;
    list(w, ids)?;
    if let Some(t) = text {
        w.write_str(" text \"")?;
        t.each_byte(ids, 0, &mut |b| write_escaped(w, b))?;
        w.write_char('"')?;
    }
    w.write_char('\n')
}

/// One byte of a `text "..."` field: printable ASCII other than `"` and `\` as itself, `\n`,
/// `\t`, `\r`, `\"`, `\\`, anything else `\xHH` (two lowercase hex digits).
pub fn write_escaped(w: &mut dyn Write, b: u8) -> fmt::Result {
    match b {
        b'"' => w.write_str("\\\""),
        b'\\' => w.write_str("\\\\"),
        b'\n' => w.write_str("\\n"),
        b'\t' => w.write_str("\\t"),
        b'\r' => w.write_str("\\r"),
        0x20..=0x7e => w.write_char(b as char),
        _ => write!(w, "\\x{b:02x}"),
    }
}

/// How a Llama's token ids read as text: llama2.c `run.c`'s `decode(prev, token)` +
/// `safe_printf` over the blob's vocabulary (its token pieces, [`Vocab`]). After the BOS token
/// a piece's leading space is dropped; a piece `<0xHH>` is the raw byte; a one-byte piece that
/// is neither printable ASCII nor whitespace is not printed; an id without a vocabulary entry
/// prints nothing. The first id of a sequence (the BOS that starts a prompt) is never printed,
/// and a final id equal to the eos the blob stops *before* (llama2.c: eos = BOS) is left out,
/// as `run.c` never prints it.
#[derive(Debug, Clone, Copy)]
pub struct LlamaText<'a> {
    /// The token pieces.
    pub vocab: Vocab<'a>,
    /// The BOS id (after it a piece's leading space is dropped; `NO_TOKEN`: none).
    pub bos: u32,
    /// The eos that ends a sequence without being printed (`NO_TOKEN`: none).
    pub stop_before: u32,
}

impl<'a> LlamaText<'a> {
    /// The text reader of a Llama blob with a vocabulary (`None` for other kinds or without
    /// one). The stop rule is the blob's: an eos equal to its BOS is stopped before.
    pub fn of(blob: &Blob<'a>) -> Option<Self> {
        if blob.kind() != ModelKind::Llama {
            return None;
        }
        let d = blob.header().decoder;
        let stop_before = if d.eos_token != NO_TOKEN && d.eos_token == d.start_token {
            d.eos_token
        } else {
            NO_TOKEN
        };
        Some(LlamaText {
            vocab: blob.vocab()?,
            bos: d.start_token,
            stop_before,
        })
    }

    /// `ids` without a final eos that the stop rule stops before.
    pub fn shown<'i>(&self, ids: &'i [u32]) -> &'i [u32] {
        match ids.split_last() {
            Some((&last, init)) if last == self.stop_before && self.stop_before != NO_TOKEN => init,
            _ => ids,
        }
    }

    /// Hand `f` every byte `run.c` prints for the ids `shown(ids)[t]` with `t ≥ from` (and `t
    /// ≥ 1`: the first id only sets the context of the second), each piece decoded after
    /// `ids[t − 1]`.
    pub fn each_byte(
        &self,
        ids: &[u32],
        from: usize,
        f: &mut dyn FnMut(u8) -> fmt::Result,
    ) -> fmt::Result {
        let ids = self.shown(ids);
        let mut prev = match from.checked_sub(1).and_then(|i| ids.get(i)) {
            Some(&p) => p,
            None => match ids.first() {
                Some(&p) => p,
                None => return Ok(()),
            },
        };
        for &token in ids.iter().skip(from.max(1)) {
            self.piece(prev, token, f)?;
            prev = token;
        }
        Ok(())
    }

    /// The bytes of `token`'s piece after `prev` (see [`LlamaText`]).
    fn piece(&self, prev: u32, token: u32, f: &mut dyn FnMut(u8) -> fmt::Result) -> fmt::Result {
        let Some(text) = self.vocab.text(token) else {
            return Ok(());
        };
        let mut piece = text.as_bytes();
        if prev == self.bos && self.bos != NO_TOKEN {
            if let Some((b' ', rest)) = piece.split_first() {
                piece = rest;
            }
        }
        let byte = byte_piece(piece);
        let one = byte.map(|b| [b]);
        let piece = match &one {
            Some(b) => b.as_slice(),
            None => piece,
        };
        if let [b] = piece {
            // C `isprint || isspace` in the "C" locale.
            if !(b.is_ascii_graphic() || b" \t\n\x0b\x0c\r".contains(b)) {
                return Ok(());
            }
        }
        piece.iter().try_for_each(|&b| f(b))
    }
}

/// `sscanf(piece, "<0x%02hhX>", &byte) == 1`: `<0x` and one or two hex digits.
fn byte_piece(piece: &[u8]) -> Option<u8> {
    let rest = piece.strip_prefix(b"<0x")?;
    let mut value: Option<u8> = None;
    for &c in rest.iter().take(2) {
        let Some(d) = (c as char).to_digit(16) else {
            break;
        };
        value = Some(value.unwrap_or(0).wrapping_mul(16).wrapping_add(d as u8));
    }
    value
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
